/*
 * basket.c
 *		Market-basket mining: crm.frequent_itemsets and crm.association_rules,
 *		with arules' definitions (support = count / baskets, frequent when
 *		count >= ceil(min_support x baskets), one item on the right, max_len
 *		bounding the whole rule).
 *
 * Eclat over bitsets: each frequent item's baskets are a bitset, an
 * itemset's baskets the AND of its items', counted with popcount; the
 * search is depth first, items in ascending frequency, so memory holds the
 * bitsets of one path and the frequent itemsets found.  Rules come from the
 * itemsets and the counts of their subsets, found in a hash of the itemsets.
 * Memory is checked as it grows (maintenance_work_mem) and the search is
 * interruptible, so a support that makes everything frequent ends in an
 * error that says what to raise, not in an out-of-memory server.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "crm.h"
#include "shard.h"

#define ERRCODE_CRM_TOO_MANY ERRCODE_PROGRAM_LIMIT_EXCEEDED	/* 54000 */

/* Product id -> dense item number, while the baskets are read */
typedef struct ItemEntry
{
	int64		product_id;
	char		status;
	int			item;
} ItemEntry;

#define SH_PREFIX		items
#define SH_ELEMENT_TYPE	ItemEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			product_id
#define SH_HASH_KEY(tb, k)	hash_id(k)
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* (contact, order) -> basket number: the lines are read in no order */
typedef struct BasketKey
{
	int64		contact_id;
	int64		order_id;
} BasketKey;

typedef struct BasketEntry
{
	BasketKey	key;
	char		status;
	int			basket;
} BasketEntry;

static inline uint32
basket_hash(BasketKey k)
{
	return hash_combine(hash_id(k.contact_id), hash_id(k.order_id));
}

#define SH_PREFIX		baskets
#define SH_ELEMENT_TYPE	BasketEntry
#define SH_KEY_TYPE		BasketKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	basket_hash(k)
#define SH_EQUAL(tb, a, b)	((a).contact_id == (b).contact_id && (a).order_id == (b).order_id)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The baskets, as bitsets of the frequent items */
typedef struct Baskets
{
	int			nbaskets;
	int			words;			/* uint64 words per bitset */
	int			nitems;			/* frequent items, ascending frequency */
	int64	   *product;		/* product id of each */
	int		   *count;			/* baskets holding each */
	uint64	   *bits;			/* nitems bitsets */
	int			min_count;
} Baskets;

/* The frequent itemsets: records [len, count, items...] in one int32 arena */
typedef struct Itemsets
{
	int32	   *arena;
	Size		used,
				size;			/* in int32 */
	uint32	   *slots;			/* open addressing: record offset + 1, 0 empty */
	uint32		nslots;
	uint32		n;
	int			max_len;
	Size		budget;			/* bytes: maintenance_work_mem */
	Size		path_bytes;		/* bitsets of the search path */
} Itemsets;

/* Checked as memory grows: what the mining holds, against the budget */
static void
check_budget(Itemsets *s, double min_support)
{
	Size		bytes = s->size * sizeof(int32) + (Size) s->nslots * sizeof(uint32) + s->path_bytes;

	if (bytes > s->budget)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_TOO_MANY),
				 errmsg("the frequent itemsets at min_support %g need more than maintenance_work_mem (%zu kB); %u found so far",
						min_support, s->budget / 1024, s->n),
				 errhint("Raise min_support or lower max_len; or raise maintenance_work_mem.")));
}

static uint32
itemset_hash(const int32 *items, int len)
{
	return hash_bytes((const unsigned char *) items, len * sizeof(int32));
}

static void
itemsets_insert_slot(Itemsets *s, uint32 offset)
{
	int32	   *rec = &s->arena[offset];
	uint32		h = itemset_hash(rec + 2, rec[0]) & (s->nslots - 1);

	while (s->slots[h] != 0)
		h = (h + 1) & (s->nslots - 1);
	s->slots[h] = offset + 1;
}

