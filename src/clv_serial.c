/*
 * clv_serial.c
 *		The flat form of the CLV fit state: the bytes a parallel worker or a
 *		Citus worker sends for its partial state (clv_fit.c keeps the state
 *		as an expanded object whose flat form this is).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "clv_rows.h"

/*
 * Serialised states.  A parallel worker's state crosses a 64 kB tuple
 * queue to the leader, which is busy merging: every byte saved there is
 * a wait saved.  The compact form numbers each key column's distinct
 * values (few: counts, and times on a day grid), sends the sorted values
 * once, then each row as the varint gap to the previous row's packed key
 * and its weight as a varint when it is a whole number: 3 or 4 bytes a
 * row instead of 32.  States whose packed keys would not fit in 63 bits
 * are sent raw: the rows in network byte order.
 *
 *   int32 kind, int64 rows_in, int64 rows, int8 form (SER_RAW, SER_COMPACT)
 *   raw:     rows x (float8 k0, k1, k2, w)
 *   compact: int32 values[3], the values of each column (increasing),
 *            rows x (varint key gap - 1, varint weight code [, float8 w])
 * The key is rank0 << (bits1 + bits2) | rank1 << bits2 | rank2; the
 * weight code is 2w for whole w in [1, 2^53], else 1 and the float8.
 */
#define SER_RAW			0
#define SER_COMPACT		1

