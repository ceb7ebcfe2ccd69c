/*
 * clv_bgnbd.c
 *		BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel &
 *		Filiztekin 2007): fitting and predictions.
 *
 * Both models share one likelihood shape,
 *	 L = B(a, b+x+m)/B(a,b) G(r+x) a^r/(G(r)) [ (alpha+T)^-(r+x)
 *		 + [x>0 or MBG] a/(b+x+m-1) (alpha+t_x)^-(r+x) ]
 * with m = 0 for BG/NBD and m = 1 for MBG/NBD (where a customer may also
 * drop out at time zero), computed in log space with a log-sum-exp and with
 * an analytic gradient on log-parameters.  The x-only terms (lgamma,
 * digamma) are computed once per distinct x: the rows arrive sorted.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "clv.h"

typedef struct BgArgs
{
	ClvData    *d;
	int			m;				/* 0 BG/NBD, 1 MBG/NBD */
	double	   *lt;				/* per distinct time: log(alpha + t) */
	double	   *it;				/* per distinct time: 1 / (alpha + t) */
	double	   *pw;				/* per distinct time: (alpha + t)^(r + x), one x */
	double		ltmax;			/* largest |lt| */
	int64	   *xend;			/* per distinct x: the end of its rows */
} BgArgs;

/* One customer's log-likelihood (times in the same unit as alpha) */
static double
bg_loglik1(const double *p, int m, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];
	double		c = lgamma(r + x) - lgamma(r) + r * log(alpha)
		+ clv_lbeta(a, b + x + m) - clv_lbeta(a, b);
	double		u1 = -(r + x) * log(alpha + T);

	if (x > 0 || m == 1)
		return c + clv_log_add(u1, log(a) - log(b + x + m - 1) - (r + x) * log(alpha + tx));
	return c + u1;
}

/* Derivatives wanted from bg_sums: none, gradient, or gradient and Hessian */
#define BG_VALUE	0
#define BG_GRAD		1
#define BG_HESS		2

/*
 * The terms of one value of x (cx of the header: lgamma, lbeta) and their
 * derivatives in the natural parameters (r, alpha, a, b), added W times
 * (W: the weight of the rows with this x).
 */
static double
bg_x_terms(const double *p, int m, double x, double W, int want, double *g, double H[4][4])
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];
	double		bx = b + x + m;

	if (want >= BG_GRAD)
	{
		double		psi_ab = clv_digamma(a + b),
					psi_abx = clv_digamma(a + bx);

		g[0] += W * (clv_digamma(r + x) - clv_digamma(r) + log(alpha));
		g[1] += W * r / alpha;
		g[2] += W * (psi_ab - psi_abx);
		g[3] += W * (clv_digamma(bx) - psi_abx - clv_digamma(b) + psi_ab);
	}
	if (want >= BG_HESS)
	{
		double		tri_ab = clv_trigamma(a + b),
					tri_abx = clv_trigamma(a + bx);

		H[0][0] += W * (clv_trigamma(r + x) - clv_trigamma(r));
		H[0][1] += W / alpha;
		H[1][1] -= W * r / (alpha * alpha);
		H[2][2] += W * (tri_ab - tri_abx);
		H[2][3] += W * (tri_ab - tri_abx);
		H[3][3] += W * (clv_trigamma(bx) - tri_abx - clv_trigamma(b) + tri_ab);
	}
	return W * (lgamma(r + x) - lgamma(r) + r * log(alpha) + clv_lbeta(a, bx) - clv_lbeta(a, b));
}

/* Factors 1 + e (each in [1, 2]) multiplied before one log: at most 2^512 */
#define LOG_BATCH	512
/* Heaviest row whose (1 + e)^w is multiplied out */
#define LOG_POW_MAX	8

/*
 * The log-likelihood of the rows (times scaled, indexed) at natural
 * parameters p, and its gradient g and Hessian H (upper triangle) in p.
 * Per row the bracket is log(e^u1 + e^u2): one exp and, for rows of a
 * small whole weight, a share of one log per LOG_BATCH factors, the
 * shares w1, w2 of the two terms coming from the same exp; its Hessian is
 * w1 H1 + w2 H2 + w1 w2 (g1 - g2)(g1 - g2)'.  Inlined with want a
 * constant, and summing into locals, so the row loop keeps its sums in
 * registers and tests nothing it need not.
 */
