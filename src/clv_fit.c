/*
 * clv_fit.c
 *		The compressed state of the CLV fitting aggregates.
 *
 * Every fitting aggregate (crm.bgnbd_fit, crm.paretonbd_fit, ...) keeps an
 * open-addressing hash table of its distinct input rows, e.g. (x, t_x, T),
 * with the summed weight of each, so memory grows with the number of
 * distinct rows and not with the number of customers.  The state combines
 * (parallel query, Citus) and serialises; the final functions sort the rows
 * before optimising, so a fit does not depend on row order or plan shape.
 * This file also holds the input checks shared by the transition functions.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "clv.h"

/* The input families: what a row of each aggregate means */
#define FAMILY_RFM			1	/* frequency, recency, T (continuous time) */
#define FAMILY_SPEND		2	/* frequency, monetary value */
#define FAMILY_DISCRETE		3	/* frequency, recency, n (opportunities) */

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

/* sort_rows(): an introsort with the comparison inlined (qsort's callback costs 3x) */
#define ST_SORT sort_rows
#define ST_ELEMENT_TYPE ClvRow
#define ST_COMPARE(a, b) row_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* A distinct value and the order in which it was first seen */
typedef struct ValueSeen
{
	double		v;
	int32		seen;
} ValueSeen;

/* sort_values(): ValueSeen by value */
#define ST_SORT sort_values
#define ST_ELEMENT_TYPE ValueSeen
#define ST_COMPARE(a, b) (((a)->v > (b)->v) - ((a)->v < (b)->v))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* Open-addressing set of doubles, each numbered by first sight */
typedef struct ClvValueSet
{
	MemoryContext cxt;
	int64		size;			/* power of two */
	int32	   *slot;			/* -1: empty, else index into vals */
	ValueSeen  *vals;			/* room for size / 2 */
	int64		n;
} ValueSet;

/* An empty value set, allocating in cxt */
static void
value_set_init(ValueSet *vs, MemoryContext cxt)
{
	vs->cxt = cxt;
	vs->size = 256;
	vs->n = 0;
	vs->slot = MemoryContextAlloc(cxt, sizeof(int32) * vs->size);
	memset(vs->slot, -1, sizeof(int32) * vs->size);
	vs->vals = MemoryContextAlloc(cxt, sizeof(ValueSeen) * vs->size / 2);
}

/* Double the table of a value set */
static void
value_set_grow(ValueSet *vs)
{
	int64		nsize = vs->size * 2;
	int32	   *ns = MemoryContextAllocHuge(vs->cxt, sizeof(int32) * nsize);
	int64		j;

	memset(ns, -1, sizeof(int32) * nsize);
	for (j = 0; j < vs->n; j++)
	{
		uint64		i = mix64(double_bits(vs->vals[j].v)) & (nsize - 1);

		while (ns[i] >= 0)
			i = (i + 1) & (nsize - 1);
		ns[i] = (int32) j;
	}
	pfree(vs->slot);
	vs->slot = ns;
	vs->size = nsize;
	vs->vals = repalloc_huge(vs->vals, sizeof(ValueSeen) * nsize / 2);
}

/* The number of value v in the set, adding it when new */
static inline int32
value_set_index(ValueSet *vs, double v)
{
	uint64		i;

	if (vs->n * 2 >= vs->size)
		value_set_grow(vs);
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
 * The rank of each value of the set by its number (rank[seen] = position
 * in increasing order) and, when sorted is not NULL, the values in
 * increasing order.  The set itself stays usable for lookups.
 */
static int32 *
value_set_ranks(ValueSet *vs, double **sorted)
{
	int32	   *rank = palloc_extended(sizeof(int32) * Max(vs->n, 1), MCXT_ALLOC_HUGE);
	ValueSeen  *v = palloc_extended(sizeof(ValueSeen) * Max(vs->n, 1), MCXT_ALLOC_HUGE);
	int64		j;

	memcpy(v, vs->vals, sizeof(ValueSeen) * vs->n);
	sort_values(v, vs->n);
	for (j = 0; j < vs->n; j++)
		rank[v[j].seen] = (int32) j;
	if (sorted)
	{
		*sorted = palloc_extended(sizeof(double) * Max(vs->n, 1), MCXT_ALLOC_HUGE);
		for (j = 0; j < vs->n; j++)
			(*sorted)[j] = v[j].v;
	}
	pfree(v);
	return rank;
}

/* Free a value set */
static void
value_set_free(ValueSet *vs)
{
	pfree(vs->slot);
	pfree(vs->vals);
}

/* A new empty state in the given context; the hash is allocated on first use */
ClvRows *
crm_clv_rows_new(MemoryContext cxt, int kind)
{
	ClvRows    *st = MemoryContextAllocZero(cxt, sizeof(ClvRows));

	st->kind = kind;
	st->cxt = cxt;
	return st;
}

/* Insert a row into the table (no growth check) */
static inline void
rows_put(ClvRow *slots, uint64 mask, uint64 h, const double *k, double w, int64 *used)
{
	uint64		i = h & mask;

	for (;;)
	{
		ClvRow	   *s = &slots[i];

		if (s->w == 0)
		{
			memcpy(s->k, k, sizeof(s->k));
			s->w = w;
			(*used)++;
			return;
		}
		if (s->k[0] == k[0] && s->k[1] == k[1] && s->k[2] == k[2])
		{
			s->w += w;
			return;
		}
		i = (i + 1) & mask;
	}
}

/* Make room for extra more distinct rows (the table stays at most 70% full) */
static void
rows_reserve(ClvRows *st, int64 extra)
{
	int64		nsize = Max(st->size, 256);
	ClvRow	   *ns;
	int64		used = 0;
	int64		j;

	while ((st->used + extra) * 10 > nsize * 7)
		nsize *= 2;
	if (nsize == st->size)
		return;
	ns = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * nsize);
	memset(ns, 0, sizeof(ClvRow) * nsize);
	for (j = 0; j < st->size; j++)
		if (st->slots[j].w != 0)
			rows_put(ns, nsize - 1, row_hash(st->slots[j].k), st->slots[j].k, st->slots[j].w, &used);
	if (st->slots)
		pfree(st->slots);
	st->slots = ns;
	st->size = nsize;
}

