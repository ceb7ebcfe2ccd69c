/*
 * predict_logit.c
 *		Logistic regression as an aggregate: crm.logit_fit(outcome,
 *		features jsonb [, weight [, l2]]) fitted by Newton's method (IRLS)
 *		over the distinct feature vectors, and the model it returns
 *		(crm.logit) applied by crm.predict and crm.explain_prediction.
 *
 * The state keeps one entry per distinct feature document with the weight
 * of its positive and negative outcomes: categorical data has few distinct
 * vectors, so a fit over a million rows keeps thousands of entries.  The
 * final function sorts the entries (the fit does not depend on row order,
 * plan or the workers' split), encodes them (numbers and booleans as
 * given, strings one-hot with the first level in byte order as the
 * baseline, JSON null as missing), drops the columns that are linear
 * combinations of the ones before them (as R's glm does) and iterates.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "predict.h"

/* One distinct feature document and the weight of each outcome */
typedef struct VecEntry
{
	Jsonb	   *key;
	uint32		hash;
	char		status;
	double		pos;
	double		neg;
} VecEntry;

static inline uint32
jsonb_bytes_hash(Jsonb *j)
{
	return hash_bytes((const unsigned char *) j, VARSIZE(j));
}

#define SH_PREFIX		vecs
#define SH_ELEMENT_TYPE	VecEntry
#define SH_KEY_TYPE		Jsonb *
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	jsonb_bytes_hash(k)
#define SH_EQUAL(tb, a, b)	(VARSIZE(a) == VARSIZE(b) && memcmp((a), (b), VARSIZE(a)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct LogitState
{
	MemoryContext cxt;
	vecs_hash  *vecs;
	double		l2;
	bool		l2_set;
	int64		rows;
} LogitState;

static LogitState *
state_new(MemoryContext cxt)
{
	LogitState *s = MemoryContextAllocZero(cxt, sizeof(LogitState));

	s->cxt = cxt;
	s->vecs = vecs_create(cxt, 256, NULL);
	return s;
}

/* Add weights to the entry of a document (copied into the state when new) */
static void
state_add(LogitState *s, Jsonb *doc, double pos, double neg)
{
	bool		found;
	VecEntry   *e = vecs_insert(s->vecs, doc, &found);

	if (!found)
	{
		e->key = MemoryContextAlloc(s->cxt, VARSIZE(doc));
		memcpy(e->key, doc, VARSIZE(doc));
		e->pos = 0;
		e->neg = 0;
	}
	e->pos += pos;
	e->neg += neg;
}

static void
state_set_l2(LogitState *s, double l2)
{
	if (isnan(l2) || isinf(l2) || l2 < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be a finite number, 0 or more")));
	if (s->l2_set && s->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same on every row of a fit")));
	s->l2 = l2;
	s->l2_set = true;
}

PG_FUNCTION_INFO_V1(crm_logit_trans);
Datum
crm_logit_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogitState *s;
	Jsonb	   *doc;
	double		w = 1;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_logit_trans called in non-aggregate context");
	s = PG_ARGISNULL(0) ? state_new(aggcxt) : (LogitState *) PG_GETARG_POINTER(0);
	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
		state_set_l2(s, PG_GETARG_FLOAT8(4));
	/* a row without its outcome, features or weight says nothing */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || (PG_NARGS() > 3 && PG_ARGISNULL(3)))
		PG_RETURN_POINTER(s);
	if (PG_NARGS() > 3)
	{
		w = PG_GETARG_FLOAT8(3);
		if (isnan(w) || isinf(w) || w < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight must be a finite number, 0 or more, not %g", w)));
	}
	doc = PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a JSON object of feature names and values"),
				 errhint("For example jsonb_build_object('country', country, 'employees', employees).")));
	if (PG_GETARG_BOOL(1))
		state_add(s, doc, w, 0);
	else
		state_add(s, doc, 0, w);
	s->rows++;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_logit_combine);
Datum
crm_logit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogitState *a,
			   *b;
	vecs_iterator it;
	VecEntry   *e;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_logit_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (LogitState *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? state_new(aggcxt) : (LogitState *) PG_GETARG_POINTER(0);
	if (b->l2_set)
		state_set_l2(a, b->l2);
	vecs_start_iterate(b->vecs, &it);
	while ((e = vecs_iterate(b->vecs, &it)) != NULL)
		state_add(a, e->key, e->pos, e->neg);
	a->rows += b->rows;
	PG_RETURN_POINTER(a);
}