static pg_attribute_always_inline double
bg_sums_impl(BgArgs *ba, const double *p, const int want, double *g, double H[4][4])
{
	ClvData    *d = ba->d;
	int			m = ba->m;
	double		r = p[0],
				a = p[2],
				b = p[3];
	double		la = log(a),
				ia = 1.0 / a;
	double		ll = 0;
	double		curx = -1,
				W = 0,
				lden = 0,
				iden = 0;
	/* row sums: gradient, and Hessian entries rr.. of the bracket terms */
	double		g0 = 0,
				g1 = 0,
				g2 = 0,
				g3 = 0;
	double		hra = 0,
				haa = 0,
				hpp = 0,
				hqq = 0;
	double		c00 = 0,
				c01 = 0,
				c02 = 0,
				c03 = 0,
				c11 = 0,
				c12 = 0,
				c13 = 0,
				c22 = 0,
				c23 = 0,
				c33 = 0;
	int64		j;
	const double *lt = ba->lt;
	const double *it = ba->it;
	double		prod = 1;		/* product of (1 + e)^w over light rows */
	int			nprod = 0;		/* its factors: prod <= 2^nprod */
	double	   *pw = ba->pw;
	bool		use_pw = false; /* this x's bracket from powers, not exp */
	double		cx = 0;			/* (b + x + m - 1) / a */
	int64		gi = -1;

	for (j = 0; j < d->n; j++)
	{
		const ClvRow *row = &d->rows[j];
		double		x = row->k[0],
					w = row->w;
		double		kx = r + x;
		double		lT = lt[d->iT[j]],
					iT = it[d->iT[j]];
		double		u1 = -kx * lT;

		if (x != curx)
		{
			if (W > 0)
				ll += bg_x_terms(p, m, curx, W, want, g, H);
			curx = x;
			W = 0;
			lden = log(b + x + m - 1);
			iden = 1.0 / (b + x + m - 1);
			cx = (b + x + m - 1) * ia;
			gi++;

			/*
			 * e^(u1 - u2) = (alpha + t_x)^kx / (alpha + T)^kx * cx: when
			 * this x has more rows than there are times, one power a time
			 * replaces one exp a row (kept far from overflow)
			 */
			use_pw = (x > 0 || m == 1) && ba->xend[gi] - j > d->ntimes
				&& kx * ba->ltmax + fabs(log(cx)) < 600;
			if (use_pw)
			{
				int64		t;

				for (t = 0; t < d->ntimes; t++)
					pw[t] = exp(kx * lt[t]);
			}
		}
		W += w;
		if (x > 0 || m == 1)
		{
			double		ltx = lt[d->itx[j]],
						itx = it[d->itx[j]];
			double		u2 = la - lden - kx * ltx;
			double		e,
						w1,
						w2;

			/*
			 * log(e^u1 + e^u2) = max + log(1 + e^-|u1-u2|): with e in (0, 1]
			 * rounding 1 + e costs at most 1.1e-16 absolute in a row's term,
			 * and glibc's log is much faster than its log1p
			 */
			if (u2 > u1)
			{
				e = use_pw ? pw[d->itx[j]] * cx / pw[d->iT[j]] : exp(u1 - u2);
				ll += w * u2;
				w1 = e / (1 + e);
				w2 = 1 - w1;
			}
			else
			{
				e = use_pw ? pw[d->iT[j]] / (pw[d->itx[j]] * cx) : exp(u2 - u1);
				ll += w * u1;
				w2 = e / (1 + e);
				w1 = 1 - w2;
			}
			/*
			 * w log(1 + e), 1 + e in [1, 2]: rows of a small whole weight
			 * multiply (1 + e)^w into a product, whose log is taken when
			 * it could next exceed 2^LOG_BATCH; heavier rows take a log
			 */
			if (w <= LOG_POW_MAX && w == (int) w)
			{
				double		f = 1 + e;
				int			i;

				if (nprod + (int) w > LOG_BATCH)
				{
					ll += log(prod);
					prod = 1;
					nprod = 0;
				}
				for (i = 0; i < (int) w; i++)
					prod *= f;
				nprod += (int) w;
			}
			else
				ll += w * log(1 + e);
			if (want >= BG_GRAD)
			{
				g0 -= w * (w1 * lT + w2 * ltx);
				g1 -= w * kx * (w1 * iT + w2 * itx);
				g2 += w * w2;	/* times 1/a at the end */
				g3 -= w * w2 * iden;
			}
			if (want >= BG_HESS)
			{
				/* g1 - g2 = (ltx - lT, kx (itx - iT), -1/a, iden) */
				double		d0 = ltx - lT,
							d1 = kx * (itx - iT),
							d3 = iden;
				double		c = w * w1 * w2;

				hra -= w * (w1 * iT + w2 * itx);
				haa += w * kx * (w1 * iT * iT + w2 * itx * itx);
				hqq += w * w2 * iden * iden;
				/* c d d', with d2 = -1/a taken out: c02, c12, c23 times -1/a, c22 times 1/a^2 */
				c00 += c * d0 * d0;
				c01 += c * d0 * d1;
				c02 += c * d0;
				c03 += c * d0 * d3;
				c11 += c * d1 * d1;
				c12 += c * d1;
				c13 += c * d1 * d3;
				c22 += c;
				c23 += c * d3;
				c33 += c * d3 * d3;
				hpp += w * w2;	/* times -1/a^2 at the end */
			}
		}
		else
		{
			ll += w * u1;
			if (want >= BG_GRAD)
			{
				g0 -= w * lT;
				g1 -= w * kx * iT;
			}
			if (want >= BG_HESS)
			{
				hra -= w * iT;
				haa += w * kx * iT * iT;
			}
		}
	}
	if (W > 0)
		ll += bg_x_terms(p, m, curx, W, want, g, H);
	ll += log(prod);
	if (want >= BG_GRAD)
	{
		g[0] += g0;
		g[1] += g1;
		g[2] += g2 * ia;
		g[3] += g3;
	}
	if (want >= BG_HESS)
	{
		H[0][0] += c00;
		H[0][1] += hra + c01;
		H[0][2] -= c02 * ia;
		H[0][3] += c03;
		H[1][1] += haa + c11;
		H[1][2] -= c12 * ia;
		H[1][3] += c13;
		H[2][2] += (c22 - hpp) * ia * ia;
		H[2][3] -= c23 * ia;
		H[3][3] += hqq + c33;
	}
	return ll;
}