/*
 * Bits of one column's number in a packed key.  A column with more than
 * PACK_MAX_VALUES distinct values (continuous times, spend) sends the
 * state to the wide table: its dictionary would outgrow the savings.
 */
#define PACK_BITS		21
#define PACK_MASK		((UINT64CONST(1) << PACK_BITS) - 1)
#define PACK_MAX_VALUES	65536

/* Insert a packed row into the packed table (no growth check) */
static inline void
packed_put(ClvPacked *slots, uint64 mask, uint64 key, double w, int64 *used)
{
	uint64		i = mix64(key) & mask;

	for (;;)
	{
		ClvPacked  *s = &slots[i];

		if (s->w == 0)
		{
			s->key = key;
			s->w = w;
			(*used)++;
			return;
		}
		if (s->key == key)
		{
			s->w += w;
			return;
		}
		i = (i + 1) & mask;
	}
}

/* Make room for extra more distinct packed rows (at most 70% full) */
static void
packed_reserve(ClvRows *st, int64 extra)
{
	int64		nsize = Max(st->psize, 256);
	ClvPacked  *ns;
	int64		used = 0;
	int64		j;

	while ((st->pused + extra) * 10 > nsize * 7)
		nsize *= 2;
	if (nsize == st->psize)
		return;
	ns = MemoryContextAllocHuge(st->cxt, sizeof(ClvPacked) * nsize);
	memset(ns, 0, sizeof(ClvPacked) * nsize);
	for (j = 0; j < st->psize; j++)
		if (st->pslots[j].w != 0)
			packed_put(ns, nsize - 1, st->pslots[j].key, st->pslots[j].w, &used);
	if (st->pslots)
		pfree(st->pslots);
	st->pslots = ns;
	st->psize = nsize;
}

/* The keys of a packed row */
static inline void
packed_keys(const ClvRows *st, uint64 key, double *k)
{
	k[0] = st->dict[0]->vals[key >> (2 * PACK_BITS)].v;
	k[1] = st->dict[1]->vals[(key >> PACK_BITS) & PACK_MASK].v;
	k[2] = st->dict[2]->vals[key & PACK_MASK].v;
}

/* The packed key of a row, or false when a column has too many values */
static inline bool
packed_key(ClvRows *st, const double *k, uint64 *key)
{
	uint64		n0 = value_set_index(st->dict[0], k[0]),
				n1 = value_set_index(st->dict[1], k[1]),
				n2 = value_set_index(st->dict[2], k[2]);

	if (n0 >= PACK_MAX_VALUES || n1 >= PACK_MAX_VALUES || n2 >= PACK_MAX_VALUES)
		return false;
	*key = n0 << (2 * PACK_BITS) | n1 << PACK_BITS | n2;
	return true;
}

/* Add weight w to the row (0, 0, value number t) */
static inline void
zero_add(ClvRows *st, int32 t, double w)
{
	if (t >= st->nzero)
	{
		int64		n = Max(st->nzero * 2, 256);

		while (n <= t)
			n *= 2;
		st->zero_w = st->zero_w
			? repalloc(st->zero_w, sizeof(double) * n)
			: MemoryContextAlloc(st->cxt, sizeof(double) * n);
		memset(st->zero_w + st->nzero, 0, sizeof(double) * (n - st->nzero));
		st->nzero = n;
	}
	st->zero_w[t] += w;
}

/* Move the rows (0, 0, v) into the packed table */
static void
zero_fold(ClvRows *st)
{
	uint64		z;
	int64		t,
				n = 0;

	if (st->zero_w == NULL)
		return;
	for (t = 0; t < st->nzero; t++)
		n += (st->zero_w[t] != 0);
	packed_reserve(st, n);
	z = (uint64) value_set_index(st->dict[0], 0.0) << (2 * PACK_BITS)
		| (uint64) value_set_index(st->dict[1], 0.0) << PACK_BITS;
	for (t = 0; t < st->nzero; t++)
		if (st->zero_w[t] != 0)
			packed_put(st->pslots, st->psize - 1, z | (uint64) t, st->zero_w[t], &st->pused);
	pfree(st->zero_w);
	st->zero_w = NULL;
	st->nzero = 0;
}

/* Move the packed rows into the wide table and use that from now on */
static void
rows_go_wide(ClvRows *st)
{
	int64		j;

	zero_fold(st);
	rows_reserve(st, st->pused);
	for (j = 0; j < st->psize; j++)
		if (st->pslots[j].w != 0)
		{
			double		k[3];

			packed_keys(st, st->pslots[j].key, k);
			rows_put(st->slots, st->size - 1, row_hash(k), k, st->pslots[j].w, &st->used);
		}
	if (st->pslots)
		pfree(st->pslots);
	st->pslots = NULL;
	st->psize = st->pused = 0;
	st->wide = true;
}

/* Insert the pending rows into the wide table */
static void
rows_flush_wide(ClvRows *st, int from)
{
	uint64		h[CLV_PENDING];
	uint64		mask;
	int			i;

	rows_reserve(st, st->npend - from);
	mask = st->size - 1;
	for (i = from; i < st->npend; i++)
	{
		h[i] = row_hash(st->pend[i].k);
#ifdef __GNUC__
		__builtin_prefetch(&st->slots[h[i] & mask], 1);
#endif
	}
	for (i = from; i < st->npend; i++)
		rows_put(st->slots, mask, h[i], st->pend[i].k, st->pend[i].w, &st->used);
}

/*
 * Insert the pending rows.  The table is far larger than the CPU caches
 * for real data (10^5 distinct rows), so a lone insert waits for memory;
 * prefetching the slots of a whole batch first overlaps those waits, and
 * packing the keys into numbers (few distinct values a column: counts and
 * times on a day grid) halves the table.  Rows (0, 0, v), customers
 * without a repeat purchase and often the majority, skip the table: one
 * dictionary look-up numbers v and a small array adds their weight.
 */
