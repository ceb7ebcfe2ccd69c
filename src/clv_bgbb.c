/*
 * clv_bgbb.c
 *		BG/BB (Fader, Hardie & Shang 2010): discrete transaction
 *		opportunities (one purchase or donation possible per period).
 *
 * A customer with x transactions in n opportunities, the last at t_x, has
 *	 L = B(al+x, be+n-x)/B(al,be) B(ga, de+n)/B(ga,de)
 *	   + sum_{i=0}^{n-t_x-1} B(al+x, be+t_x-x+i)/B(al,be) B(ga+1, de+t_x+i)/B(ga,de)
 * summed in log space.  Rows are usually few (one per (x, t_x, n) pattern),
 * with the number of customers as weight.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"

#include "clv.h"

/* log of the binomial coefficient C(n, k) */
static double
lchoose(double n, double k)
{
	return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
}

/* log L of one pattern */
static double
bgbb_loglik1(const double *p, double x, double tx, double n)
{
	double		al = p[0],
				be = p[1],
				ga = p[2],
				de = p[3];
	double		lab = clv_lbeta(al, be),
				lgd = clv_lbeta(ga, de);
	double		l = clv_lbeta(al + x, be + n - x) - lab + clv_lbeta(ga, de + n) - lgd;
	int			i;

	for (i = 0; i < (int) (n - tx); i++)
		l = clv_log_add(l, clv_lbeta(al + x, be + tx - x + i) - lab
							+ clv_lbeta(ga + 1, de + tx + i) - lgd);
	return l;
}

/* d log B(a, b) / da (swap the arguments for d/db) */
static inline double
dlbeta(double a, double b)
{
	return clv_digamma(a) - clv_digamma(a + b);
}

/*
 * log L of one pattern and its gradient g in (alpha, beta, gamma, delta):
 * L is a sum of terms e^{u_k}, so d log L = sum_k softmax(u)_k du_k,
 * accumulated in one pass with the running maximum as scale.
 */
static double
bgbb_loglik1_grad(const double *p, double x, double tx, double n, double *g)
{
	double		al = p[0],
				be = p[1],
				ga = p[2],
				de = p[3];
	double		lab = clv_lbeta(al, be),
				lgd = clv_lbeta(ga, de);
	/* derivatives of -log B(al,be) - log B(ga,de), common to every term */
	double		c[4] = {-dlbeta(al, be), -dlbeta(be, al), -dlbeta(ga, de), -dlbeta(de, ga)};
	double		u = clv_lbeta(al + x, be + n - x) - lab + clv_lbeta(ga, de + n) - lgd;
	double		du[4] = {dlbeta(al + x, be + n - x), dlbeta(be + n - x, al + x),
						 dlbeta(ga, de + n), dlbeta(de + n, ga)};
	double		M = u,
				S = 1,
				G[4];
	int			i,
				k;

	memcpy(G, du, sizeof(G));
	for (i = 0; i < (int) (n - tx); i++)
	{
		double		wk;

		u = clv_lbeta(al + x, be + tx - x + i) - lab + clv_lbeta(ga + 1, de + tx + i) - lgd;
		du[0] = dlbeta(al + x, be + tx - x + i);
		du[1] = dlbeta(be + tx - x + i, al + x);
		du[2] = dlbeta(ga + 1, de + tx + i);
		du[3] = dlbeta(de + tx + i, ga + 1);
		if (u > M)
		{
			/* rescale the sums to the new maximum */
			double		r = exp(M - u);

			S *= r;
			for (k = 0; k < 4; k++)
				G[k] *= r;
			M = u;
		}
		wk = exp(u - M);
		S += wk;
		for (k = 0; k < 4; k++)
			G[k] += wk * du[k];
	}
	for (k = 0; k < 4; k++)
		g[k] = G[k] / S + c[k];
	return M + log(S);
}

