/*
 * clv_rows.c
 *		The distinct-row tables of the CLV fitting aggregates.
 *
 * Every fitting aggregate (crm.bgnbd_fit, crm.paretonbd_fit, ...) keeps a
 * hash table of its distinct input rows, e.g. (x, t_x, T), with the summed
 * weight of each, so memory grows with the number of distinct rows and not
 * with the number of customers.  This file holds those tables and the
 * radix sorts that turn them into one sorted run, so a fit does not depend
 * on row order or plan shape.  The packed table and the exact sums of
 * fractional weights are simplehash tables (declared in clv_rows.h); the
 * wide table and the per-column value sets are hand-written (measured: see
 * rows_put and ValueSet).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "utils/memutils.h"

#include "clv_rows.h"

/* sort_rows(): an introsort with the comparison inlined (qsort's callback costs 3x) */
#define ST_SORT sort_rows
#define ST_ELEMENT_TYPE ClvRow
#define ST_COMPARE(a, b) row_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* sort_values(): ValueSeen by value */
#define ST_SORT sort_values
#define ST_ELEMENT_TYPE ValueSeen
#define ST_COMPARE(a, b) (((a)->v > (b)->v) - ((a)->v < (b)->v))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* An empty value set, allocating in cxt */
void
clv_value_set_init(ValueSet *vs, MemoryContext cxt)
{
	vs->cxt = cxt;
	vs->size = 256;
	vs->n = 0;
	vs->slot = MemoryContextAlloc(cxt, sizeof(int32) * vs->size);
	memset(vs->slot, -1, sizeof(int32) * vs->size);
	vs->vals = MemoryContextAlloc(cxt, sizeof(ValueSeen) * vs->size / 2);
}

/* Double the table of a value set */
void
clv_value_set_grow(ValueSet *vs)
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

/*
 * The rank of each value of the set by its number (rank[seen] = position
 * in increasing order) and, when sorted is not NULL, the values in
 * increasing order.  The set itself stays usable for lookups.
 */
int32 *
clv_value_set_ranks(ValueSet *vs, double **sorted)
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
void
clv_value_set_free(ValueSet *vs)
{
	pfree(vs->slot);
	pfree(vs->vals);
}

/* A new empty state in the given context; the hash is allocated on first use */
ClvRows *
clv_rows_new(MemoryContext cxt, int kind)
{
	ClvRows    *st = MemoryContextAllocZero(cxt, sizeof(ClvRows));

	st->kind = kind;
	st->cxt = cxt;
	return st;
}

/*
 * Insert a row into the wide table (no growth check).  Hand-written, not
 * simplehash: with 32-byte rows, every one distinct (continuous times), a
 * simplehash table (40-byte slots, robin hood, 90% full) made the fit of
 * 1M customers 20% slower (fit / scan 18.4 against 14.9 and 15.2 in
 * test/bench/results/ab-h13-simplehash-clv.md); linear probing at most 70%
 * full with w == 0 as the empty mark keeps a slot one row.
 */
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

/* Make room for extra more distinct wide rows (the table stays at most 70% full) */
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

