/*
 * rfm.c
 *		The crm.rfm base type: one RFM cell (recency, frequency and monetary
 *		quintile scores, 1..5 each), and the mapping of cells to the usual
 *		named customer segments.
 *
 * A cell is four bytes passed by value: r, f and m in the three low bytes
 * (r highest, so the packed integer orders cells by r, then f, then m) and a
 * zero version byte at the top, reserved so the format can evolve.  Text form
 * is 'r-f-m' ('5-4-3'); input also accepts the compact '543'.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "crm.h"
#include "type_ops.h"

/* Packed cell: 0x00RRFFMM */
#define RFM_PACK(r, f, m)	((uint32) (((r) << 16) | ((f) << 8) | (m)))
#define RFM_R(c)			((int) (((c) >> 16) & 0xFF))
#define RFM_F(c)			((int) (((c) >> 8) & 0xFF))
#define RFM_M(c)			((int) ((c) & 0xFF))
#define RFM_VERSION(c)		((int) ((c) >> 24))

#define DatumGetRfm(d)		DatumGetUInt32(d)
#define RfmGetDatum(c)		UInt32GetDatum(c)
#define PG_GETARG_RFM(n)	DatumGetRfm(PG_GETARG_DATUM(n))
#define PG_RETURN_RFM(c)	return RfmGetDatum(c)

/*
 * Named segments on the grid of R (rows, 5 = most recent) by FM, the rounded
 * mean of F and M (columns 1..5).  README.md shows the same table.
 */
static const char *const rfm_segment_grid[5][5] = {
	/* R = 1 */
	{"Lost", "Lost", "At risk", "Can't lose them", "Can't lose them"},
	/* R = 2 */
	{"Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"},
	/* R = 3 */
	{"Promising", "About to sleep", "Need attention", "Loyal", "Loyal"},
	/* R = 4 */
	{"Promising", "Potential loyalist", "Loyal", "Loyal", "Champions"},
	/* R = 5 */
	{"New customers", "Potential loyalist", "Potential loyalist", "Champions", "Champions"},
};

/* Raise the invalid-input error for an RFM literal */
static void
rfm_syntax_error(const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type rfm: \"%s\"", input),
			 errdetail("%s", detail),
			 errhint("An RFM cell is three scores from 1 to 5, written '5-4-3' or '543'.")));
}

/* Check three scores and pack them, raising 22023 when one is out of range */
static uint32
rfm_make(int64 r, int64 f, int64 m)
{
	if (r < 1 || r > 5 || f < 1 || f > 5 || m < 1 || m > 5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm scores must be between 1 and 5"),
				 errdetail("Got recency " INT64_FORMAT ", frequency " INT64_FORMAT ", monetary " INT64_FORMAT ".",
						   r, f, m)));
	return RFM_PACK(r, f, m);
}

/* Parse 'r-f-m' or 'rfm', surrounding white space allowed */
static uint32
rfm_parse(const char *input)
{
	const char *p = input;
	int			scores[3];
	int			n = 0;
	bool		dashed = false;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	while (n < 3)
	{
		if (*p < '0' || *p > '9')
			rfm_syntax_error(input, n == 0 && *p == '\0' ? "The value is empty." :
							 "Expected three digits, optionally separated by '-'.");
		scores[n] = *p - '0';
		if (scores[n] < 1 || scores[n] > 5)
			rfm_syntax_error(input, "Each score must be a digit from 1 to 5.");
		p++;
		n++;
		if (n == 1 && *p == '-')
			dashed = true;
		if (n < 3 && dashed)
		{
			if (*p != '-')
				rfm_syntax_error(input, "Expected three digits, optionally separated by '-'.");
			p++;
		}
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '\0')
		rfm_syntax_error(input, "Expected three digits, optionally separated by '-'.");
	return RFM_PACK(scores[0], scores[1], scores[2]);
}

/* Segment name of a cell */
static const char *
rfm_segment_name(uint32 c)
{
	int			fm = (RFM_F(c) + RFM_M(c) + 1) / 2;

	return rfm_segment_grid[RFM_R(c) - 1][fm - 1];
}

PG_FUNCTION_INFO_V1(crm_rfm_in);
Datum
crm_rfm_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_RFM(rfm_parse(PG_GETARG_CSTRING(0)));
}

PG_FUNCTION_INFO_V1(crm_rfm_out);
Datum
crm_rfm_out(PG_FUNCTION_ARGS)
{
	uint32		c = PG_GETARG_RFM(0);

	PG_RETURN_CSTRING(psprintf("%d-%d-%d", RFM_R(c), RFM_F(c), RFM_M(c)));
}

PG_FUNCTION_INFO_V1(crm_rfm_recv);
Datum
crm_rfm_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	uint32		c = (uint32) pq_getmsgint(buf, 4);

	if (RFM_VERSION(c) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary rfm value: unknown version %d", RFM_VERSION(c))));
	if (RFM_R(c) < 1 || RFM_R(c) > 5 || RFM_F(c) < 1 || RFM_F(c) > 5 ||
		RFM_M(c) < 1 || RFM_M(c) > 5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary rfm value: scores %d, %d, %d out of range 1..5",
						RFM_R(c), RFM_F(c), RFM_M(c))));
	PG_RETURN_RFM(c);
}

PG_FUNCTION_INFO_V1(crm_rfm_send);
Datum
crm_rfm_send(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, PG_GETARG_RFM(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* crm.rfm(r, f, m): build a cell from three scores (bigint, so that a
 * driver's 64-bit parameters bind; integers are cast to it implicitly) */
PG_FUNCTION_INFO_V1(crm_rfm_make);
Datum
crm_rfm_make(PG_FUNCTION_ARGS)
{
	PG_RETURN_RFM(rfm_make(PG_GETARG_INT64(0), PG_GETARG_INT64(1), PG_GETARG_INT64(2)));
}

/* crm.rfm_r, crm.rfm_f, crm.rfm_m: one score of a cell */
#define RFM_SCORE_FUNC(name, score) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_INT32(score(PG_GETARG_RFM(0))); \
}

RFM_SCORE_FUNC(crm_rfm_r, RFM_R)
RFM_SCORE_FUNC(crm_rfm_f, RFM_F)
RFM_SCORE_FUNC(crm_rfm_m, RFM_M)

PG_FUNCTION_INFO_V1(crm_rfm_segment);
Datum
crm_rfm_segment(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(rfm_segment_name(PG_GETARG_RFM(0))));
}

/* Three-way comparison of arguments 0 and 1: the packed integers order cells by r, f, m */
static int
rfm_compare(FunctionCallInfo fcinfo)
{
	uint32		a = PG_GETARG_RFM(0);
	uint32		b = PG_GETARG_RFM(1);

	return a < b ? -1 : (a > b ? 1 : 0);
}

/* crm_rfm_eq, _ne, _lt, _le, _gt, _ge and crm_rfm_cmp */
TYPE_OPS_COMPARISON(crm_rfm, rfm_compare)

PG_FUNCTION_INFO_V1(crm_rfm_hash);
Datum
crm_rfm_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32(PG_GETARG_RFM(0));
}

PG_FUNCTION_INFO_V1(crm_rfm_hash_extended);
Datum
crm_rfm_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended(PG_GETARG_RFM(0), PG_GETARG_INT64(1));
}