/*
 * The flat state: int64 rows, int8 l2_set, float8 l2, int64 entries, then
 * each entry as float8 pos, float8 neg, int32 length, the jsonb bytes
 */
PG_FUNCTION_INFO_V1(crm_logit_serialize);
Datum
crm_logit_serialize(PG_FUNCTION_ARGS)
{
	LogitState *s = (LogitState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	vecs_iterator it;
	VecEntry   *e;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, s->rows);
	pq_sendbyte(&buf, s->l2_set ? 1 : 0);
	pq_sendfloat8(&buf, s->l2);
	pq_sendint64(&buf, s->vecs->members);
	vecs_start_iterate(s->vecs, &it);
	while ((e = vecs_iterate(s->vecs, &it)) != NULL)
	{
		pq_sendfloat8(&buf, e->pos);
		pq_sendfloat8(&buf, e->neg);
		pq_sendint32(&buf, VARSIZE(e->key));
		pq_sendbytes(&buf, (char *) e->key, VARSIZE(e->key));
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_logit_deserialize);
Datum
crm_logit_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *flat = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	LogitState *s;
	int64		n;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_logit_deserialize called in non-aggregate context");
	s = state_new(aggcxt);
	predict_reader(&buf, flat);
	s->rows = pq_getmsgint64(&buf);
	s->l2_set = pq_getmsgbyte(&buf) != 0;
	s->l2 = pq_getmsgfloat8(&buf);
	n = pq_getmsgint64(&buf);
	for (int64 i = 0; i < n; i++)
	{
		double		pos = pq_getmsgfloat8(&buf);
		double		neg = pq_getmsgfloat8(&buf);
		int32		len = pq_getmsgint(&buf, 4);
		Jsonb	   *doc = (Jsonb *) pq_getmsgbytes(&buf, len);

		state_add(s, doc, pos, neg);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

/* ---- the design ---------------------------------------------------------- */

/* A column of the design: a numeric feature, or one level of a string one */
typedef struct Column
{
	char	   *feature;
	char	   *level;			/* NULL: numeric */
} Column;

/* A feature's name and kind, as the documents give it */
typedef struct Feature
{
	char	   *name;
	uint32		hash;
	char		status;
	char		kind;			/* 'n' number or boolean, 's' string */
	int			nlevels;
	int			maxlevels;
	char	  **levels;
	int		   *column;			/* per level: the column, or -1 (baseline) */
	int			numeric_column;
} Feature;

#define SH_PREFIX		feats
#define SH_ELEMENT_TYPE	Feature
#define SH_KEY_TYPE		char *
#define SH_KEY			name
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b)	(strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The distinct vectors as sparse rows */
typedef struct Design
{
	int			m;				/* rows (distinct vectors) */
	int			p;				/* columns, the intercept first */
	Column	   *cols;
	int		   *rowptr;			/* m + 1 */
	int		   *colidx;
	double	   *val;
	double	   *pos;
	double	   *neg;
} Design;

static int
cmp_entries(const void *a, const void *b)
{
	Jsonb	   *x = (*(VecEntry *const *) a)->key;
	Jsonb	   *y = (*(VecEntry *const *) b)->key;

	if (VARSIZE(x) != VARSIZE(y))
		return VARSIZE(x) < VARSIZE(y) ? -1 : 1;
	return memcmp(x, y, VARSIZE(x));
}

static int
cmp_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static char *
key_string(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A feature's number (a JSON number or boolean), refusing what is not finite */
static double
feature_number(const char *name, JsonbValue *v)
{
	double		d;

	if (v->type == jbvBool)
		return v->val.boolean ? 1 : 0;
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
	if (isnan(d) || isinf(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is not a finite number", name)));
	return d;
}

/* Record a feature's value in the registry: its kind must not change */
static Feature *
note_feature(feats_hash *fh, const char *name, JsonbValue *v)
{
	bool		found;
	char		kind;
	Feature    *f;

	if (v->type == jbvNumeric || v->type == jbvBool)
		kind = 'n';
	else if (v->type == jbvString)
		kind = 's';
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is not a number, a string or a boolean", name),
				 errhint("Flatten nested values into features of their own; JSON null means missing.")));
	f = feats_insert(fh, (char *) name, &found);
	if (!found)
	{
		f->name = pstrdup(name);
		f->kind = kind;
		f->nlevels = 0;
		f->maxlevels = 0;
		f->levels = NULL;
		f->column = NULL;
		f->numeric_column = -1;
	}
	else if (f->kind != kind)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is a %s in some rows and a %s in others", name,
						f->kind == 'n' ? "number" : "string", kind == 'n' ? "number" : "string"),
				 errhint("Give a feature one type in every row (cast numbers to text for a categorical).")));
	return f;
}