/* Add weight w to the packed row key */
static inline void
packed_add(packed_hash *tb, uint64 key, uint32 h, double w)
{
	bool		found;
	PackedSlot *s = packed_insert_hash(tb, key, h, &found);

	s->w = found ? s->w + w : w;
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
void
clv_zero_fold(ClvRows *st)
{
	uint64		z;
	int64		t;

	if (st->zero_w == NULL)
		return;
	if (st->packed == NULL)
		st->packed = packed_create(st->cxt, 256, NULL);
	z = (uint64) value_set_index(st->dict[0], 0.0) << (2 * PACK_BITS)
		| (uint64) value_set_index(st->dict[1], 0.0) << PACK_BITS;
	for (t = 0; t < st->nzero; t++)
		if (st->zero_w[t] != 0)
			packed_add(st->packed, z | (uint64) t, (uint32) mix64(z | (uint64) t), st->zero_w[t]);
	pfree(st->zero_w);
	st->zero_w = NULL;
	st->nzero = 0;
}

/* Move the packed rows into the wide table and use that from now on */
static void
rows_go_wide(ClvRows *st)
{
	clv_zero_fold(st);
	if (st->packed)
	{
		uint64		j;

		rows_reserve(st, st->packed->members);
		for (j = 0; j < st->packed->size; j++)
		{
			PackedSlot *p = &st->packed->data[j];
			double		k[3];

			if (p->status != packed_SH_IN_USE)
				continue;
			packed_keys(st, p->key, k);
			rows_put(st->slots, st->size - 1, row_hash(k), k, p->w, &st->used);
		}
		packed_destroy(st->packed);
		st->packed = NULL;
	}
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
void
clv_rows_flush(ClvRows *st)
{
	uint64		key[CLV_PENDING];
	uint32		h[CLV_PENDING];
	double		kw[CLV_PENDING];
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
				clv_value_set_init(st->dict[i], st->cxt);
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
		if (st->packed == NULL)
			st->packed = packed_create(st->cxt, 256, NULL);
		/* grown before the batch, so the prefetched slots are the ones written */
		while (st->packed->members + n >= st->packed->grow_threshold)
			packed_grow(st->packed, st->packed->size * 2);
		for (i = 0; i < n; i++)
		{
			h[i] = (uint32) mix64(key[i]);
#ifdef __GNUC__
			__builtin_prefetch(&st->packed->data[h[i] & st->packed->sizemask], 1);
#endif
		}
		for (i = 0; i < n; i++)
			packed_add(st->packed, key[i], h[i], kw[i]);
		if (from < st->npend)
			rows_go_wide(st);
	}
	if (from < st->npend)
		rows_flush_wide(st, from);
	st->npend = 0;
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
int
clv_frac_cmp(const void *x, const void *y)
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
	uint64		s[3];
	FracSlot   *f;
	bool		found;

	exact_set(s, w);
	if ((s[0] | s[1] | s[2]) == 0)
		return;					/* below 2^-112: nothing on the grid */
	if (st->fracs == NULL)
		st->fracs = frac_create(st->cxt, 64, NULL);
	f = frac_insert(st->fracs, *(const RowKey *) k, &found);
	if (found)
		exact_add(f->s, s);
	else
		memcpy(f->s, s, sizeof(f->s));
}

/*
 * Merge the sorted fractional rows b[0..nb) into st's run of them (sums
 * exact, so the result does not depend on which state held what)
 */
void
clv_frac_merge_in(ClvRows *st, const ClvFrac *b, int64 nb)
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
		int			c = (i == st->nfrun) ? 1 : (j == nb) ? -1 : clv_frac_cmp(&st->frun[i], &b[j]);

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
	uint64		j;
	int64		m = 0;

	if (HASH_MEMBERS(st->fracs) == 0)
		return;
	rows = palloc_extended(sizeof(ClvFrac) * st->fracs->members, MCXT_ALLOC_HUGE);
	for (j = 0; j < st->fracs->size; j++)
	{
		FracSlot   *f = &st->fracs->data[j];

		if (f->status != frac_SH_IN_USE)
			continue;
		memcpy(rows[m].k, f->key.k, sizeof(rows[m].k));
		memcpy(rows[m++].s, f->s, sizeof(f->s));
	}
	qsort(rows, m, sizeof(ClvFrac), clv_frac_cmp);
	clv_frac_merge_in(st, rows, m);
	pfree(rows);
	frac_destroy(st->fracs);
	st->fracs = NULL;
}

/* Add weight w to the row with keys k */
void
clv_rows_add(ClvRows *st, const double *k, double w)
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
		clv_rows_flush(st);
}

/* Is the state without any row? */
bool
clv_rows_empty(ClvRows *st)
{
	return st->used == 0 && HASH_MEMBERS(st->packed) == 0 && st->npend == 0
		&& st->nrun == 0 && st->zero_w == NULL && HASH_MEMBERS(st->fracs) == 0 && st->nfrun == 0;
}