/* bg_sums_impl for each kind of want, each compiled with it a constant */
static double
bg_sums(BgArgs *ba, const double *p, int want, double *g, double H[4][4])
{
	int64		j;

	/* log(alpha + t) and 1/(alpha + t) once per distinct time */
	ba->ltmax = 0;
	for (j = 0; j < ba->d->ntimes; j++)
	{
		ba->lt[j] = log(p[1] + ba->d->times[j]);
		ba->it[j] = 1.0 / (p[1] + ba->d->times[j]);
		ba->ltmax = Max(ba->ltmax, fabs(ba->lt[j]));
	}
	if (want == BG_HESS)
		return bg_sums_impl(ba, p, BG_HESS, g, H);
	if (want == BG_GRAD)
		return bg_sums_impl(ba, p, BG_GRAD, g, H);
	return bg_sums_impl(ba, p, BG_VALUE, g, H);
}

/* Objective: minus the mean log-likelihood over log-parameters, with gradient and Hessian */
static double
bg_objective(const double *theta, double *grad, double *hess, void *arg)
{
	BgArgs	   *ba = arg;
	double		W = ba->d->total_w;
	double		p[4],
				g[4] = {0, 0, 0, 0},
				H[4][4] = {{0}};
	double		ll;
	int			i,
				k;

	for (i = 0; i < 4; i++)
		p[i] = exp(theta[i]);
	ll = bg_sums(ba, p, hess ? BG_HESS : (grad ? BG_GRAD : BG_VALUE), g, H);
	/* chain rule to log-parameters: d/dtheta_i = p_i d/dp_i; minus the mean */
	if (grad)
		for (i = 0; i < 4; i++)
			grad[i] = -g[i] * p[i] / W;
	if (hess)
		for (i = 0; i < 4; i++)
			for (k = i; k < 4; k++)
			{
				double		v = H[i][k] * p[i] * p[k] + (i == k ? g[i] * p[i] : 0);

				hess[i * CLV_MAX_PARAMS + k] = hess[k * CLV_MAX_PARAMS + i] = -v / W;
			}
	return -ll / W;
}