static int
level_index(Feature *f, const char *level)
{
	/* levels are found by binary search once sorted (see build_design) */
	int			lo = 0,
				hi = f->nlevels - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(level, f->levels[mid]);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

/* A new level of a string feature (levels seen are kept in the fv table) */
static void
add_level(fv_hash *seen, Feature *f, const char *level)
{
	FvKey		k = predict_fv_key(f->name, level);
	bool		found;

	(void) fv_insert(seen, k, &found);
	if (found)
	{
		pfree(k.bytes);
		return;
	}
	if (f->nlevels == f->maxlevels)
	{
		f->maxlevels = Max(8, f->maxlevels * 2);
		f->levels = f->levels ? repalloc(f->levels, sizeof(char *) * f->maxlevels)
			: palloc(sizeof(char *) * f->maxlevels);
	}
	f->levels[f->nlevels++] = pstrdup(level);
}

/* Walk a document's top-level pairs, calling fn on each non-null value */
typedef void (*PairFn) (void *arg, const char *name, JsonbValue *v);

static void
walk_pairs(Jsonb *doc, PairFn fn, void *arg)
{
	JsonbIterator *it = JsonbIteratorInit(&doc->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = key_string(&v);
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvNull)
				fn(arg, name, &v);
			pfree(name);
			name = NULL;
		}
	}
}

typedef struct DiscoverArg
{
	feats_hash *fh;
	fv_hash    *levels;
} DiscoverArg;

static void
discover_pair(void *arg, const char *name, JsonbValue *v)
{
	Feature    *f = note_feature(((DiscoverArg *) arg)->fh, name, v);

	if (f->kind == 's')
	{
		char	   *level = key_string(v);

		add_level(((DiscoverArg *) arg)->levels, f, level);
		pfree(level);
	}
	else
		(void) feature_number(name, v);
}

typedef struct EncodeArg
{
	feats_hash *fh;
	Design	   *d;
	int			nnz;
	int			maxnnz;
} EncodeArg;

static void
encode_pair(void *arg, const char *name, JsonbValue *v)
{
	EncodeArg  *a = arg;
	Feature    *f = feats_lookup(a->fh, (char *) name);
	int			col;
	double		x;

	if (f->kind == 'n')
	{
		col = f->numeric_column;
		x = feature_number(name, v);
		if (x == 0)
			return;
	}
	else
	{
		char	   *level = key_string(v);

		col = f->column[level_index(f, level)];
		pfree(level);
		x = 1;
	}
	if (col < 0)
		return;
	if (a->nnz == a->maxnnz)
	{
		a->maxnnz *= 2;
		a->d->colidx = repalloc_huge(a->d->colidx, sizeof(int) * a->maxnnz);
		a->d->val = repalloc_huge(a->d->val, sizeof(double) * a->maxnnz);
	}
	a->d->colidx[a->nnz] = col;
	a->d->val[a->nnz] = x;
	a->nnz++;
}

static int
cmp_features(const void *a, const void *b)
{
	return strcmp((*(Feature *const *) a)->name, (*(Feature *const *) b)->name);
}