static void
rows_flush(ClvRows *st)
{
	uint64		key[CLV_PENDING];
	double		kw[CLV_PENDING];
	uint64		mask;
	int			i,
				from = 0,
				n = 0;

	if (st->npend == 0)
		return;
	if (!st->wide)
	{
		if (st->dict[0] == NULL)
			for (i = 0; i < 3; i++)
			{
				st->dict[i] = MemoryContextAlloc(st->cxt, sizeof(ValueSet));
				value_set_init(st->dict[i], st->cxt);
			}
		for (from = 0; from < st->npend; from++)
		{
			const ClvRow *r = &st->pend[from];

			if (r->k[0] == 0 && r->k[1] == 0)
			{
				int32		t = value_set_index(st->dict[2], r->k[2]);

				if (t < PACK_MAX_VALUES)
				{
					zero_add(st, t, r->w);
					continue;
				}
			}
			if (!packed_key(st, r->k, &key[n]))
				break;
			kw[n++] = r->w;
		}
		packed_reserve(st, n);
		mask = st->psize - 1;
#ifdef __GNUC__
		for (i = 0; i < n; i++)
			__builtin_prefetch(&st->pslots[mix64(key[i]) & mask], 1);
#endif
		for (i = 0; i < n; i++)
			packed_put(st->pslots, mask, key[i], kw[i], &st->pused);
		if (from < st->npend)
			rows_go_wide(st);
	}
	if (from < st->npend)
		rows_flush_wide(st, from);
	st->npend = 0;
}

/*
 * Weights that are not whole numbers.  Whole weights add up exactly in a
 * double, so any order of rows gives the same sums; fractional ones do
 * not (0.1 + 0.2 + 0.3 is not 0.3 + 0.2 + 0.1), and a fit must not depend
 * on the plan.  Their rows are summed apart, in fixed point with
 * FRAC_BITS fraction bits in three 64-bit limbs: exact for every weight
 * from 2^-59 to 2^78 (smaller ones are rounded down to the grid, still
 * the same whatever the order), and turned into one double only when the
 * final function reads the rows.
 */
#define FRAC_BITS		112
#define MAX_WHOLE_W		9007199254740992.0	/* 2^53 */

struct ClvFrac
{
	double		k[3];
	uint64		s[3];			/* the sum, times 2^FRAC_BITS */
	bool		used;			/* hash slots only */
};

/* Is w a weight the double sums keep exact? */
static inline bool
whole_weight(double w)
{
	return w == 1 || (w <= MAX_WHOLE_W && w == floor(w));
}

/* s = w in fixed point (w > 0 finite) */
static void
exact_set(uint64 *s, double w)
{
	int			e,
				shift,
				i,
				b;
	uint64		mant = (uint64) ldexp(frexp(w, &e), 53);	/* w = mant 2^(e - 53) */

	s[0] = s[1] = s[2] = 0;
	shift = e - 53 + FRAC_BITS;
	if (shift < 0)
	{
		mant = (-shift >= 64) ? 0 : mant >> -shift;
		shift = 0;
	}
	if (shift + 53 > 190)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("weight %g is too large", w),
				 errhint("Weights count customers: up to 2^78.")));
	i = shift / 64;
	b = shift % 64;
	s[i] |= mant << b;
	if (b > 11)
		s[i + 1] |= mant >> (64 - b);
}

/* a += b, both in fixed point */
static inline void
exact_add(uint64 *a, const uint64 *b)
{
	uint64		t = a[0] + b[0],
				c = (t < b[0]);

	a[0] = t;
	t = a[1] + c;
	c = (t < c);
	t += b[1];
	c += (t < b[1]);
	a[1] = t;
	a[2] += b[2] + c;
	if (a[2] >> 62)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the weights of one row add up to more than 2^78")));
}

/* The double nearest a fixed-point value, always computed the same way */
static inline double
exact_double(const uint64 *s)
{
	return ldexp((double) s[2], 128 - FRAC_BITS) + ldexp((double) s[1], 64 - FRAC_BITS)
		+ ldexp((double) s[0], -FRAC_BITS);
}

/* Key order of two fractional rows */
static int
frac_cmp(const void *x, const void *y)
{
	ClvRow		a,
				b;

	memcpy(a.k, ((const ClvFrac *) x)->k, sizeof(a.k));
	memcpy(b.k, ((const ClvFrac *) y)->k, sizeof(b.k));
	return row_cmp(&a, &b);
}

/* Add fractional weight w to the row with keys k */
static void
frac_add(ClvRows *st, const double *k, double w)
{
	uint64		s[3],
				mask,
				i;

	if ((st->fused + 1) * 10 > st->fsize * 7)
	{
		int64		nsize = Max(st->fsize * 2, 64),
					j;
		ClvFrac    *ns = MemoryContextAllocZero(st->cxt, sizeof(ClvFrac) * nsize);

		for (j = 0; j < st->fsize; j++)
			if (st->fslots[j].used)
			{
				i = row_hash(st->fslots[j].k) & (nsize - 1);
				while (ns[i].used)
					i = (i + 1) & (nsize - 1);
				ns[i] = st->fslots[j];
			}
		if (st->fslots)
			pfree(st->fslots);
		st->fslots = ns;
		st->fsize = nsize;
	}
	exact_set(s, w);
	if ((s[0] | s[1] | s[2]) == 0)
		return;					/* below 2^-112: nothing on the grid */
	mask = st->fsize - 1;
	for (i = row_hash(k) & mask;; i = (i + 1) & mask)
	{
		ClvFrac    *f = &st->fslots[i];

		if (!f->used)
		{
			memcpy(f->k, k, sizeof(f->k));
			memcpy(f->s, s, sizeof(f->s));
			f->used = true;
			st->fused++;
			return;
		}
		if (f->k[0] == k[0] && f->k[1] == k[1] && f->k[2] == k[2])
		{
			exact_add(f->s, s);
			return;
		}
	}
}

/*
 * Merge the sorted fractional rows b[0..nb) into st's run of them (sums
 * exact, so the result does not depend on which state held what)
 */
static void
frac_merge_in(ClvRows *st, const ClvFrac *b, int64 nb)
{
	ClvFrac    *out;
	int64		i = 0,
				j = 0,
				m = 0;

	if (nb == 0)
		return;
	out = MemoryContextAllocHuge(st->cxt, sizeof(ClvFrac) * (st->nfrun + nb));
	while (i < st->nfrun || j < nb)
	{
		int			c = (i == st->nfrun) ? 1 : (j == nb) ? -1 : frac_cmp(&st->frun[i], &b[j]);

		if (c < 0)
			out[m++] = st->frun[i++];
		else if (c > 0)
			out[m++] = b[j++];
		else
		{
			out[m] = st->frun[i++];
			exact_add(out[m++].s, b[j++].s);
		}
	}
	if (st->frun)
		pfree(st->frun);
	st->frun = out;
	st->nfrun = m;
}