/* Record a frequent itemset (items sorted) and its count */
static void
itemsets_add(Itemsets *s, const int32 *items, int len, int count, double min_support)
{
	Size		need = len + 2;

	if (s->used + need > s->size)
	{
		s->size = Max(s->size * 2, s->used + need);
		check_budget(s, min_support);
		s->arena = repalloc_huge(s->arena, s->size * sizeof(int32));
	}
	s->arena[s->used] = len;
	s->arena[s->used + 1] = count;
	memcpy(&s->arena[s->used + 2], items, len * sizeof(int32));
	if ((s->n + 1) * 2 > s->nslots)
	{
		uint32		old = s->nslots;
		uint32	   *olds = s->slots;

		s->nslots *= 2;
		check_budget(s, min_support);
		s->slots = palloc_extended(sizeof(uint32) * s->nslots, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (uint32 i = 0; i < old; i++)
			if (olds[i] != 0)
				itemsets_insert_slot(s, olds[i] - 1);
		pfree(olds);
	}
	itemsets_insert_slot(s, s->used);
	s->used += need;
	s->n++;
}

/* The count of a frequent itemset (every subset of a frequent one is) */
static int
itemsets_count(Itemsets *s, const int32 *items, int len)
{
	uint32		h = itemset_hash(items, len) & (s->nslots - 1);

	while (s->slots[h] != 0)
	{
		int32	   *rec = &s->arena[s->slots[h] - 1];

		if (rec[0] == len && memcmp(rec + 2, items, len * sizeof(int32)) == 0)
			return rec[1];
		h = (h + 1) & (s->nslots - 1);
	}
	elog(ERROR, "itemset missing from the frequent itemsets");
	return 0;
}

static inline int
and_count(uint64 *out, const uint64 *a, const uint64 *b, int words)
{
	int			n = 0;

	for (int w = 0; w < words; w++)
	{
		uint64		x = a[w] & b[w];

		if (out)
			out[w] = x;
		n += pg_popcount64(x);
	}
	return n;
}

/* One extension of the current prefix: an item, its baskets with the prefix */
typedef struct Extension
{
	int32		item;
	int			count;
	uint64	   *bits;
} Extension;

/*
 * Depth-first Eclat: every extension of prefix (depth items) is frequent;
 * record each and search below it with the later extensions
 */
static void
eclat(const Baskets *b, Itemsets *s, int32 *prefix, int depth, Extension *ext, int n, double min_support)
{
	for (int i = 0; i < n; i++)
	{
		Extension  *child;
		int			nchild = 0;
		bool		leaf = depth + 2 >= s->max_len;

		CHECK_FOR_INTERRUPTS();
		prefix[depth] = ext[i].item;
		itemsets_add(s, prefix, depth + 1, ext[i].count, min_support);
		if (depth + 1 >= s->max_len || i + 1 == n)
			continue;
		child = palloc(sizeof(Extension) * (n - i - 1));
		/* a leaf's children are counted, never extended: no bitsets kept */
		if (!leaf)
		{
			s->path_bytes += (Size) (n - i - 1) * b->words * sizeof(uint64);
			check_budget(s, min_support);
		}
		for (int j = i + 1; j < n; j++)
		{
			uint64	   *bits = leaf ? NULL : palloc(b->words * sizeof(uint64));
			int			c = and_count(bits, ext[i].bits, ext[j].bits, b->words);

			if (c >= b->min_count)
			{
				child[nchild].item = ext[j].item;
				child[nchild].count = c;
				child[nchild].bits = bits;
				nchild++;
			}
			else if (bits)
				pfree(bits);
		}
		if (leaf)
			for (int k = 0; k < nchild; k++)
			{
				prefix[depth + 1] = child[k].item;
				itemsets_add(s, prefix, depth + 2, child[k].count, min_support);
			}
		else
		{
			eclat(b, s, prefix, depth + 1, child, nchild, min_support);
			for (int k = 0; k < nchild; k++)
				pfree(child[k].bits);
			s->path_bytes -= (Size) (n - i - 1) * b->words * sizeof(uint64);
		}
		pfree(child);
	}
}

/* count >= ceil(min_support x baskets), as arules; an integral product is no rounding up */
static int
min_count_of(double min_support, int nbaskets)
{
	double		x = min_support * nbaskets;
	double		c = ceil(x);

	if (c - x > 1 - 1e-9)
		c -= 1;
	return Max((int) c, 1);
}

/* Items by ascending frequency, then product id */
typedef struct ItemOrder
{
	const int  *count;
	const int64 *product;
} ItemOrder;

static int
item_order_cmp(const void *a, const void *b, void *arg)
{
	const ItemOrder *io = arg;
	int			x = *(const int *) a,
				y = *(const int *) b;

	if (io->count[x] != io->count[y])
		return io->count[x] < io->count[y] ? -1 : 1;
	return io->product[x] < io->product[y] ? -1 : io->product[x] > io->product[y] ? 1 : 0;
}

/*
 * Read the baskets (order: each order not cancelled or refunded; contact:
 * all a contact bought) and keep the frequent items as bitsets
 */
static void
read_baskets(Baskets *b, const char *kind, double min_support)
{
	const char *sql;
	Portal		portal;
	items_hash *ids = items_create(CurrentMemoryContext, 1024, NULL);
	int32	   *pair_basket = NULL,
			   *pair_item = NULL;
	Size		npairs = 0,
				maxpairs = 0;
	baskets_hash *keys = baskets_create(CurrentMemoryContext, 1024, NULL);
	int			nitems = 0;
	int64	   *all_products;
	int		   *all_count,
			   *last_basket;
	int		   *order;
	int		   *dense;

	if (strcmp(kind, "order") == 0)
		sql = "SELECT l.contact_id, l.order_id, l.product_id FROM {crm.order_line} l "
			"  JOIN {crm.order} o ON o.contact_id = l.contact_id AND o.order_id = l.order_id "
			" WHERE o.status NOT IN ('cancelled', 'refunded')";
	else
		sql = "SELECT l.contact_id, 0::bigint, l.product_id FROM {crm.order_line} l "
			"  JOIN {crm.order} o ON o.contact_id = l.contact_id AND o.order_id = l.order_id "
			" WHERE o.status NOT IN ('cancelled', 'refunded')";
	b->nbaskets = 0;
	portal = SPI_cursor_open_with_args(NULL, colocated_sql(sql), 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 50000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull,
						found;
			BasketKey	k;
			BasketEntry *be;
			ItemEntry  *e = items_insert(ids, DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)), &found);

			if (!found)
				e->item = nitems++;
			k.contact_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			k.order_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			be = baskets_insert(keys, k, &found);
			if (!found)
				be->basket = b->nbaskets++;
			if (npairs == maxpairs)
			{
				maxpairs = maxpairs ? maxpairs * 2 : 65536;
				pair_basket = pair_basket ? repalloc_huge(pair_basket, maxpairs * sizeof(int32))
					: palloc_extended(maxpairs * sizeof(int32), MCXT_ALLOC_HUGE);
				pair_item = pair_item ? repalloc_huge(pair_item, maxpairs * sizeof(int32))
					: palloc_extended(maxpairs * sizeof(int32), MCXT_ALLOC_HUGE);
			}
			pair_basket[npairs] = be->basket;
			pair_item[npairs] = e->item;
			npairs++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	baskets_destroy(keys);

	/* baskets holding each item (an item twice in a basket counts once) */
	all_products = palloc(sizeof(int64) * Max(nitems, 1));
	all_count = palloc0(sizeof(int) * Max(nitems, 1));
	last_basket = palloc(sizeof(int) * Max(nitems, 1));
	memset(last_basket, -1, sizeof(int) * Max(nitems, 1));
	{
		items_iterator it;
		ItemEntry  *e;

		items_start_iterate(ids, &it);
		while ((e = items_iterate(ids, &it)) != NULL)
			all_products[e->item] = e->product_id;
	}
	/*
	 * The lines come in no order (a basket's are not together on Citus, nor
	 * a contact's): grouped by basket first, a counting sort, so a product
	 * twice in a basket is seen twice in a row
	 */
	{
		Size	   *start = palloc0_array(Size, b->nbaskets + 1);
		int32	   *grouped = npairs ? palloc_extended(npairs * sizeof(int32), MCXT_ALLOC_HUGE) : NULL;

		for (Size i = 0; i < npairs; i++)
			start[pair_basket[i] + 1]++;
		for (int k = 0; k < b->nbaskets; k++)
			start[k + 1] += start[k];
		for (Size i = 0; i < npairs; i++)
			grouped[start[pair_basket[i]]++] = pair_item[i];
		/* start[k] is now the end of basket k: pair_basket takes the grouped order */
		for (int k = b->nbaskets; k > 0; k--)
			start[k] = start[k - 1];
		start[0] = 0;
		for (int k = 0; k < b->nbaskets; k++)
			for (Size j = start[k]; j < start[k + 1]; j++)
			{
				pair_basket[j] = k;
				pair_item[j] = grouped[j];
				if (last_basket[grouped[j]] != k)
				{
					all_count[grouped[j]]++;
					last_basket[grouped[j]] = k;
				}
			}
		pfree(start);
		if (grouped)
			pfree(grouped);
	}

	/* the frequent items, least frequent first (then by product id) */
	b->min_count = min_count_of(min_support, b->nbaskets);
	order = palloc(sizeof(int) * Max(nitems, 1));
	b->nitems = 0;
	for (int i = 0; i < nitems; i++)
		if (all_count[i] >= b->min_count)
			order[b->nitems++] = i;
	{
		ItemOrder	io = {all_count, all_products};

		qsort_arg(order, b->nitems, sizeof(int), item_order_cmp, &io);
	}
	dense = palloc(sizeof(int) * Max(nitems, 1));
	memset(dense, -1, sizeof(int) * Max(nitems, 1));
	b->product = palloc(sizeof(int64) * Max(b->nitems, 1));
	b->count = palloc(sizeof(int) * Max(b->nitems, 1));
	for (int k = 0; k < b->nitems; k++)
	{
		dense[order[k]] = k;
		b->product[k] = all_products[order[k]];
		b->count[k] = all_count[order[k]];
	}
	b->words = (b->nbaskets + 63) / 64;
	b->bits = palloc_extended((Size) b->nitems * Max(b->words, 1) * sizeof(uint64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (Size i = 0; i < npairs; i++)
	{
		int			k = dense[pair_item[i]];

		if (k >= 0)
			b->bits[(Size) k * b->words + pair_basket[i] / 64] |= UINT64CONST(1) << (pair_basket[i] % 64);
	}
	if (pair_basket)
	{
		pfree(pair_basket);
		pfree(pair_item);
	}
	items_destroy(ids);
}

/* Check the arguments both functions share */
static void
check_mining_args(double min_support, int max_len, int min_len, const char *kind)
{
	if (isnan(min_support) || min_support <= 0 || min_support > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_support must be in (0, 1], not %g", min_support),
				 errhint("It is the share of baskets an itemset is in: 0.01 is 1%% of them.")));
	if (min_len < 1 || max_len < 1 || max_len < min_len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_len and min_len must be at least 1 with min_len <= max_len, not %d and %d",
						max_len, min_len)));
	if (strcmp(kind, "order") != 0 && strcmp(kind, "contact") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown basket kind \"%s\"", kind),
				 errhint("Use basket => 'order' (each order is a basket) or 'contact' (all a contact bought).")));
}