/* The design of the sorted entries: columns, then the sparse rows */
static Design *
build_design(VecEntry **entries, int m)
{
	feats_hash *fh = feats_create(CurrentMemoryContext, 64, NULL);
	DiscoverArg da = {fh, fv_create(CurrentMemoryContext, 64, NULL)};
	EncodeArg	ea;
	Design	   *d = palloc0(sizeof(Design));
	Feature   **fs;
	feats_iterator it;
	Feature    *f;
	int			nf = 0,
				p = 1;

	for (int i = 0; i < m; i++)
		walk_pairs(entries[i]->key, discover_pair, &da);
	fs = palloc(sizeof(Feature *) * Max(fh->members, 1));
	feats_start_iterate(fh, &it);
	while ((f = feats_iterate(fh, &it)) != NULL)
		fs[nf++] = f;
	qsort(fs, nf, sizeof(Feature *), cmp_features);
	/* the columns: the intercept, then per feature its number or its levels but the first */
	for (int i = 0; i < nf; i++)
		p += fs[i]->kind == 'n' ? 1 : Max(fs[i]->nlevels - 1, 0);
	d->p = p;
	d->cols = palloc(sizeof(Column) * p);
	d->cols[0].feature = "(intercept)";
	d->cols[0].level = NULL;
	p = 1;
	for (int i = 0; i < nf; i++)
	{
		f = fs[i];
		if (f->kind == 'n')
		{
			f->numeric_column = p;
			d->cols[p].feature = f->name;
			d->cols[p].level = NULL;
			p++;
			continue;
		}
		qsort(f->levels, f->nlevels, sizeof(char *), cmp_strings);
		f->column = palloc(sizeof(int) * f->nlevels);
		f->column[0] = -1;		/* the baseline */
		for (int l = 1; l < f->nlevels; l++)
		{
			f->column[l] = p;
			d->cols[p].feature = f->name;
			d->cols[p].level = f->levels[l];
			p++;
		}
	}
	d->m = m;
	d->rowptr = palloc(sizeof(int) * (m + 1));
	d->pos = palloc(sizeof(double) * Max(m, 1));
	d->neg = palloc(sizeof(double) * Max(m, 1));
	ea.fh = fh;
	ea.d = d;
	ea.nnz = 0;
	ea.maxnnz = Max(1024, m * 4);
	d->colidx = palloc_extended(sizeof(int) * ea.maxnnz, MCXT_ALLOC_HUGE);
	d->val = palloc_extended(sizeof(double) * ea.maxnnz, MCXT_ALLOC_HUGE);
	for (int i = 0; i < m; i++)
	{
		d->rowptr[i] = ea.nnz;
		walk_pairs(entries[i]->key, encode_pair, &ea);
		d->pos[i] = entries[i]->pos;
		d->neg[i] = entries[i]->neg;
	}
	d->rowptr[m] = ea.nnz;
	return d;
}

/* ---- the fit ------------------------------------------------------------- */

static inline double
softplus(double eta)
{
	return eta > 0 ? eta + log1p(exp(-eta)) : log1p(exp(eta));
}

/* x'beta of row r over the kept columns (beta indexed by column, 0 when dropped) */
static inline double
row_eta(const Design *d, int r, const double *beta)
{
	double		eta = beta[0];

	for (int k = d->rowptr[r]; k < d->rowptr[r + 1]; k++)
		eta += beta[d->colidx[k]] * d->val[k];
	return eta;
}

static double
log_likelihood(const Design *d, const double *beta)
{
	double		ll = 0;

	for (int r = 0; r < d->m; r++)
	{
		double		eta = row_eta(d, r, beta);

		ll += d->pos[r] * eta - (d->pos[r] + d->neg[r]) * softplus(eta);
	}
	return ll;
}

/*
 * The gradient and the Hessian of the log-likelihood (negated: positive
 * definite) at beta, with weights w(r) = n p (1 - p); with unit weights
 * (irls = false) the weighted cross-product of the design, for aliasing
 */
static void
cross_products(const Design *d, const double *beta, bool irls, double *grad, double *hess)
{
	int			p = d->p;

	memset(hess, 0, sizeof(double) * p * p);
	if (grad)
		memset(grad, 0, sizeof(double) * p);
	for (int r = 0; r < d->m; r++)
	{
		double		n = d->pos[r] + d->neg[r];
		double		w,
					g;
		int			lo = d->rowptr[r],
					hi = d->rowptr[r + 1];

		if (n == 0)
			continue;
		if (irls)
		{
			double		pr = 1 / (1 + exp(-row_eta(d, r, beta)));

			w = n * pr * (1 - pr);
			g = d->pos[r] - n * pr;
		}
		else
		{
			w = n;
			g = 0;
		}
		/* the intercept's row and column */
		hess[0] += w;
		if (grad)
			grad[0] += g;
		for (int k = lo; k < hi; k++)
		{
			int			a = d->colidx[k];
			double		wa = w * d->val[k];

			if (grad)
				grad[a] += g * d->val[k];
			hess[a] += wa;
			for (int l = lo; l < hi; l++)
				hess[a * p + d->colidx[l]] += wa * d->val[l];
		}
	}
	/* the intercept's column mirrors its row */
	for (int a = 1; a < p; a++)
		hess[a * p] = hess[a];
}

/*
 * Cholesky factor of the kept columns' submatrix (lower, in place in l,
 * kept x kept); false when not positive definite
 */