/* The arguments of the objective over d: time tables, and where each x ends */
static void
bg_args_init(BgArgs *ba, ClvData *d, int m)
{
	int64		j,
				k = 0;

	ba->d = d;
	ba->m = m;
	ba->lt = palloc_extended(sizeof(double) * Max(d->ntimes, 1), MCXT_ALLOC_HUGE);
	ba->it = palloc_extended(sizeof(double) * Max(d->ntimes, 1), MCXT_ALLOC_HUGE);
	ba->pw = palloc_extended(sizeof(double) * Max(d->ntimes, 1), MCXT_ALLOC_HUGE);
	ba->xend = palloc_extended(sizeof(int64) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	for (j = 1; j <= d->n; j++)
		if (j == d->n || d->rows[j].k[0] != d->rows[j - 1].k[0])
			ba->xend[k++] = j;
}

/* Fit BG/NBD (m = 0) or MBG/NBD (m = 1) to the aggregate state */
static ClvModel *
bg_fit(FunctionCallInfo fcinfo, int kind, int m)
{
	ClvRows    *st = clv_final_state(fcinfo, clv_kind_info(kind)->name);
	BgArgs		ba;
	double		theta[4] = {0, 0, 0, 0};
	ClvFitResult res;

	bg_args_init(&ba, clv_prepare_indexed(st), m);
	/* from a fit on a sample, Newton needs two or three passes over all rows, not six to ten */
	if (ba.d->n >= CLV_SAMPLE_FROM)
	{
		BgArgs		sa;
		double		t0[4] = {0, 0, 0, 0};

		bg_args_init(&sa, clv_sample(ba.d, CLV_SAMPLE_ROWS), m);
		clv_minimise_newton(bg_objective, &sa, 4, t0, sa.d->total_w, &res);
		if (clv_usable_start(4, t0, &res))
			memcpy(theta, t0, sizeof(theta));
	}
	clv_minimise_newton(bg_objective, &ba, 4, theta, ba.d->total_w, &res);
	/* without a repeat purchase the likelihood has no interior maximum */
	if (ba.d->sum_wx == 0)
		res.converged = false;
	return clv_fit_model(kind, &res, theta, (const double[4]) {1, ba.d->scale, 1, 1},
						 ba.d->sum_wx * log(ba.d->scale), ba.d->total_w);
}

PG_FUNCTION_INFO_V1(crm_bgnbd_final);
/* Final function of crm.bgnbd_fit */
Datum
crm_bgnbd_final(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(bg_fit(fcinfo, CLV_BGNBD, 0));
}

PG_FUNCTION_INFO_V1(crm_mbgnbd_final);
/* Final function of crm.mbgnbd_fit */
Datum
crm_mbgnbd_final(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(bg_fit(fcinfo, CLV_MBGNBD, 1));
}

/* The model argument of a BG/NBD or MBG/NBD function, with its m */
static ClvModel *
bg_model(FunctionCallInfo fcinfo, int *m)
{
	ClvModel   *model = (ClvModel *) PG_GETARG_POINTER(0);

	if (model->kind != CLV_BGNBD && model->kind != CLV_MBGNBD)
		elog(ERROR, "expected a bgnbd or mbgnbd model, got kind %d", model->kind);
	*m = (model->kind == CLV_MBGNBD) ? 1 : 0;
	return model;
}

/* P(alive | x, t_x, T) */
static double
bg_palive(const double *p, int m, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];

	if (x == 0 && m == 0)
		return 1.0;
	/* 1 / (1 + a/(b+x+m-1) ((alpha+T)/(alpha+t_x))^(r+x)) */
	return 1.0 / (1.0 + exp(log(a) - log(b + x + m - 1)
							+ (r + x) * (log(alpha + T) - log(alpha + tx))));
}

/*
 * E[1/p (1 - (A/(A+t))^k 2F1(k, B; C; t/(A+t)))] shape shared by the
 * expectations: (C/(a-1)) [1 - (A/(A+t))^k 2F1(k, B; C; t/(A+t))], C = a+B-1
 */
static double
bg_expect_core(double a, double k, double A, double B, double t)
{
	double		C = a + B - 1;
	double		z = t / (A + t);
	int			sign;
	double		lf;

	if (t == 0)
		return 0;
	if (fabs(a - 1.0) < 1e-7)
		/* removable singularity: average the two sides */
		return (bg_expect_core(1.0 - 1e-6, k, A, B, t) + bg_expect_core(1.0 + 1e-6, k, A, B, t)) / 2;
	lf = clv_log_hyp2f1(k, B, C, z, &sign);
	if (sign > 0)
		return C / (a - 1.0) * -expm1(k * log(A / (A + t)) + lf);
	return C / (a - 1.0) * (1.0 + exp(k * log(A / (A + t)) + lf));
}