/* Move the hashed fractional rows into the sorted run */
static void
frac_consolidate(ClvRows *st)
{
	ClvFrac    *rows;
	int64		j,
				m = 0;

	if (st->fused == 0)
		return;
	rows = palloc_extended(sizeof(ClvFrac) * st->fused, MCXT_ALLOC_HUGE);
	for (j = 0; j < st->fsize; j++)
		if (st->fslots[j].used)
			rows[m++] = st->fslots[j];
	qsort(rows, m, sizeof(ClvFrac), frac_cmp);
	frac_merge_in(st, rows, m);
	pfree(rows);
	pfree(st->fslots);
	st->fslots = NULL;
	st->fsize = st->fused = 0;
}

/* Add weight w to the row with keys k */
void
crm_clv_rows_add(ClvRows *st, const double *k, double w)
{
	ClvRow	   *r = &st->pend[st->npend];
	int			i;

	/* one representation of zero, so -0 and +0 land in one row */
	for (i = 0; i < 3; i++)
		r->k[i] = (k[i] == 0) ? 0.0 : k[i];
	if (!whole_weight(w))
	{
		frac_add(st, r->k, w);
		return;
	}
	r->w = w;
	if (++st->npend == CLV_PENDING)
		rows_flush(st);
}

/* Is the state without any row? */
bool
crm_clv_rows_empty(ClvRows *st)
{
	return st->used == 0 && st->pused == 0 && st->npend == 0 && st->nrun == 0
		&& st->zero_w == NULL && st->fused == 0 && st->nfrun == 0;
}

/*
 * Merge the sorted run b into the sorted run rows[0..na), which has room
 * for na + nb rows, in place: filled from the back, a write never lands on
 * a row of a not yet read.  Returns the number of distinct rows, which
 * are moved to the front.
 */
static int64
merge_runs_in_place(ClvRow *rows, int64 na, const ClvRow *b, int64 nb)
{
	int64		i = na - 1,
				j = nb - 1,
				k = na + nb;

	while (j >= 0)
	{
		int			c = (i < 0) ? -1 : row_cmp(&rows[i], &b[j]);

		if (c > 0)
			rows[--k] = rows[i--];
		else if (c < 0)
			rows[--k] = b[j--];
		else
		{
			rows[--k] = rows[i--];
			rows[k].w += b[j--].w;
		}
	}
	/* what is left of a is already in place when no rows were merged */
	if (k == i + 1)
		return na + nb;
	while (i >= 0)
		rows[--k] = rows[i--];
	memmove(rows, rows + k, sizeof(ClvRow) * (na + nb - k));
	return na + nb - k;
}

#define RADIX_BITS		11

/*
 * Sort rows by key without comparisons: each column's values are ranked
 * (few distinct values: counts, and times on a day grid), the three ranks
 * packed into one integer whose order is the key order, with the row's
 * position in the low bits, and these integers sorted by an LSD radix
 * sort of the key bits (two or three passes for real data); the rows are
 * then permuted in place.  8 bytes of scratch a row, where a comparison
 * sort would copy the rows.  False (rows untouched) when key and position
 * do not fit in 64 bits.
 */
static bool
sort_rows_by_rank(ClvRow *rows, int64 n)
{
	ValueSet	vs[3];
	int32	   *rank[3];
	uint64		span = 1;
	uint64	   *a,
			   *b;
	int			c,
				posbits = 0,
				keybits = 0,
				shift;
	int64		j;

	if (n < 2 || n > PG_INT32_MAX / 2)
		return false;
	while (((int64) 1 << posbits) < n)
		posbits++;
	for (c = 0; c < 3; c++)
	{
		value_set_init(&vs[c], CurrentMemoryContext);
		for (j = 0; j < n; j++)
			(void) value_set_index(&vs[c], rows[j].k[c]);
		span *= (uint64) vs[c].n;
		if (span > ((uint64) 1 << (62 - posbits)))
		{
			for (; c >= 0; c--)
				value_set_free(&vs[c]);
			return false;
		}
	}
	while (((uint64) 1 << keybits) < span)
		keybits++;
	for (c = 0; c < 3; c++)
		rank[c] = value_set_ranks(&vs[c], NULL);
	a = palloc_extended(sizeof(uint64) * n, MCXT_ALLOC_HUGE);
	b = palloc_extended(sizeof(uint64) * n, MCXT_ALLOC_HUGE);
	for (j = 0; j < n; j++)
	{
		uint64		key = 0;

		for (c = 0; c < 3; c++)
			key = key * (uint64) vs[c].n + (uint64) rank[c][value_set_index(&vs[c], rows[j].k[c])];
		a[j] = key << posbits | (uint64) j;
	}
	/* LSD radix sort on the key bits, RADIX_BITS at a time (stable) */
	for (shift = posbits; shift < posbits + keybits; shift += RADIX_BITS)
	{
		int64		count[(1 << RADIX_BITS) + 1] = {0};
		uint64	   *t;
		int			i;

		for (j = 0; j < n; j++)
			count[((a[j] >> shift) & ((1 << RADIX_BITS) - 1)) + 1]++;
		for (i = 0; i < (1 << RADIX_BITS); i++)
			count[i + 1] += count[i];
		for (j = 0; j < n; j++)
			b[count[(a[j] >> shift) & ((1 << RADIX_BITS) - 1)]++] = a[j];
		t = a, a = b, b = t;
	}
	/* position j takes the row at a[j]'s position: follow each cycle once */
	for (j = 0; j < n; j++)
	{
		uint64		mask = ((uint64) 1 << posbits) - 1;
		ClvRow		first;
		int64		to = j;

		if (a[j] == PG_UINT64_MAX)
			continue;
		first = rows[j];
		for (;;)
		{
			int64		from = (int64) (a[to] & mask);

			a[to] = PG_UINT64_MAX;
			if (from == j)
			{
				rows[to] = first;
				break;
			}
			rows[to] = rows[from];
			to = from;
		}
	}
	pfree(a);
	pfree(b);
	for (c = 0; c < 3; c++)
	{
		value_set_free(&vs[c]);
		pfree(rank[c]);
	}
	return true;
}