static bool
cholesky(const double *h, int p, const int *kept, int nk, double *l)
{
	for (int i = 0; i < nk; i++)
	{
		for (int j = 0; j <= i; j++)
		{
			double		s = h[kept[i] * p + kept[j]];

			for (int k = 0; k < j; k++)
				s -= l[i * nk + k] * l[j * nk + k];
			if (i == j)
			{
				if (!(s > 0))
					return false;
				l[i * nk + i] = sqrt(s);
			}
			else
				l[i * nk + j] = s / l[j * nk + j];
		}
	}
	return true;
}

static void
cholesky_solve(const double *l, int nk, const double *b, double *x)
{
	for (int i = 0; i < nk; i++)
	{
		double		s = b[i];

		for (int k = 0; k < i; k++)
			s -= l[i * nk + k] * x[k];
		x[i] = s / l[i * nk + i];
	}
	for (int i = nk - 1; i >= 0; i--)
	{
		double		s = x[i];

		for (int k = i + 1; k < nk; k++)
			s -= l[k * nk + i] * x[k];
		x[i] = s / l[i * nk + i];
	}
}

/*
 * The columns to keep: in order, each that is not (to a relative 1e-7) a
 * linear combination of those kept before it, in the design's weighted
 * cross-product (an incremental Cholesky, as R's pivoting QR decides
 * aliasing).  Returns how many; kept[] gets them.
 */
static int
keep_columns(const double *g, int p, int *kept)
{
	double	   *l = palloc0(sizeof(double) * p * p);
	double	   *v = palloc(sizeof(double) * p);
	int			nk = 0;

	for (int j = 0; j < p; j++)
	{
		double		d = g[j * p + j];

		if (!(d > 0))
			continue;
		for (int i = 0; i < nk; i++)
		{
			double		s = g[kept[i] * p + j];

			for (int k = 0; k < i; k++)
				s -= l[i * p + k] * v[k];
			v[i] = s / l[i * p + i];
		}
		for (int i = 0; i < nk; i++)
			d -= v[i] * v[i];
		if (d <= 1e-7 * g[j * p + j])
			continue;
		for (int i = 0; i < nk; i++)
			l[nk * p + i] = v[i];
		l[nk * p + nk] = sqrt(d);
		kept[nk++] = j;
	}
	return nk;
}

typedef struct Fit
{
	double	   *beta;
	double	   *se;
	bool	   *kept;
	double		ll;
	int			iterations;
	bool		converged;
} Fit;

#define MAX_ITERATIONS 100

static double
penalised(const Design *d, const double *beta, double l2)
{
	double		pen = 0;

	for (int j = 1; j < d->p; j++)
		pen += beta[j] * beta[j];
	return log_likelihood(d, beta) - 0.5 * l2 * pen;
}

/* Newton's method with step halving on the kept columns */
static Fit
newton(const Design *d, double l2, double pos, double total)
{
	int			p = d->p;
	int		   *kept = palloc(sizeof(int) * p);
	double	   *g = palloc(sizeof(double) * p * p);
	double	   *grad = palloc(sizeof(double) * p);
	double	   *l;
	double	   *b = palloc(sizeof(double) * p);
	double	   *x = palloc(sizeof(double) * p);
	double	   *trial = palloc(sizeof(double) * p);
	Fit			fit;
	int			nk;
	double		obj;

	fit.beta = palloc0(sizeof(double) * p);
	fit.se = palloc0(sizeof(double) * p);
	fit.kept = palloc0(sizeof(bool) * p);
	cross_products(d, NULL, false, NULL, g);
	nk = keep_columns(g, p, kept);
	for (int i = 0; i < nk; i++)
		fit.kept[kept[i]] = true;
	l = palloc(sizeof(double) * nk * nk);
	fit.beta[0] = log(pos / (total - pos));
	obj = penalised(d, fit.beta, l2);
	fit.converged = false;
	for (fit.iterations = 1; fit.iterations <= MAX_ITERATIONS; fit.iterations++)
	{
		double		step = 1,
					next;

		CHECK_FOR_INTERRUPTS();
		cross_products(d, fit.beta, true, grad, g);
		for (int i = 0; i < nk; i++)
		{
			int			j = kept[i];

			b[i] = grad[j] - (j > 0 ? l2 * fit.beta[j] : 0);
			if (j > 0)
				g[j * p + j] += l2;
		}
		if (!cholesky(g, p, kept, nk, l))
			break;				/* separation: the Hessian vanished */
		cholesky_solve(l, nk, b, x);
		for (;;)
		{
			memcpy(trial, fit.beta, sizeof(double) * p);
			for (int i = 0; i < nk; i++)
				trial[kept[i]] += step * x[i];
			next = penalised(d, trial, l2);
			if (next >= obj - 1e-12 * fabs(obj) || step < 1e-10)
				break;
			step /= 2;
		}
		memcpy(fit.beta, trial, sizeof(double) * p);
		if (fabs(next - obj) < 1e-10 * (fabs(next) + 0.1))
		{
			obj = next;
			fit.converged = true;
			break;
		}
		obj = next;
	}
	if (fit.iterations > MAX_ITERATIONS)
		fit.iterations = MAX_ITERATIONS;
	/* standard errors: the inverse Hessian's diagonal at the estimate */
	cross_products(d, fit.beta, true, grad, g);
	for (int i = 0; i < nk; i++)
		if (kept[i] > 0)
			g[kept[i] * p + kept[i]] += l2;
	if (cholesky(g, p, kept, nk, l))
	{
		for (int i = 0; i < nk; i++)
		{
			memset(b, 0, sizeof(double) * nk);
			b[i] = 1;
			cholesky_solve(l, nk, b, x);
			fit.se[kept[i]] = sqrt(x[i]);
		}
	}
	else
		for (int i = 0; i < nk; i++)
			fit.se[kept[i]] = get_float8_nan();
	fit.ll = log_likelihood(d, fit.beta);
	return fit;
}