/* Mine: the baskets and every frequent itemset of at most max_len items */
static void
mine(Baskets *b, Itemsets *s, double min_support, int max_len, const char *kind)
{
	int32	   *prefix;
	Extension  *top;

	read_baskets(b, kind, min_support);
	s->max_len = max_len;
	s->budget = (Size) maintenance_work_mem * 1024;
	s->size = 1024;
	s->arena = palloc_extended(s->size * sizeof(int32), MCXT_ALLOC_HUGE);
	s->nslots = 1024;
	s->slots = palloc0(sizeof(uint32) * s->nslots);
	s->path_bytes = (Size) b->nitems * b->words * sizeof(uint64);
	check_budget(s, min_support);
	prefix = palloc(sizeof(int32) * (max_len + 1));
	top = palloc(sizeof(Extension) * Max(b->nitems, 1));
	for (int k = 0; k < b->nitems; k++)
	{
		top[k].item = k;
		top[k].count = b->count[k];
		top[k].bits = &b->bits[(Size) k * b->words];
	}
	eclat(b, s, prefix, 0, top, b->nitems, min_support);
}

/* An int8[] of the products of items (sorted by product id) */
static Datum
products_array(const Baskets *b, const int32 *items, int len, int skip)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(len, 1));
	int64	   *v = palloc(sizeof(int64) * Max(len, 1));
	int			n = 0;

	for (int i = 0; i < len; i++)
		if (i != skip)
			v[n++] = b->product[items[i]];
	for (int i = 1; i < n; i++)
	{
		int64		x = v[i];
		int			j = i - 1;

		while (j >= 0 && v[j] > x)
		{
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static const char *
basket_kind(FunctionCallInfo fcinfo, int arg)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("basket must not be NULL"),
				 errhint("Use basket => 'order' or 'contact'.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

/* crm.frequent_itemsets(min_support, max_len, basket) */
PG_FUNCTION_INFO_V1(crm_frequent_itemsets);
Datum
crm_frequent_itemsets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	double		min_support = PG_GETARG_FLOAT8(0);
	int			max_len = PG_GETARG_INT32(1);
	const char *kind = basket_kind(fcinfo, 2);
	Baskets		b;
	Itemsets	s = {0};
	int			pinned;
	MemoryContext cxt,
				old;
	Size		off;

	check_mining_args(min_support, max_len, 1, kind);
	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "frequent_itemsets", ALLOCSET_DEFAULT_SIZES);
	pinned = spi_connect_pinned();
	old = MemoryContextSwitchTo(cxt);
	mine(&b, &s, min_support, max_len, kind);
	for (off = 0; off < s.used; off += s.arena[off] + 2)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = products_array(&b, &s.arena[off + 2], s.arena[off], -1);
		values[1] = Int64GetDatum(s.arena[off + 1]);
		values[2] = Float8GetDatum((double) s.arena[off + 1] / b.nbaskets);
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	spi_finish_pinned(pinned);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

/* Emit one rule: lhs -> rhs with the counts of the rule, its lhs and its rhs */
static void
emit_rule(ReturnSetInfo *rsi, const Baskets *b, Datum lhs, int64 rhs, int count, int lhs_count, int rhs_count)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	double		confidence = (double) count / lhs_count;
	double		rhs_support = (double) rhs_count / b->nbaskets;

	values[0] = lhs;
	values[1] = Int64GetDatum(rhs);
	values[2] = Int64GetDatum(count);
	values[3] = Float8GetDatum((double) count / b->nbaskets);
	values[4] = Float8GetDatum(confidence);
	values[5] = Float8GetDatum(confidence / rhs_support);
	values[6] = Float8GetDatum(confidence >= 1 ? get_float8_infinity() : (1 - rhs_support) / (1 - confidence));
	tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
}

/* crm.association_rules(min_support, min_confidence, max_len, min_len, basket, max_rules) */
PG_FUNCTION_INFO_V1(crm_association_rules);
Datum
crm_association_rules(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	double		min_support = PG_GETARG_FLOAT8(0);
	double		min_confidence = PG_GETARG_FLOAT8(1);
	int			max_len = PG_GETARG_INT32(2);
	int			min_len = PG_GETARG_INT32(3);
	const char *kind = basket_kind(fcinfo, 4);
	int64		max_rules = PG_GETARG_INT64(5);
	int64		nrules = 0;
	Baskets		b;
	Itemsets	s = {0};
	int			pinned;
	MemoryContext cxt,
				old,
				rowcxt;
	int32		sub[64];

	check_mining_args(min_support, max_len, min_len, kind);
	if (isnan(min_confidence) || min_confidence <= 0 || min_confidence > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_confidence must be in (0, 1], not %g", min_confidence),
				 errhint("It is the share of the baskets holding the left-hand side that also hold the right: 0.5 is half.")));
	if (max_rules < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rules must be at least 1, not %lld", (long long) max_rules)));
	/* an itemset of a rule is at most max_len items: a bound for sub[] */
	max_len = Min(max_len, 64);
	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "association_rules", ALLOCSET_DEFAULT_SIZES);
	rowcxt = AllocSetContextCreate(cxt, "association rule", ALLOCSET_DEFAULT_SIZES);
	pinned = spi_connect_pinned();
	old = MemoryContextSwitchTo(cxt);
	mine(&b, &s, min_support, max_len, kind);
	for (Size off = 0; off < s.used; off += s.arena[off] + 2)
	{
		int			len = s.arena[off];
		int			count = s.arena[off + 1];
		int32	   *items = &s.arena[off + 2];

		if (len < min_len)
			continue;
		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(rowcxt);
		for (int y = 0; y < len; y++)
		{
			int			lhs_count = b.nbaskets;
			int			n = 0;

			if (len > 1)
			{
				for (int i = 0; i < len; i++)
					if (i != y)
						sub[n++] = items[i];
				lhs_count = itemsets_count(&s, sub, n);
			}
			if ((double) count / lhs_count < min_confidence)
				continue;
			if (++nrules > max_rules)
				ereport(ERROR,
						(errcode(ERRCODE_CRM_TOO_MANY),
						 errmsg("more than max_rules (%lld) rules at min_support %g and min_confidence %g",
								(long long) max_rules, min_support, min_confidence),
						 errdetail("%u frequent itemsets; the rules were still being counted.", s.n),
						 errhint("Raise min_support or min_confidence, lower max_len, or raise max_rules.")));
			emit_rule(rsi, &b, products_array(&b, items, len, y), b.product[items[y]], count, lhs_count,
					  b.count[items[y]]);
		}
		MemoryContextSwitchTo(cxt);
		MemoryContextReset(rowcxt);
	}
	MemoryContextSwitchTo(old);
	spi_finish_pinned(pinned);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