/*
 * A per-call-site memo of bg_expect_core: the bracket depends on the
 * customer only through x and T (and the horizon), which take few distinct
 * values in real data (a day grid), so a query over a million customers
 * computes each hypergeometric function once.  Direct-mapped, in fn_mcxt.
 */
#define EXPECT_CACHE_SIZE	65536

typedef struct ExpectCacheEntry
{
	double		key[5];
	double		value;
	bool		used;
} ExpectCacheEntry;

/* bg_expect_core through the memo of the calling function, if any */
static double
bg_expect_cached(FmgrInfo *flinfo, double a, double k, double A, double B, double t)
{
	ExpectCacheEntry *cache;
	ExpectCacheEntry *e;
	double		key[5] = {a, k, A, B, t};
	uint64		h = 0;
	int			i;

	if (flinfo == NULL)
		return bg_expect_core(a, k, A, B, t);
	if (flinfo->fn_extra == NULL)
		flinfo->fn_extra = MemoryContextAllocZero(flinfo->fn_mcxt,
												  sizeof(ExpectCacheEntry) * EXPECT_CACHE_SIZE);
	cache = (ExpectCacheEntry *) flinfo->fn_extra;
	for (i = 0; i < 5; i++)
	{
		uint64		b;

		memcpy(&b, &key[i], sizeof(b));
		h = (h ^ b) * UINT64CONST(0x100000001b3);
		h ^= h >> 29;
	}
	e = &cache[h % EXPECT_CACHE_SIZE];
	if (e->used && memcmp(e->key, key, sizeof(key)) == 0)
		return e->value;
	memcpy(e->key, key, sizeof(key));
	e->value = bg_expect_core(a, k, A, B, t);
	e->used = true;
	return e->value;
}

/* E[Y(t) | x, t_x, T] */
static double
bg_conditional(FmgrInfo *flinfo, const double *p, int m, double t, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];

	return bg_expect_cached(flinfo, a, r + x, alpha + T, b + x + m, t) * bg_palive(p, m, x, tx, T);
}

/* E[X(t)] for a customer who made a first purchase at time 0 */
static double
bg_unconditional(const double *p, int m, double t)
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];
	double		e = bg_expect_core(a, r, alpha, b, t);

	if (m == 1)
	{
		/* MBG/NBD: the customer may drop out right at time 0 */
		int			sign;
		double		z = t / (alpha + t);
		double		lf = clv_log_hyp2f1(r, b, a + b, z, &sign);

		e = e - 1.0 + sign * exp(r * log(alpha / (alpha + t)) + lf);
	}
	return e;
}

/* Most terms a tail series may take before giving up */
#define TAIL_MAX_TERMS		10000000

/*
 * P(N >= n) for N ~ NB(r, q), given log q and log(1 - q): one minus the
 * lower sum while that sum is below one half, else the upper tail summed
 * directly (each term from the last by the ratio (r+j)/(j+1) (1-q)), so a
 * tiny tail keeps its relative precision instead of cancelling to noise.
 */
static double
nb_upper_tail(double r, double lq, double lz, double n)
{
	double		lower = -INFINITY,
				sum = 1,
				term = 1,
				z = exp(lz);
	double		j;

	if (n <= 0)
		return 1.0;
	for (j = 0; j < n; j++)
		lower = clv_log_add(lower, lgamma(r + j) - lgamma(r) - lgamma(j + 1) + r * lq + j * lz);
	if (lower < log(0.5))
		return -expm1(lower);
	for (j = n; j < n + TAIL_MAX_TERMS; j++)
	{
		term *= (r + j) / (j + 1) * z;
		sum += term;
		if (term < 1e-17 * sum && (r + j) * z < j + 1)
			return exp(lgamma(r + n) - lgamma(r) - lgamma(n + 1) + r * lq + n * lz) * sum;
		if (fmod(j, 100000) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("cannot compute the probability of %g or more purchases to full precision", n),
			 errdetail("The tail series did not converge in %d terms.", TAIL_MAX_TERMS)));
	return 0;					/* keep the compiler quiet */
}