/* Bits to number n values (0 for one value) */
static int
bits_for(int64 n)
{
	int			b = 0;

	while (((int64) 1 << b) < n)
		b++;
	return b;
}

/*
 * The packed rows as (rank key, weight) pairs sorted by key, without a
 * comparison or a hash lookup a row: each column's dictionary (few values)
 * is ranked (vals: its values in increasing order), a row's three ranks are
 * packed with bits[c] bits a column, so key order is row order (distinct
 * rows, distinct keys), and the pairs are sorted by an LSD radix sort.
 * NULL when the keys would need more than 63 bits.
 */
static ClvPacked *
packed_rank_sorted(ClvRows *st, double **vals, int *bits, int64 *m)
{
	int32	   *rank[3];
	int			c,
				keybits = 0,
				shift;
	int64		j;
	ClvPacked  *a,
			   *b;

	for (c = 0; c < 3; c++)
	{
		bits[c] = bits_for(st->dict[c]->n);
		keybits += bits[c];
	}
	if (keybits > 63)
		return NULL;
	for (c = 0; c < 3; c++)
		rank[c] = value_set_ranks(st->dict[c], &vals[c]);
	a = palloc_extended(sizeof(ClvPacked) * Max(st->pused, 1), MCXT_ALLOC_HUGE);
	b = palloc_extended(sizeof(ClvPacked) * Max(st->pused, 1), MCXT_ALLOC_HUGE);
	*m = 0;
	for (j = 0; j < st->psize; j++)
		if (st->pslots[j].w != 0)
		{
			uint64		key = st->pslots[j].key;

			a[*m].key = (uint64) rank[0][key >> (2 * PACK_BITS)] << (bits[1] + bits[2])
				| (uint64) rank[1][(key >> PACK_BITS) & PACK_MASK] << bits[2]
				| (uint64) rank[2][key & PACK_MASK];
			a[(*m)++].w = st->pslots[j].w;
		}
	/* LSD radix sort on the key bits, RADIX_BITS at a time (stable) */
	for (shift = 0; shift < keybits; shift += RADIX_BITS)
	{
		int64		count[(1 << RADIX_BITS) + 1] = {0};
		ClvPacked  *t;
		int			i;

		for (j = 0; j < *m; j++)
			count[((a[j].key >> shift) & ((1 << RADIX_BITS) - 1)) + 1]++;
		for (i = 0; i < (1 << RADIX_BITS); i++)
			count[i + 1] += count[i];
		for (j = 0; j < *m; j++)
			b[count[(a[j].key >> shift) & ((1 << RADIX_BITS) - 1)]++] = a[j];
		t = a, a = b, b = t;
	}
	pfree(b);
	for (c = 0; c < 3; c++)
		pfree(rank[c]);
	return a;
}

/*
 * The packed rows as wide rows sorted by key (see packed_rank_sorted), or
 * NULL when the ranks do not fit in 63 bits (the caller sorts by comparison)
 */
static ClvRow *
packed_sorted(ClvRows *st)
{
	double	   *vals[3];
	int			bits[3],
				c;
	int64		m,
				j;
	ClvPacked  *a = packed_rank_sorted(st, vals, bits, &m);
	ClvRow	   *rows;

	if (a == NULL)
		return NULL;
	rows = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * Max(m, 1));
	for (j = 0; j < m; j++)
	{
		uint64		key = a[j].key;

		rows[j].k[0] = vals[0][key >> (bits[1] + bits[2])];
		rows[j].k[1] = vals[1][(key >> bits[2]) & (((uint64) 1 << bits[1]) - 1)];
		rows[j].k[2] = vals[2][key & (((uint64) 1 << bits[2]) - 1)];
		rows[j].w = a[j].w;
	}
	pfree(a);
	for (c = 0; c < 3; c++)
		pfree(vals[c]);
	return rows;
}

/* Merge the sorted rows[0..m) (palloc'd in st->cxt, given away) into the run */
static void
run_merge_in(ClvRows *st, ClvRow *rows, int64 m)
{
	if (st->nrun == 0)
	{
		if (st->run)
			pfree(st->run);
		st->run = rows;
	}
	else
	{
		st->run = repalloc_huge(st->run, sizeof(ClvRow) * (st->nrun + m));
		m = merge_runs_in_place(st->run, st->nrun, rows, m);
		pfree(rows);
	}
	st->nrun = m;
}

/*
 * Turn the hashed rows into part of the sorted run: the packed rows
 * sorted through their dictionaries, the wide table's rows compacted to
 * its front in its own memory, each sorted and merged with the run.  The
 * state holds the same rows after; later rows go into new hashes (a
 * window aggregate may finalise, then add rows).
 */
static void
rows_consolidate(ClvRows *st)
{
	int64		m = 0,
				j;

	rows_flush(st);
	zero_fold(st);
	if (st->pused > 0)
	{
		ClvRow	   *rows = packed_sorted(st);

		m = st->pused;
		if (rows == NULL)
		{
			rows = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * st->pused);
			m = 0;
			for (j = 0; j < st->psize; j++)
				if (st->pslots[j].w != 0)
				{
					packed_keys(st, st->pslots[j].key, rows[m].k);
					rows[m++].w = st->pslots[j].w;
				}
			if (!sort_rows_by_rank(rows, m))
				sort_rows(rows, m);
		}
		pfree(st->pslots);
		st->pslots = NULL;
		st->psize = st->pused = 0;
		run_merge_in(st, rows, m);
	}
	if (st->used > 0)
	{
		ClvRow	   *rows = st->slots;

		m = 0;
		for (j = 0; j < st->size; j++)
			if (rows[j].w != 0)
				rows[m++] = rows[j];
		st->slots = NULL;
		st->size = st->used = 0;
		rows = repalloc_huge(rows, sizeof(ClvRow) * Max(m, 1));
		if (!sort_rows_by_rank(rows, m))
			sort_rows(rows, m);
		run_merge_in(st, rows, m);
	}
}

/* The whole-weight rows, sorted (fractional ones consolidated apart) */
static const ClvRow *
rows_parts(ClvRows *st, int64 *n)
{
	rows_consolidate(st);
	frac_consolidate(st);
	*n = st->nrun;
	return st->run;
}