/* Objective: minus the mean log-likelihood over log-parameters, with gradient */
static double
bgbb_objective(const double *theta, double *grad, double *hess, void *arg)
{
	ClvData    *d = arg;
	double		p[4],
				gsum[4] = {0, 0, 0, 0};
	double		ll = 0;
	int64		j;
	int			k;

	for (j = 0; j < 4; j++)
		p[j] = exp(theta[j]);
	for (j = 0; j < d->n; j++)
	{
		const ClvRow *row = &d->rows[j];

		if (grad)
		{
			double		g[4];

			ll += row->w * bgbb_loglik1_grad(p, row->k[0], row->k[1], row->k[2], g);
			for (k = 0; k < 4; k++)
				gsum[k] += row->w * g[k];
		}
		else
			ll += row->w * bgbb_loglik1(p, row->k[0], row->k[1], row->k[2]);
	}
	if (grad)
		for (k = 0; k < 4; k++)
			grad[k] = -gsum[k] * p[k] / d->total_w;
	return -ll / d->total_w;
}

PG_FUNCTION_INFO_V1(crm_bgbb_final);
/* Final function of crm.bgbb_fit */
Datum
crm_bgbb_final(PG_FUNCTION_ARGS)
{
	ClvRows    *st = clv_final_state(fcinfo, "bgbb");
	ClvData    *d = clv_prepare(st, false);
	double		theta[4] = {0, 0, 0, 0};
	ClvFitResult res;

	clv_minimise(bgbb_objective, d, 4, theta, true, d->total_w, &res);
	PG_RETURN_POINTER(clv_fit_model(CLV_BGBB, &res, theta, NULL, 0, d->total_w));
}

/* The parameters of the model in argument 0: all an entry point needs of it */
static const double *
bgbb_params(FunctionCallInfo fcinfo)
{
	return clv_model_arg(fcinfo, 0, CLV_BGBB)->p;
}

/* The (frequency, recency, n) arguments from position first on, checked */
static void
bgbb_args(FunctionCallInfo fcinfo, int first, double *x, double *tx, double *n)
{
	*x = PG_GETARG_FLOAT8(first);
	*tx = PG_GETARG_FLOAT8(first + 1);
	*n = PG_GETARG_FLOAT8(first + 2);
	clv_check_discrete(*x, *tx, *n);
}

/* P(alive at opportunity n + 1 | x, t_x, n) */
static double
bgbb_palive(const double *p, double x, double tx, double n)
{
	return exp(clv_lbeta(p[0] + x, p[1] + n - x) - clv_lbeta(p[0], p[1])
			   + clv_lbeta(p[2], p[3] + n + 1) - clv_lbeta(p[2], p[3])
			   - bgbb_loglik1(p, x, tx, n));
}

/* A function of one customer's (frequency, recency, n), arguments 1 to 3 */
static Datum
bgbb_customer(FunctionCallInfo fcinfo,
			  double (*fn) (const double *p, double x, double tx, double n))
{
	const double *p = bgbb_params(fcinfo);
	double		x,
				tx,
				n;

	bgbb_args(fcinfo, 1, &x, &tx, &n);
	PG_RETURN_FLOAT8(fn(p, x, tx, n));
}

PG_FUNCTION_INFO_V1(crm_bgbb_p_alive);
/* crm.p_alive(bgbb, frequency, recency, n): alive at opportunity n + 1 */
Datum
crm_bgbb_p_alive(PG_FUNCTION_ARGS)
{
	return bgbb_customer(fcinfo, bgbb_palive);
}

/* delta/(gamma-1) [G(1+de+n)/G(ga+de+n) - G(1+de+n+k)/G(ga+de+n+k)] G(ga+de)/G(1+de) */
static double
bgbb_future(double ga, double de, double n, double k)
{
	double		c = lgamma(ga + de) - lgamma(1 + de);
	double		l1 = lgamma(1 + de + n) - lgamma(ga + de + n),
				l2 = lgamma(1 + de + n + k) - lgamma(ga + de + n + k);

	if (k == 0)
		return 0;
	if (fabs(ga - 1.0) < 1e-7)
		return (bgbb_future(1.0 - 1e-6, de, n, k) + bgbb_future(1.0 + 1e-6, de, n, k)) / 2;
	/* (e^l1 - e^l2) / (ga - 1), with the sign of ga - 1 */
	return de / (ga - 1.0) * exp(c + l1) * -expm1(l2 - l1);
}

