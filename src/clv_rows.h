/*
 * clv_rows.h
 *		Inside the state of the CLV fitting aggregates: the distinct-row
 *		tables (clv_rows.c), shared with the aggregate functions (clv_fit.c)
 *		and the serial forms (clv_serial.c).  The model units see only
 *		ClvRows * and the functions of clv.h.
 */
#ifndef CLV_ROWS_H
#define CLV_ROWS_H

#include <math.h>

#include "clv.h"

/* Bit mixer (splitmix64 finaliser) */
static inline uint64
mix64(uint64 z)
{
	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* The bits of a double */
static inline uint64
double_bits(double v)
{
	uint64		b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

/* The double whose bits are b */
static inline double
bits_double(uint64 b)
{
	double		v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

/* Hash of a key triple: one multiply per key, one final mix */
static inline uint64
row_hash(const double *k)
{
	uint64		h = double_bits(k[0]) * UINT64CONST(0x9e3779b97f4a7c15);

	h ^= double_bits(k[1]) * UINT64CONST(0xc2b2ae3d27d4eb4f);
	h = (h << 23 | h >> 41) ^ double_bits(k[2]) * UINT64CONST(0x165667b19e3779f9);
	return mix64(h);
}

/* Key order: (k0, k1, k2) ascending */
static inline int
row_cmp(const ClvRow *x, const ClvRow *y)
{
	int			i;

	for (i = 0; i < 3; i++)
	{
		if (x->k[i] < y->k[i])
			return -1;
		if (x->k[i] > y->k[i])
			return 1;
	}
	return 0;
}

/* A distinct value and the order in which it was first seen */
typedef struct ValueSeen
{
	double		v;
	int32		seen;
} ValueSeen;

/*
 * Open-addressing set of doubles, each numbered by first sight.  Hand-
 * written, not simplehash: its slots are 4-byte numbers into vals, where a
 * simplehash slot holds the value (16 bytes).  With simplehash the serial
 * fit of 1M day-grid customers took 133.9 ms against 122.6, and with
 * continuous times 1128 against 919 (test/bench/results/ab-h13-valueset-clv.md).
 */
typedef struct ValueSet
{
	MemoryContext cxt;
	int64		size;			/* power of two */
	int32	   *slot;			/* -1: empty, else index into vals */
	ValueSeen  *vals;			/* room for size / 2 */
	int64		n;
} ValueSet;

extern void clv_value_set_grow(ValueSet *vs);

/* The number of value v in the set, adding it when new */
static inline int32
value_set_index(ValueSet *vs, double v)
{
	uint64		i;

	if (vs->n * 2 >= vs->size)
		clv_value_set_grow(vs);
	i = mix64(double_bits(v)) & (vs->size - 1);
	for (;;)
	{
		int32		s = vs->slot[i];

		if (s < 0)
		{
			vs->vals[vs->n].v = v;
			vs->vals[vs->n].seen = (int32) vs->n;
			vs->slot[i] = (int32) vs->n;
			return (int32) vs->n++;
		}
		if (vs->vals[s].v == v)
			return s;
		i = (i + 1) & (vs->size - 1);
	}
}

/*
 * Weights that are not whole numbers.  Whole weights add up exactly in a
 * double, so any order of rows gives the same sums; fractional ones do
 * not (0.1 + 0.2 + 0.3 is not 0.3 + 0.2 + 0.1), and a fit must not depend
 * on the plan.  Their rows are summed apart, in fixed point with
 * FRAC_BITS fraction bits in three 64-bit limbs: exact for every weight
 * from 2^-59 to 2^78 (smaller ones are rounded down to the grid, still
 * the same whatever the order), and turned into one double only when the
 * final function reads the rows.  Not int128 (common/int128.h): exact
 * sums of those weights need 190 bits (a 53-bit mantissa placed anywhere
 * from 2^-112 to 2^78); 128 bits would leave 48 fraction bits, so 0.1 and
 * every weight below 2^4 with a full mantissa would be rounded, and the
 * sums would again depend on the order of the rows.
 */
#define FRAC_BITS		112
#define MAX_WHOLE_W		9007199254740992.0	/* 2^53 */

typedef struct ClvFrac
{
	double		k[3];
	uint64		s[3];			/* the sum, times 2^FRAC_BITS */
} ClvFrac;

/* The keys of a row, as one value (simplehash keys are assigned) */
typedef struct RowKey
{
	double		k[3];
} RowKey;

#define ROW_KEY_EQ(a, b) ((a).k[0] == (b).k[0] && (a).k[1] == (b).k[1] && (a).k[2] == (b).k[2])

/* A slot of the hash of fractional rows */
typedef struct FracSlot
{
	RowKey		key;
	uint64		s[3];
	char		status;
} FracSlot;

#define SH_PREFIX frac
#define SH_ELEMENT_TYPE FracSlot
#define SH_KEY_TYPE RowKey
#define SH_KEY key
#define SH_HASH_KEY(tb, key) ((uint32) row_hash((key).k))
#define SH_EQUAL(tb, a, b) ROW_KEY_EQ(a, b)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"


/* Is w a weight the double sums keep exact? */
static inline bool
whole_weight(double w)
{
	return w == 1 || (w <= MAX_WHOLE_W && w == floor(w));
}

#define BAD_ROW(...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), __VA_ARGS__))

/* Is v a non-negative integer? */
static inline bool
is_count(double v)
{
	return isfinite(v) && v >= 0 && v == floor(v);
}

/* Rows buffered before insertion into the hash (see clv_rows_flush) */
#define CLV_PENDING			64

/* A row whose three keys are numbered by the state's dictionaries */
typedef struct ClvPacked
{
	uint64		key;			/* 21 bits a column: numbers of k[0], k[1], k[2] */
	double		w;
} ClvPacked;

/*
 * A slot of the packed hash: the status shares the key's word (the key
 * takes 63 bits), so a slot stays 16 bytes, the memory traffic that made
 * the packed table pay.
 */
typedef struct PackedSlot
{
	uint64		key:63;
	uint64		status:1;
	double		w;
} PackedSlot;

#define SH_PREFIX packed
#define SH_ELEMENT_TYPE PackedSlot
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, key) ((uint32) mix64(key))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"


/*
 * Aggregate state: hashes of distinct rows, plus one
 * sorted run of distinct rows merged in by the combine function.  Rows go
 * into the packed hash (16 bytes a row: half the memory traffic) while
 * every key column has fewer than 2^21 distinct values, else, for good,
 * into the wide one.
 */
struct ClvRows
{
	int			kind;
	MemoryContext cxt;			/* where the hashes and the run live */
	ValueSet   *dict[3];		/* per key column: value -> number */
	bool		wide;			/* the packed hash is no longer used */
	packed_hash *packed;		/* NULL before the first insert */
	/* the wide table: hand-written, see rows_put() in clv_rows.c */
	int64		used;
	int64		size;			/* power of two, 0 before the first insert */
	ClvRow	   *slots;			/* w == 0 marks an empty slot */
	double	   *zero_w;			/* packed mode: weight of (0, 0, v) by v's number */
	int64		nzero;			/* room in zero_w */
	ClvRow	   *run;			/* sorted by key, keys distinct */
	int64		nrun;
	int			npend;
	ClvRow		pend[CLV_PENDING];
	int64		rows_in;
	/* rows whose weight is not a whole number: exact sums (see ClvFrac) */
	frac_hash  *fracs;			/* NULL until the first */
	ClvFrac    *frun;			/* sorted by key, keys distinct */
	int64		nfrun;
	ClvRow	   *folded;			/* run plus frun, for the final functions */
};

/* The number of rows in a hash that may not exist yet */
#define HASH_MEMBERS(tb) ((tb) ? (int64) (tb)->members : 0)

/* clv_rows.c: the value sets */
extern void clv_value_set_init(ValueSet *vs, MemoryContext cxt);
extern int32 *clv_value_set_ranks(ValueSet *vs, double **sorted);
extern void clv_value_set_free(ValueSet *vs);

/* clv_rows.c: the distinct-row tables */
extern void clv_rows_flush(ClvRows *st);
extern void clv_zero_fold(ClvRows *st);
extern int	clv_bits_for(int64 n);
extern ClvPacked *clv_packed_rank_sorted(ClvRows *st, double **vals, int *bits, int64 *m);
extern const ClvRow *clv_rows_parts(ClvRows *st, int64 *n);
extern int64 clv_merge_runs_in_place(ClvRow *rows, int64 na, const ClvRow *b, int64 nb);
extern int	clv_frac_cmp(const void *x, const void *y);
extern void clv_frac_merge_in(ClvRows *st, const ClvFrac *b, int64 nb);

/* clv_serial.c: the flat form */
extern bytea *clv_rows_flatten(ClvRows *st);
extern void clv_rows_read_flat(ClvRows *st, const char *data, int len);

/* clv_fit.c */
extern MemoryContext clv_agg_context(FunctionCallInfo fcinfo, const char *fn);

#endif							/* CLV_ROWS_H */