/*
 * The distinct rows, sorted by key, each with its whole and fractional
 * weights added (once, here): the state's own memory, not to be changed
 */
const ClvRow *
crm_clv_rows_sorted(ClvRows *st, int64 *n)
{
	const ClvRow *run = rows_parts(st, n);
	int64		i = 0,
				j = 0,
				m = 0;

	if (st->nfrun == 0)
		return run;
	if (st->folded)
		pfree(st->folded);
	st->folded = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * (st->nrun + st->nfrun));
	while (i < st->nrun || j < st->nfrun)
	{
		ClvRow		f;
		int			c;

		if (j < st->nfrun)
			memcpy(f.k, st->frun[j].k, sizeof(f.k));
		c = (i == st->nrun) ? 1 : (j == st->nfrun) ? -1 : row_cmp(&run[i], &f);
		if (c < 0)
			st->folded[m++] = run[i++];
		else
		{
			uint64		s[3];

			memcpy(s, st->frun[j].s, sizeof(s));
			if (c == 0)
			{
				uint64		whole[3];

				exact_set(whole, run[i++].w);
				exact_add(s, whole);
			}
			f.w = exact_double(s);
			st->folded[m++] = f;
			j++;
		}
	}
	*n = m;
	return st->folded;
}

/* The aggregate's memory context, or an error outside an aggregate */
static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

#define BAD_ROW(...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), __VA_ARGS__))

/* Check a weight: positive finite, or zero (row ignored) */
static double
check_weight(FunctionCallInfo fcinfo, int argno)
{
	double		w;

	if (PG_NARGS() <= argno)
		return 1.0;
	w = PG_GETARG_FLOAT8(argno);
	if (!(isfinite(w) && w >= 0))
		BAD_ROW(errmsg("weight must be a non-negative finite number, not %g", w),
				errhint("A weight is the number of customers with this row."));
	return w;
}

/* Is v a non-negative integer? */
static inline bool
is_count(double v)
{
	return isfinite(v) && v >= 0 && v == floor(v);
}

/*
 * The common case of crm_clv_check_rfm in a few comparisons (no libm
 * call): a small whole x, 0 <= t_x <= T finite, t_x = 0 when x = 0.  When
 * false, the full check decides (and names the problem).
 */
static inline bool
rfm_plainly_valid(double x, double tx, double T)
{
	return x >= 0 && x < 1e15 && x == (double) (int64) x
		&& tx >= 0 && tx <= T && T <= DBL_MAX && (x != 0 || tx == 0);
}

/* Check one customer's (frequency, recency, T) in continuous time */
void
crm_clv_check_rfm(double x, double tx, double T)
{
	double		k[3] = {x, tx, T};

	if (!is_count(k[0]))
		BAD_ROW(errmsg("frequency must be a non-negative integer, not %g", k[0]),
				errdetail("Frequency is the number of repeat purchases."));
	if (!(isfinite(k[1]) && k[1] >= 0 && isfinite(k[2]) && k[2] >= 0))
		BAD_ROW(errmsg("recency and T must be non-negative and finite, not %g and %g", k[1], k[2]));
	if (k[1] > k[2])
		BAD_ROW(errmsg("recency %g is greater than T %g", k[1], k[2]),
				errdetail("The last purchase cannot be after the end of observation."));
	if (k[0] == 0 && k[1] != 0)
		BAD_ROW(errmsg("recency must be 0 when frequency is 0, not %g", k[1]),
				errhint("Recency is the time of the last repeat purchase; without one it is 0."));
}

/* Check one customer's (frequency, recency, n) in discrete time */
void
crm_clv_check_discrete(double x, double tx, double n)
{
	double		k[3] = {x, tx, n};

	if (!is_count(k[0]) || !is_count(k[1]) || !is_count(k[2]))
		BAD_ROW(errmsg("frequency, recency and n must be non-negative integers, not %g, %g, %g",
					   k[0], k[1], k[2]),
				errdetail("BG/BB counts transaction opportunities."));
	if (k[2] < 1 || k[2] > 100000)
		BAD_ROW(errmsg("n must be between 1 and 100000, not %g", k[2]));
	if (k[0] > k[1] || k[1] > k[2] || (k[0] == 0) != (k[1] == 0))
		BAD_ROW(errmsg("invalid BG/BB row: frequency %g, recency %g, n %g", k[0], k[1], k[2]),
				errdetail("It must hold that frequency <= recency <= n, and recency is 0 exactly when frequency is 0."));
}

/* Check a forecast horizon t: non-negative and finite */
double
crm_clv_check_horizon(double t)
{
	if (!(isfinite(t) && t >= 0))
		BAD_ROW(errmsg("forecast horizon t must be non-negative and finite, not %g", t));
	return t;
}

/* Check a count argument (purchases, opportunities): a whole number in [0, max] */
double
crm_clv_check_count(double v, const char *what, double max)
{
	if (!(isfinite(v) && v >= 0 && v == floor(v) && v <= max))
		BAD_ROW(errmsg("%s must be an integer between 0 and %.0f, not %g", what, max, v));
	return v;
}

/* Add one row to the state, creating it on the first call */
static Datum
rows_transition(FunctionCallInfo fcinfo, int family, const double *k, double w)
{
	MemoryContext cxt = agg_context(fcinfo, "clv fit transition");
	ClvRows    *st = PG_ARGISNULL(0) ? crm_clv_rows_new(cxt, family) : (ClvRows *) PG_GETARG_POINTER(0);

	st->rows_in++;
	if (w > 0)
		crm_clv_rows_add(st, k, w);
	PG_RETURN_POINTER(st);
}