/* Write v at p as a little-endian base-128 varint; returns the byte after it */
static inline char *
put_varint(char *p, uint64 v)
{
	while (v > 0x7f)
	{
		*p++ = (char) ((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

/* Read a varint at *p (not past end), advancing *p; corrupt input is an error */
static inline uint64
get_varint(const unsigned char **p, const unsigned char *end)
{
	uint64		v = 0;
	int			shift = 0;

	for (;;)
	{
		unsigned char c;

		if (*p >= end || shift > 63)
			elog(ERROR, "corrupt CLV state: truncated number");
		c = *(*p)++;
		v |= (uint64) (c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
		shift += 7;
	}
}

/* Most bytes a compact row takes: two varints and a float8 */
#define COMPACT_ROW_MAX	28

/*
 * Write one row of the compact form at p (room for COMPACT_ROW_MAX): its
 * key's gap to the previous key, its weight; returns the byte after it
 */
static inline char *
put_compact_row(char *p, int64 j, uint64 key, uint64 prev, double w)
{
	/* keys strictly increase (a sorted run of distinct rows) */
	p = put_varint(p, j == 0 ? key : key - prev - 1);
	if (w >= 1 && whole_weight(w))
		return put_varint(p, (uint64) w << 1);
	else
	{
		uint64		b = pg_hton64(double_bits(w));

		p = put_varint(p, 1);
		memcpy(p, &b, 8);
		return p + 8;
	}
}

/* Room for n compact rows at the end of buf; the write position */
static char *
compact_rows_begin(StringInfo buf, int64 n)
{
	if (n > (MaxAllocHugeSize - buf->len - 64) / COMPACT_ROW_MAX)
		elog(ERROR, "CLV state of %lld rows is too large to serialise", (long long) n);
	enlargeStringInfo(buf, n * COMPACT_ROW_MAX);
	return buf->data + buf->len;
}

/* Close the rows written up to p */
static void
compact_rows_end(StringInfo buf, char *p)
{
	buf->len = p - buf->data;
	buf->data[buf->len] = '\0';
}

/* Append the compact header: each column's number of values, then the values */
static void
put_compact_values(StringInfo buf, double **vals, const int64 *nv)
{
	int			c;
	int64		j;

	pq_sendint8(buf, SER_COMPACT);
	for (c = 0; c < 3; c++)
		pq_sendint32(buf, (int32) nv[c]);
	for (c = 0; c < 3; c++)
		for (j = 0; j < nv[c]; j++)
			pq_sendfloat8(buf, vals[c][j]);
}

/*
 * The compact form straight from the packed table, when it holds all the
 * rows (a parallel worker's state): the ranked keys are the compact keys,
 * so no row is unpacked, no value looked up again.  False (buf untouched)
 * otherwise.
 */
static bool
serialize_packed(StringInfo buf, ClvRows *st)
{
	double	   *vals[3];
	int			bits[3],
				c;
	int64		nv[3],
				m,
				j;
	ClvPacked  *a;
	char	   *p;

	clv_rows_flush(st);
	clv_zero_fold(st);
	if (st->wide || st->used > 0 || st->nrun > 0 || HASH_MEMBERS(st->fracs) > 0 || st->nfrun > 0
		|| HASH_MEMBERS(st->packed) == 0)
		return false;
	a = clv_packed_rank_sorted(st, vals, bits, &m);
	if (a == NULL)
		return false;
	pq_sendint64(buf, m);
	for (c = 0; c < 3; c++)
		nv[c] = st->dict[c]->n;
	put_compact_values(buf, vals, nv);
	p = compact_rows_begin(buf, m);
	for (j = 0; j < m; j++)
		p = put_compact_row(p, j, a[j].key, j > 0 ? a[j - 1].key : 0, a[j].w);
	compact_rows_end(buf, p);
	/* the fractional rows: none */
	pq_sendint64(buf, 0);
	pfree(a);
	for (c = 0; c < 3; c++)
		pfree(vals[c]);
	return true;
}

/* Write rows in the compact form; false (buf untouched) when keys do not fit */
static bool
serialize_compact(StringInfo buf, const ClvRow *rows, int64 n)
{
	ValueSet	vs[3];
	int32	   *rank[3];
	double	   *vals[3];
	int			bits[3],
				c;
	int64		j,
				nv[3];
	uint64		prev = 0;
	char	   *p;

	for (c = 0; c < 3; c++)
	{
		clv_value_set_init(&vs[c], CurrentMemoryContext);
		for (j = 0; j < n; j++)
			(void) value_set_index(&vs[c], rows[j].k[c]);
		bits[c] = clv_bits_for(vs[c].n);
	}
	if (bits[0] + bits[1] + bits[2] > 63)
	{
		for (c = 0; c < 3; c++)
			clv_value_set_free(&vs[c]);
		return false;
	}
	for (c = 0; c < 3; c++)
	{
		rank[c] = clv_value_set_ranks(&vs[c], &vals[c]);
		nv[c] = vs[c].n;
	}
	put_compact_values(buf, vals, nv);
	p = compact_rows_begin(buf, n);
	for (j = 0; j < n; j++)
	{
		const ClvRow *r = &rows[j];
		uint64		key = (uint64) rank[0][value_set_index(&vs[0], r->k[0])] << (bits[1] + bits[2])
			| (uint64) rank[1][value_set_index(&vs[1], r->k[1])] << bits[2]
			| (uint64) rank[2][value_set_index(&vs[2], r->k[2])];

		p = put_compact_row(p, j, key, prev, r->w);
		prev = key;
	}
	compact_rows_end(buf, p);
	for (c = 0; c < 3; c++)
	{
		clv_value_set_free(&vs[c]);
		pfree(rank[c]);
		pfree(vals[c]);
	}
	return true;
}

/* Read n compact rows from buf into st's run */
static void
deserialize_compact(StringInfo buf, ClvRows *st, int64 n)
{
	double	   *vals[3];
	int32		nv[3];
	int			bits[3],
				c;
	int64		j;
	uint64		prev = 0;
	const unsigned char *p,
			   *end;

	for (c = 0; c < 3; c++)
	{
		nv[c] = pq_getmsgint(buf, 4);
		if (nv[c] < 0 || nv[c] > n || (nv[c] == 0) != (n == 0))
			elog(ERROR, "corrupt CLV state: %d values for %lld rows", nv[c], (long long) n);
		bits[c] = clv_bits_for(nv[c]);
	}
	if (bits[0] + bits[1] + bits[2] > 63)
		elog(ERROR, "corrupt CLV state: keys of %d bits", bits[0] + bits[1] + bits[2]);
	for (c = 0; c < 3; c++)
	{
		vals[c] = palloc_extended(sizeof(double) * Max(nv[c], 1), MCXT_ALLOC_HUGE);
		for (j = 0; j < nv[c]; j++)
		{
			vals[c][j] = pq_getmsgfloat8(buf);
			if (isnan(vals[c][j]) || (j > 0 && !(vals[c][j - 1] < vals[c][j])))
				elog(ERROR, "corrupt CLV state: key values out of order");
		}
	}
	/* n rows take at least 2 bytes each: checked before allocating */
	if (n > (buf->len - buf->cursor) / 2)
		elog(ERROR, "corrupt CLV state: %lld rows in %d bytes", (long long) n, buf->len - buf->cursor);
	st->run = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * Max(n, 1));
	p = (const unsigned char *) buf->data + buf->cursor;
	end = (const unsigned char *) buf->data + buf->len;
	for (j = 0; j < n; j++)
	{
		ClvRow	   *r = &st->run[j];
		uint64		gap = get_varint(&p, end),
					key = (j == 0) ? gap : prev + 1 + gap,
					code;
		uint64		r0 = key >> (bits[1] + bits[2]),
					r1 = (key >> bits[2]) & (((uint64) 1 << bits[1]) - 1),
					r2 = key & (((uint64) 1 << bits[2]) - 1);

		if ((j > 0 && key <= prev) || r0 >= (uint64) nv[0] || r1 >= (uint64) nv[1] || r2 >= (uint64) nv[2])
			elog(ERROR, "corrupt CLV state at row %lld", (long long) j);
		prev = key;
		r->k[0] = vals[0][r0];
		r->k[1] = vals[1][r1];
		r->k[2] = vals[2][r2];
		code = get_varint(&p, end);
		if (code & 1)
		{
			uint64		b;

			if (code != 1 || end - p < 8)
				elog(ERROR, "corrupt CLV state at row %lld", (long long) j);
			memcpy(&b, p, 8);
			p += 8;
			r->w = bits_double(pg_ntoh64(b));
		}
		else
			r->w = (double) (code >> 1);
		if (!(r->w > 0 && isfinite(r->w)))
			elog(ERROR, "corrupt CLV state at row %lld", (long long) j);
	}
	buf->cursor = (const char *) p - buf->data;
	for (c = 0; c < 3; c++)
		pfree(vals[c]);
}

/*
 * The flat form of a state, a bytea in the current memory context
 * (sorted, so equal states give equal bytes)
 */
bytea *
clv_rows_flatten(ClvRows *st)
{
	StringInfoData buf;
	const ClvRow *rows;
	int64		n,
				j;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->kind);
	pq_sendint64(&buf, st->rows_in);
	if (serialize_packed(&buf, st))
		return pq_endtypsend(&buf);
	rows = clv_rows_parts(st, &n);
	if (n > (MaxAllocHugeSize - 64) / sizeof(ClvRow))
		elog(ERROR, "CLV state of %lld rows is too large to serialise", (long long) n);
	pq_sendint64(&buf, n);
	if (!serialize_compact(&buf, rows, n))
	{
		pq_sendint8(&buf, SER_RAW);
		/* the rows in network byte order, written straight into the buffer */
		enlargeStringInfo(&buf, n * sizeof(ClvRow));
		for (j = 0; j < n; j++)
		{
			uint64		v[4];

			memcpy(v, &rows[j], sizeof(v));
			for (i = 0; i < 4; i++)
				v[i] = pg_hton64(v[i]);
			memcpy(buf.data + buf.len, v, sizeof(v));
			buf.len += sizeof(v);
		}
		buf.data[buf.len] = '\0';
	}
	/* the fractional rows, their sums exact */
	pq_sendint64(&buf, st->nfrun);
	for (j = 0; j < st->nfrun; j++)
	{
		for (i = 0; i < 3; i++)
			pq_sendfloat8(&buf, st->frun[j].k[i]);
		for (i = 0; i < 3; i++)
			pq_sendint64(&buf, (int64) st->frun[j].s[i]);
	}
	return pq_endtypsend(&buf);
}

/* Read n raw rows from buf into st's run */
static void
deserialize_raw(StringInfo buf, ClvRows *st, int64 n)
{
	int64		j;

	if (n < 0 || n > (buf->len - buf->cursor) / (int64) sizeof(ClvRow))
		elog(ERROR, "corrupt CLV state: %lld rows in %d bytes", (long long) n, buf->len - buf->cursor);
	st->run = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * Max(n, 1));
	/* n rows fit in what is left (checked above): read them in one go */
	memcpy(st->run, buf->data + buf->cursor, sizeof(ClvRow) * n);
	buf->cursor += sizeof(ClvRow) * n;
	for (j = 0; j < n; j++)
	{
		ClvRow	   *r = &st->run[j];
		uint64		v[4];
		int			i;

		memcpy(v, r, sizeof(v));
		for (i = 0; i < 4; i++)
			v[i] = pg_ntoh64(v[i]);
		memcpy(r, v, sizeof(v));
		/* the merge relies on strictly increasing keys and positive weights */
		if (!(r->w > 0 && isfinite(r->w)) || (j > 0 && row_cmp(&st->run[j - 1], r) >= 0))
			elog(ERROR, "corrupt CLV state at row %lld", (long long) j);
	}
}

/* Read the fractional rows that follow the others */
static void
deserialize_frac(StringInfo buf, ClvRows *st)
{
	int64		nf = pq_getmsgint64(buf),
				j;
	int			i;

	/* 48 bytes a row */
	if (nf < 0 || nf > (buf->len - buf->cursor) / 48)
		elog(ERROR, "corrupt CLV state: %lld fractional rows in %d bytes", (long long) nf, buf->len - buf->cursor);
	if (nf == 0)
		return;
	st->frun = MemoryContextAllocExtended(st->cxt, sizeof(ClvFrac) * nf, MCXT_ALLOC_HUGE);
	for (j = 0; j < nf; j++)
	{
		ClvFrac    *f = &st->frun[j];

		for (i = 0; i < 3; i++)
			f->k[i] = pq_getmsgfloat8(buf);
		for (i = 0; i < 3; i++)
			f->s[i] = (uint64) pq_getmsgint64(buf);
		if (isnan(f->k[0]) || isnan(f->k[1]) || isnan(f->k[2]) || (f->s[0] | f->s[1] | f->s[2]) == 0
			|| (f->s[2] >> 62) || (j > 0 && clv_frac_cmp(&st->frun[j - 1], f) >= 0))
			elog(ERROR, "corrupt CLV state at fractional row %lld", (long long) j);
	}
	st->nfrun = nf;
}

/*
 * Read a flat form (len bytes at data) into the empty state st, checked:
 * its kind and one sorted run, allocated in st->cxt
 */
void
clv_rows_read_flat(ClvRows *st, const char *data, int len)
{
	StringInfoData buf;
	int64		n;
	int			form;

	buf.data = (char *) data;
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 0;
	st->kind = pq_getmsgint(&buf, 4);
	st->rows_in = pq_getmsgint64(&buf);
	n = pq_getmsgint64(&buf);
	if (n < 0 || n > PG_INT32_MAX)
		elog(ERROR, "corrupt CLV state: %lld rows", (long long) n);
	form = pq_getmsgbyte(&buf);
	if (form == SER_COMPACT)
		deserialize_compact(&buf, st, n);
	else if (form == SER_RAW)
		deserialize_raw(&buf, st, n);
	else
		elog(ERROR, "corrupt CLV state: form %d", form);
	st->nrun = n;
	deserialize_frac(&buf, st);
	pq_getmsgend(&buf);
}