/*
 * Merge the sorted run b into the sorted run rows[0..na), which has room
 * for na + nb rows, in place: filled from the back, a write never lands on
 * a row of a not yet read.  Returns the number of distinct rows, which
 * are moved to the front.
 */
int64
clv_merge_runs_in_place(ClvRow *rows, int64 na, const ClvRow *b, int64 nb)
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
		clv_value_set_init(&vs[c], CurrentMemoryContext);
		for (j = 0; j < n; j++)
			(void) value_set_index(&vs[c], rows[j].k[c]);
		span *= (uint64) vs[c].n;
		if (span > ((uint64) 1 << (62 - posbits)))
		{
			for (; c >= 0; c--)
				clv_value_set_free(&vs[c]);
			return false;
		}
	}
	while (((uint64) 1 << keybits) < span)
		keybits++;
	for (c = 0; c < 3; c++)
		rank[c] = clv_value_set_ranks(&vs[c], NULL);
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
		clv_value_set_free(&vs[c]);
		pfree(rank[c]);
	}
	return true;
}

/* Bits to number n values (0 for one value) */
int
clv_bits_for(int64 n)
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
ClvPacked *
clv_packed_rank_sorted(ClvRows *st, double **vals, int *bits, int64 *m)
{
	int32	   *rank[3];
	int			c,
				keybits = 0,
				shift;
	int64		j,
				np = HASH_MEMBERS(st->packed);
	ClvPacked  *a,
			   *b;

	for (c = 0; c < 3; c++)
	{
		bits[c] = clv_bits_for(st->dict[c]->n);
		keybits += bits[c];
	}
	if (keybits > 63)
		return NULL;
	for (c = 0; c < 3; c++)
		rank[c] = clv_value_set_ranks(st->dict[c], &vals[c]);
	a = palloc_extended(sizeof(ClvPacked) * Max(np, 1), MCXT_ALLOC_HUGE);
	b = palloc_extended(sizeof(ClvPacked) * Max(np, 1), MCXT_ALLOC_HUGE);
	*m = 0;
	for (j = 0; np > 0 && j < st->packed->size; j++)
		if (st->packed->data[j].status == packed_SH_IN_USE)
		{
			uint64		key = st->packed->data[j].key;

			a[*m].key = (uint64) rank[0][key >> (2 * PACK_BITS)] << (bits[1] + bits[2])
				| (uint64) rank[1][(key >> PACK_BITS) & PACK_MASK] << bits[2]
				| (uint64) rank[2][key & PACK_MASK];
			a[(*m)++].w = st->packed->data[j].w;
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
 * The packed rows as wide rows sorted by key (see clv_packed_rank_sorted), or
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
	ClvPacked  *a = clv_packed_rank_sorted(st, vals, bits, &m);
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
		m = clv_merge_runs_in_place(st->run, st->nrun, rows, m);
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
	int64		m = 0;
	uint64		j;

	clv_rows_flush(st);
	clv_zero_fold(st);
	if (HASH_MEMBERS(st->packed) > 0)
	{
		ClvRow	   *rows = packed_sorted(st);

		m = st->packed->members;
		if (rows == NULL)
		{
			rows = MemoryContextAllocHuge(st->cxt, sizeof(ClvRow) * m);
			m = 0;
			for (j = 0; j < st->packed->size; j++)
				if (st->packed->data[j].status == packed_SH_IN_USE)
				{
					packed_keys(st, st->packed->data[j].key, rows[m].k);
					rows[m++].w = st->packed->data[j].w;
				}
			if (!sort_rows_by_rank(rows, m))
				sort_rows(rows, m);
		}
		packed_destroy(st->packed);
		st->packed = NULL;
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
const ClvRow *
clv_rows_parts(ClvRows *st, int64 *n)
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
clv_rows_sorted(ClvRows *st, int64 *n)
{
	const ClvRow *run = clv_rows_parts(st, n);
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