/* True when any of the first n data arguments (after the state) is NULL */
static bool
any_null(FunctionCallInfo fcinfo)
{
	int			i;

	for (i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(crm_clv_rfm_trans);
/* Transition: (frequency, recency, T [, weight]) for the continuous-time models */
Datum
crm_clv_rfm_trans(PG_FUNCTION_ARGS)
{
	double		k[3];

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	k[2] = PG_GETARG_FLOAT8(3);
	if (!rfm_plainly_valid(k[0], k[1], k[2]))
		crm_clv_check_rfm(k[0], k[1], k[2]);
	return rows_transition(fcinfo, FAMILY_RFM, k, check_weight(fcinfo, 4));
}

PG_FUNCTION_INFO_V1(crm_clv_spend_trans);
/* Transition: (frequency, monetary_value [, weight]) for Gamma-Gamma; x = 0 rows carry nothing */
Datum
crm_clv_spend_trans(PG_FUNCTION_ARGS)
{
	double		k[3] = {0, 0, 0};

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	if (!is_count(k[0]))
		BAD_ROW(errmsg("frequency must be a non-negative integer, not %g", k[0]),
				errdetail("Frequency is the number of repeat purchases."));
	if (k[0] > 0 && !(isfinite(k[1]) && k[1] > 0))
		BAD_ROW(errmsg("monetary value must be positive and finite, not %g", k[1]),
				errdetail("The Gamma-Gamma model describes positive spend."),
				errhint("Leave out customers whose repeat purchases sum to zero."));
	return rows_transition(fcinfo, FAMILY_SPEND, k, k[0] > 0 ? check_weight(fcinfo, 3) : 0);
}

PG_FUNCTION_INFO_V1(crm_clv_discrete_trans);
/* Transition: (frequency, recency, n [, weight]) for BG/BB */
Datum
crm_clv_discrete_trans(PG_FUNCTION_ARGS)
{
	double		k[3];

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	k[2] = PG_GETARG_FLOAT8(3);
	crm_clv_check_discrete(k[0], k[1], k[2]);
	return rows_transition(fcinfo, FAMILY_DISCRETE, k, check_weight(fcinfo, 4));
}

PG_FUNCTION_INFO_V1(crm_clv_rows_combine);
/*
 * Combine two states (the second may be a deserialised worker state): the
 * rows of b, sorted, are merged into a's sorted run, so combining the
 * partial states of a parallel plan costs a linear merge, not a rehash.
 */
Datum
crm_clv_rows_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = agg_context(fcinfo, "crm_clv_rows_combine");
	ClvRows    *a = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);
	ClvRows    *b = PG_ARGISNULL(1) ? NULL : (ClvRows *) PG_GETARG_POINTER(1);
	MemoryContext old;
	const ClvRow *brows;
	int64		nb;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = crm_clv_rows_new(cxt, b->kind);
	if (a->kind != b->kind)
		elog(ERROR, "cannot combine CLV states of families %d and %d", a->kind, b->kind);
	brows = rows_parts(b, &nb);
	frac_merge_in(a, b->frun, b->nfrun);
	if (a->run == NULL && b->cxt == a->cxt && b->run == brows)
	{
		/* the first state in: take its run (in this context) as it is */
		a->run = b->run;
		a->nrun = nb;
		b->run = NULL;
		b->nrun = 0;
		a->rows_in += b->rows_in;
		PG_RETURN_POINTER(a);
	}
	old = MemoryContextSwitchTo(a->cxt);
	/* grown in place (no fresh pages for what a holds), merged from the back */
	if (a->run == NULL)
		a->run = palloc_extended(sizeof(ClvRow) * Max(nb, 1), MCXT_ALLOC_HUGE);
	else
		a->run = repalloc_huge(a->run, sizeof(ClvRow) * Max(a->nrun + nb, 1));
	MemoryContextSwitchTo(old);
	a->nrun = merge_runs_in_place(a->run, a->nrun, brows, nb);
	if (b->cxt == a->cxt && b->run == brows && brows != NULL)
	{
		/* a deserialised run lives in this context: free it now, not at the end */
		pfree(b->run);
		b->run = NULL;
		b->nrun = 0;
	}
	a->rows_in += b->rows_in;
	PG_RETURN_POINTER(a);
}

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

	rows_flush(st);
	zero_fold(st);
	if (st->wide || st->used > 0 || st->nrun > 0 || st->fused > 0 || st->nfrun > 0 || st->pused == 0)
		return false;
	a = packed_rank_sorted(st, vals, bits, &m);
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
		value_set_init(&vs[c], CurrentMemoryContext);
		for (j = 0; j < n; j++)
			(void) value_set_index(&vs[c], rows[j].k[c]);
		bits[c] = bits_for(vs[c].n);
	}
	if (bits[0] + bits[1] + bits[2] > 63)
	{
		for (c = 0; c < 3; c++)
			value_set_free(&vs[c]);
		return false;
	}
	for (c = 0; c < 3; c++)
	{
		rank[c] = value_set_ranks(&vs[c], &vals[c]);
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
		value_set_free(&vs[c]);
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
		bits[c] = bits_for(nv[c]);
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

PG_FUNCTION_INFO_V1(crm_clv_rows_serialize);
/* Serialise a state to bytea (sorted, so equal states give equal bytes) */
Datum
crm_clv_rows_serialize(PG_FUNCTION_ARGS)
{
	ClvRows    *st = (ClvRows *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	const ClvRow *rows;
	int64		n,
				j;
	int			i;

	agg_context(fcinfo, "crm_clv_rows_serialize");
	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->kind);
	pq_sendint64(&buf, st->rows_in);
	if (serialize_packed(&buf, st))
		PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
	rows = rows_parts(st, &n);
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
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
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
	st->frun = palloc_extended(sizeof(ClvFrac) * nf, MCXT_ALLOC_HUGE);
	for (j = 0; j < nf; j++)
	{
		ClvFrac    *f = &st->frun[j];

		for (i = 0; i < 3; i++)
			f->k[i] = pq_getmsgfloat8(buf);
		for (i = 0; i < 3; i++)
			f->s[i] = (uint64) pq_getmsgint64(buf);
		f->used = false;
		if (isnan(f->k[0]) || isnan(f->k[1]) || isnan(f->k[2]) || (f->s[0] | f->s[1] | f->s[2]) == 0
			|| (f->s[2] >> 62) || (j > 0 && frac_cmp(&st->frun[j - 1], f) >= 0))
			elog(ERROR, "corrupt CLV state at fractional row %lld", (long long) j);
	}
	st->nfrun = nf;
}

PG_FUNCTION_INFO_V1(crm_clv_rows_deserialize);
/* Rebuild a state from its serialised form: one sorted run, checked */
Datum
crm_clv_rows_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	ClvRows    *st;
	MemoryContext cxt;
	int64		n;
	int			kind,
				form;

	cxt = agg_context(fcinfo, "crm_clv_rows_deserialize");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	kind = pq_getmsgint(&buf, 4);
	/* the run in the aggregate's context: the combine function adopts it */
	st = crm_clv_rows_new(CurrentMemoryContext, kind);
	st->cxt = cxt;
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
	PG_RETURN_POINTER(st);
}