/*
 * P(X(t) = n) of a new customer, BG/NBD (m = 0) or MBG/NBD (m = 1).  Given
 * the purchase rate and the dropout probability p, the customer is still
 * active after the n-th purchase ((1-p)^(n+m)) with n purchases in t, or
 * drops out right after the n-th (p (1-p)^(n+m-1)) having made it by t:
 *	 B(a, b+n+m)/B(a,b) NB(n) + [n > 0 or m] B(a+1, b+n+m-1)/B(a,b) P(NB >= n)
 * with NB(j) = G(r+j)/(G(r) j!) q^r (1-q)^j, q = alpha/(alpha+t).
 */
static double
bg_prob(const double *p, int m, double n, double t)
{
	double		r = p[0],
				alpha = p[1],
				a = p[2],
				b = p[3];
	double		lq = log(alpha / (alpha + t)),
				lz = log(t / (alpha + t));
	double		res;

	if (t == 0)
		return (n == 0) ? 1.0 : 0.0;	/* no time, no purchase */
	res = exp(clv_lbeta(a, b + n + m) - clv_lbeta(a, b)
			  + lgamma(r + n) - lgamma(r) - lgamma(n + 1) + r * lq + n * lz);
	if (n > 0 || m == 1)
		res += exp(clv_lbeta(a + 1, b + n + m - 1) - clv_lbeta(a, b))
			* nb_upper_tail(r, lq, lz, n);
	return res;
}

PG_FUNCTION_INFO_V1(crm_bgnbd_expected_conditional);
/* crm.expected_purchases(bgnbd|mbgnbd, t, frequency, recency, T) */
Datum
crm_bgnbd_expected_conditional(PG_FUNCTION_ARGS)
{
	int			m;
	ClvModel   *model = bg_model(fcinfo, &m);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(1));
	ClvRfm		c = clv_rfm_arg(fcinfo, 2);

	PG_RETURN_FLOAT8(bg_conditional(fcinfo->flinfo, model->p, m, t, c.x, c.tx, c.T));
}

PG_FUNCTION_INFO_V1(crm_bgnbd_expected_unconditional);
/* crm.expected_purchases(bgnbd|mbgnbd, t): a new customer */
Datum
crm_bgnbd_expected_unconditional(PG_FUNCTION_ARGS)
{
	int			m;
	ClvModel   *model = bg_model(fcinfo, &m);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(1));

	PG_RETURN_FLOAT8(bg_unconditional(model->p, m, t));
}

/* A function of one customer's (frequency, recency, T), arguments 1 to 3 */
static Datum
bg_customer(FunctionCallInfo fcinfo,
			double (*fn) (const double *p, int m, double x, double tx, double T))
{
	int			m;
	ClvModel   *model = bg_model(fcinfo, &m);
	ClvRfm		c = clv_rfm_arg(fcinfo, 1);

	PG_RETURN_FLOAT8(fn(model->p, m, c.x, c.tx, c.T));
}

PG_FUNCTION_INFO_V1(crm_bgnbd_p_alive);
/* crm.p_alive(bgnbd|mbgnbd, frequency, recency, T) */
Datum
crm_bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	return bg_customer(fcinfo, bg_palive);
}

PG_FUNCTION_INFO_V1(crm_bgnbd_prob_purchases);
/* crm.prob_purchases(bgnbd|mbgnbd, n, t) = P(X(t) = n) */
Datum
crm_bgnbd_prob_purchases(PG_FUNCTION_ARGS)
{
	int			m;
	ClvModel   *model = bg_model(fcinfo, &m);
	double		n = clv_check_count(PG_GETARG_FLOAT8(1), "number of purchases", 1e6);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(2));

	PG_RETURN_FLOAT8(bg_prob(model->p, m, n, t));
}

PG_FUNCTION_INFO_V1(crm_bgnbd_loglik);
/* crm.log_likelihood(bgnbd|mbgnbd, frequency, recency, T): one customer */
Datum
crm_bgnbd_loglik(PG_FUNCTION_ARGS)
{
	return bg_customer(fcinfo, bg_loglik1);
}

/* E[Y(t)] for crm.clv: conditional expectation of a BG/NBD (m = 0) or MBG/NBD (m = 1) model */
double
clv_bg_expect(FmgrInfo *flinfo, const double *p, int m, double t, double x, double tx, double T)
{
	return bg_conditional(flinfo, p, m, t, x, tx, T);
}