/* Check a number of future periods */
static double
check_periods(double k)
{
	if (!(isfinite(k) && k >= 0 && k == floor(k) && k <= 100000))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of future opportunities must be a whole number between 0 and 100000, not %g", k)));
	return k;
}

PG_FUNCTION_INFO_V1(crm_bgbb_expected_conditional);
/* crm.expected_purchases(bgbb, periods, frequency, recency, n): in the next periods opportunities */
Datum
crm_bgbb_expected_conditional(PG_FUNCTION_ARGS)
{
	const double *p = bgbb_params(fcinfo);
	double		k = check_periods(PG_GETARG_FLOAT8(1));
	double		x,
				tx,
				n;

	bgbb_args(fcinfo, 2, &x, &tx, &n);
	PG_RETURN_FLOAT8(exp(clv_lbeta(p[0] + x + 1, p[1] + n - x) - clv_lbeta(p[0], p[1])
						 - bgbb_loglik1(p, x, tx, n))
					 * bgbb_future(p[2], p[3], n, k));
}

PG_FUNCTION_INFO_V1(crm_bgbb_expected_unconditional);
/* crm.expected_purchases(bgbb, n): transactions in the first n opportunities of a new customer */
Datum
crm_bgbb_expected_unconditional(PG_FUNCTION_ARGS)
{
	const double *p = bgbb_params(fcinfo);
	double		n = check_periods(PG_GETARG_FLOAT8(1));

	PG_RETURN_FLOAT8(p[0] / (p[0] + p[1]) * bgbb_future(p[2], p[3], 0, n));
}

/*
 * P(X(n) = x): x transactions in the first n opportunities of a new
 * customer (Fader, Hardie & Shang 2010, eq. 8).  Alive through all n, or
 * dead after opportunity i having transacted x times in the i before:
 *	 C(n,x) B(al+x, be+n-x)/B(al,be) B(ga, de+n)/B(ga,de)
 *	 + sum_{i=x}^{n-1} C(i,x) B(al+x, be+i-x)/B(al,be) B(ga+1, de+i)/B(ga,de)
 */
static double
bgbb_prob(const double *p, double x, double n)
{
	double		al = p[0],
				be = p[1],
				ga = p[2],
				de = p[3];
	double		lab = clv_lbeta(al, be),
				lgd = clv_lbeta(ga, de);
	double		l;
	int			i;

	if (x > n)
		return 0;
	l = lchoose(n, x) + clv_lbeta(al + x, be + n - x) - lab + clv_lbeta(ga, de + n) - lgd;
	for (i = (int) x; i < (int) n; i++)
		l = clv_log_add(l, lchoose(i, x) + clv_lbeta(al + x, be + i - x) - lab
							+ clv_lbeta(ga + 1, de + i) - lgd);
	return exp(l);
}

PG_FUNCTION_INFO_V1(crm_bgbb_prob_purchases);
/* crm.prob_purchases(bgbb, x, n) = P(X(n) = x) */
Datum
crm_bgbb_prob_purchases(PG_FUNCTION_ARGS)
{
	const double *p = bgbb_params(fcinfo);
	double		x = clv_check_count(PG_GETARG_FLOAT8(1), "number of transactions", 100000);
	double		n = clv_check_count(PG_GETARG_FLOAT8(2), "number of opportunities", 100000);

	PG_RETURN_FLOAT8(bgbb_prob(p, x, n));
}

PG_FUNCTION_INFO_V1(crm_bgbb_loglik);
/* crm.log_likelihood(bgbb, frequency, recency, n): one customer */
Datum
crm_bgbb_loglik(PG_FUNCTION_ARGS)
{
	return bgbb_customer(fcinfo, bgbb_loglik1);
}