/* The state at the final function; an empty input is an error */
ClvRows *
crm_clv_final_state(FunctionCallInfo fcinfo, const char *what)
{
	ClvRows    *st = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, what);
	if (st == NULL || crm_clv_rows_empty(st))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s: no customers in the input", what),
				 errdetail("%lld rows were read, none of them usable (NULL, zero weight, or no repeat purchase for a spend model).",
						   (long long) (st ? st->rows_in : 0)),
				 errhint("Fit the model over a non-empty set of customers.")));
	return st;
}

/* Total weight (customers) and weighted frequency of d's rows, scale 1; returns the largest T */
static double
data_sums(ClvData *d)
{
	double		maxT = 0;
	int64		j;

	d->scale = 1.0;
	for (j = 0; j < d->n; j++)
	{
		d->total_w += d->rows[j].w;
		d->sum_wx += d->rows[j].w * d->rows[j].k[0];
		maxT = Max(maxT, d->rows[j].k[2]);
	}
	return maxT;
}

/* Sort the distinct rows and, for continuous time, divide times by max T */
ClvData *
crm_clv_prepare(ClvRows *st, bool scale_times)
{
	ClvData    *d = palloc0(sizeof(ClvData));
	const ClvRow *rows = crm_clv_rows_sorted(st, &d->n);
	int64		j;
	double		maxT;

	/* a copy: the fits scale it, and the state may be finalised again */
	d->rows = palloc_extended(sizeof(ClvRow) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	memcpy(d->rows, rows, sizeof(ClvRow) * d->n);
	maxT = data_sums(d);
	if (scale_times && maxT > 0)
	{
		d->scale = maxT;
		for (j = 0; j < d->n; j++)
		{
			d->rows[j].k[1] /= maxT;
			d->rows[j].k[2] /= maxT;
		}
	}
	return d;
}

/*
 * The rows for a fit that reads the times only through the time index
 * (BG/NBD, MBG/NBD): the state's own run, not copied, and the distinct
 * times scaled rather than every row (the same divisions, the same
 * numbers).  The rows must not be changed.
 */
ClvData *
crm_clv_prepare_indexed(ClvRows *st)
{
	ClvData    *d = palloc0(sizeof(ClvData));
	int64		j;
	double		maxT;

	d->rows = (ClvRow *) crm_clv_rows_sorted(st, &d->n);
	maxT = data_sums(d);
	crm_clv_index_times(d);
	if (maxT > 0)
	{
		d->scale = maxT;
		for (j = 0; j < d->ntimes; j++)
			d->times[j] /= maxT;
	}
	return d;
}

/*
 * Is row j of d in the sample, and with what weight?  Rows heavier than
 * heavy are all kept; of the others one in k, chosen by a hash of the
 * keys, with k times the weight.
 */
static inline bool
sample_keeps(const ClvData *d, int64 j, double heavy, uint64 k, double *w)
{
	const ClvRow *r = &d->rows[j];

	*w = r->w;
	if (r->w >= heavy)
		return true;
	*w = r->w * k;
	return row_hash(r->k) % k == 0;
}

/*
 * A deterministic sample of about target rows of d, for a starting point
 * (see sample_keeps): its log-likelihood estimates the whole one without
 * bias.  The rows stay sorted, and keep their time indexes when d has them
 * (the sample shares d's time table).
 */
ClvData *
crm_clv_sample(const ClvData *d, int64 target)
{
	ClvData    *s = palloc0(sizeof(ClvData));
	double		heavy = d->total_w / target,
				w;
	uint64		k = 1;
	int64		j,
				cap = 0;

	while ((int64) k * target < d->n)
		k *= 2;
	for (j = 0; j < d->n; j++)
		cap += sample_keeps(d, j, heavy, k, &w);
	*s = *d;
	s->rows = palloc_extended(sizeof(ClvRow) * Max(cap, 1), MCXT_ALLOC_HUGE);
	if (d->itx)
	{
		s->itx = palloc_extended(sizeof(int32) * Max(cap, 1), MCXT_ALLOC_HUGE);
		s->iT = palloc_extended(sizeof(int32) * Max(cap, 1), MCXT_ALLOC_HUGE);
	}
	s->n = 0;
	s->total_w = 0;
	s->sum_wx = 0;
	for (j = 0; j < d->n; j++)
	{
		if (!sample_keeps(d, j, heavy, k, &w))
			continue;
		s->rows[s->n] = d->rows[j];
		s->rows[s->n].w = w;
		if (d->itx)
		{
			s->itx[s->n] = d->itx[j];
			s->iT[s->n] = d->iT[j];
		}
		s->total_w += w;
		s->sum_wx += w * d->rows[j].k[0];
		s->n++;
	}
	return s;
}

/*
 * Index the distinct time values of the rows, so an objective computes
 * log(alpha + t) once per distinct t instead of once per row (real data
 * has times on a day grid: a few hundred values for any number of rows).
 * d->times is sorted, so the index does not depend on the row order.
 */
void
crm_clv_index_times(ClvData *d)
{
	ValueSet	vs;
	int32	   *rank;
	int64		j;

	if (d->n > PG_INT32_MAX / 2)
		elog(ERROR, "too many distinct rows to index: %lld", (long long) d->n);
	value_set_init(&vs, CurrentMemoryContext);
	d->itx = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	d->iT = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	for (j = 0; j < d->n; j++)
	{
		/* rows sorted by (x, t_x, T): t_x mostly repeats the last row's */
		if (j > 0 && d->rows[j].k[1] == d->rows[j - 1].k[1])
			d->itx[j] = d->itx[j - 1];
		else
			d->itx[j] = value_set_index(&vs, d->rows[j].k[1]);
		d->iT[j] = value_set_index(&vs, d->rows[j].k[2]);
	}
	rank = value_set_ranks(&vs, &d->times);
	d->ntimes = vs.n;
	for (j = 0; j < d->n; j++)
	{
		d->itx[j] = rank[d->itx[j]];
		d->iT[j] = rank[d->iT[j]];
	}
	pfree(rank);
	value_set_free(&vs);
}