PG_FUNCTION_INFO_V1(crm_logit_final);
Datum
crm_logit_final(PG_FUNCTION_ARGS)
{
	LogitState *s;
	VecEntry  **entries;
	VecEntry   *e;
	vecs_iterator it;
	int			m = 0;
	double		pos = 0,
				neg = 0;
	Design	   *d;
	Fit			fit;
	TupleDesc	desc;
	int			nk = 0,
				nd = 0;
	char	  **names,
			  **levels,
			  **dropped;
	bool	   *level_null;
	double	   *coef,
			   *se;
	Datum		values[LOGIT_NATTS];
	bool		nulls[LOGIT_NATTS] = {0};

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (LogitState *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm.logit_fit must return crm.logit");
	entries = palloc(sizeof(VecEntry *) * Max(s->vecs->members, 1));
	vecs_start_iterate(s->vecs, &it);
	while ((e = vecs_iterate(s->vecs, &it)) != NULL)
		entries[m++] = e;
	qsort(entries, m, sizeof(VecEntry *), cmp_entries);
	for (int i = 0; i < m; i++)
	{
		pos += entries[i]->pos;
		neg += entries[i]->neg;
	}
	if (pos == 0 || neg == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the outcome is %s in every row (%.0f rows): there is nothing to tell apart",
						pos > 0 ? "true" : "false", pos + neg),
				 errhint("A fit needs rows of both outcomes.")));
	d = build_design(entries, m);
	fit = newton(d, s->l2, pos, pos + neg);
	names = palloc(sizeof(char *) * d->p);
	levels = palloc(sizeof(char *) * d->p);
	level_null = palloc(sizeof(bool) * d->p);
	dropped = palloc(sizeof(char *) * d->p);
	coef = palloc(sizeof(double) * d->p);
	se = palloc(sizeof(double) * d->p);
	for (int j = 0; j < d->p; j++)
	{
		if (!fit.kept[j])
		{
			dropped[nd++] = d->cols[j].level
				? psprintf("%s=%s", d->cols[j].feature, d->cols[j].level) : d->cols[j].feature;
			continue;
		}
		names[nk] = d->cols[j].feature;
		levels[nk] = d->cols[j].level;
		level_null[nk] = d->cols[j].level == NULL;
		coef[nk] = fit.beta[j];
		se[nk] = fit.se[j];
		nk++;
	}
	values[0] = predict_text_array(names, NULL, nk);
	values[1] = predict_text_array(levels, level_null, nk);
	values[2] = predict_float8_array(coef, nk);
	values[3] = predict_float8_array(se, nk);
	values[4] = predict_text_array(dropped, NULL, nd);
	values[5] = Float8GetDatum(fit.ll);
	values[6] = Float8GetDatum(pos + neg);
	values[7] = Float8GetDatum(pos);
	values[8] = Int64GetDatum(m);
	values[9] = Int32GetDatum(fit.iterations);
	values[10] = BoolGetDatum(fit.converged);
	values[11] = Float8GetDatum(s->l2);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
