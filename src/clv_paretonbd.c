/*
 * clv_paretonbd.c
 *		Pareto/NBD (Schmittlein, Morrison & Colombo 1987): fitting and
 *		predictions.
 *
 * The likelihood (Fader & Hardie's 2005 note) is
 *	 L = G(r+x) a^r b^s / G(r) [ 1/((alpha+T)^(r+x) (beta+T)^s) + s/(r+s+x) A0 ]
 * where A0 = F(t_x) - F(T), F(t) = 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/
 * (alpha+t)) / (alpha+t)^(r+s+x) when alpha >= beta, and the symmetric form
 * with (r+x, beta) otherwise.  Everything is in log space: log F through the
 * log-2F1, A0 as a signed difference of exponentials (zero when t_x = T),
 * and a log-sum-exp of the two terms, so hundreds of purchases do not
 * overflow.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "clv.h"

/* log F(t) of the A0 term */
static double
pnbd_logF(double r, double alpha, double s, double beta, double x, double t)
{
	int			sign;
	double		a = r + s + x;

	if (alpha >= beta)
		return clv_log_hyp2f1(a, s + 1, a + 1, (alpha - beta) / (alpha + t), &sign)
			- a * log(alpha + t);
	return clv_log_hyp2f1(a, r + x, a + 1, (beta - alpha) / (beta + t), &sign)
		- a * log(beta + t);
}

/* The second term's log from log F(t_x) and log F(T) */
static inline double
pnbd_second_of(const double *p, double x, double l1, double l2)
{
	if (!(l2 < l1))
		return -INFINITY;
	return log(p[2]) - log(p[0] + p[2] + x) + l1 + log1p(-exp(l2 - l1));
}

/* log(s/(r+s+x) A0) relative pieces: returns log of the second term, -inf if 0 */
static double
pnbd_log_second(const double *p, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];
	double		l1,
				l2;

	if (tx >= T)
		return -INFINITY;
	l1 = pnbd_logF(r, alpha, s, beta, x, tx);
	l2 = pnbd_logF(r, alpha, s, beta, x, T);
	return pnbd_second_of(p, x, l1, l2);
}

/* One customer's log-likelihood, given the log of its second term */
static inline double
pnbd_loglik_of(const double *p, double x, double T, double second)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];
	double		u1 = -(r + x) * log(alpha + T) - s * log(beta + T);

	return lgamma(r + x) - lgamma(r) + r * log(alpha) + s * log(beta)
		+ clv_log_add(u1, second);
}

/* One customer's log-likelihood */
static double
pnbd_loglik1(const double *p, double x, double tx, double T)
{
	return pnbd_loglik_of(p, x, T, pnbd_log_second(p, x, tx, T));
}

/* P(alive | x, t_x, T) */
static double
pnbd_palive(const double *p, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];
	double		u1 = -(r + x) * log(alpha + T) - s * log(beta + T);

	return 1.0 / (1.0 + exp(pnbd_log_second(p, x, tx, T) - u1));
}

/* [1 - (B/(B+t))^(s-1)] / (s-1), continuous at s = 1 */
static double
pnbd_core(double s, double B, double t)
{
	double		L = log1p(t / B);

	if (fabs((s - 1) * L) < 1e-12)
		return L;
	return -expm1(-(s - 1) * L) / (s - 1);
}

/*
 * The rows of a fit, with their times indexed: log F(t) depends on the row
 * only through x and t, and rows sorted by x share a few hundred times, so
 * one evaluation memoises it per x and time number (two 2F1 series a row
 * become two per distinct (x, t)); a stamp per x empties the memo.
 */
typedef struct PnbdArgs
{
	ClvData    *d;
	double	   *memo;			/* per time number: log F(t) for this x */
	int64	   *stamp;			/* the x group memo[i] belongs to */
	int64		group;			/* x groups seen, over all evaluations */
} PnbdArgs;

static PnbdArgs *
pnbd_args(ClvData *d)
{
	PnbdArgs   *a = palloc(sizeof(PnbdArgs));
	int64		j;

	clv_index_times(d);
	a->d = d;
	a->memo = palloc_extended(sizeof(double) * Max(d->ntimes, 1), MCXT_ALLOC_HUGE);
	a->stamp = palloc_extended(sizeof(int64) * Max(d->ntimes, 1), MCXT_ALLOC_HUGE);
	for (j = 0; j < d->ntimes; j++)
		a->stamp[j] = -1;
	a->group = 0;
	return a;
}

/* log F of time number i for x (group g), from the memo when there */
static inline double
pnbd_memo_logF(PnbdArgs *a, const double *p, double x, int64 g, int32 i)
{
	if (a->stamp[i] != g)
	{
		a->memo[i] = pnbd_logF(p[0], p[1], p[2], p[3], x, a->d->times[i]);
		a->stamp[i] = g;
	}
	return a->memo[i];
}

/* Objective: minus the mean log-likelihood over log-parameters */
static double
pnbd_objective(const double *theta, double *grad, double *hess, void *arg)
{
	PnbdArgs   *a = arg;
	ClvData    *d = a->d;
	double		p[4];
	double		ll = 0,
				curx = -1;
	int64		j,
				g = 0;

	for (j = 0; j < 4; j++)
		p[j] = exp(theta[j]);
	for (j = 0; j < d->n; j++)
	{
		const ClvRow *row = &d->rows[j];
		double		x = row->k[0],
					second = -INFINITY;

		if (x != curx)
		{
			curx = x;
			g = ++a->group;
		}
		if (row->k[1] < row->k[2])
			second = pnbd_second_of(p, x, pnbd_memo_logF(a, p, x, g, d->itx[j]),
									pnbd_memo_logF(a, p, x, g, d->iT[j]));
		ll += row->w * pnbd_loglik_of(p, x, row->k[2], second);
	}
	return -ll / d->total_w;
}

PG_FUNCTION_INFO_V1(crm_paretonbd_final);
/* Final function of crm.paretonbd_fit */
Datum
crm_paretonbd_final(PG_FUNCTION_ARGS)
{
	ClvRows    *st = clv_final_state(fcinfo, "paretonbd");
	ClvData    *d = clv_prepare(st, true);
	double		theta[4] = {0, 0, 0, 0};
	ClvFitResult res;
	ClvFitResult sres;
	const ClvFitResult *start = NULL;

	/*
	 * Every evaluation runs a 2F1 series a row and the gradient takes eight:
	 * with many distinct rows, start from a fit on a sample, with its
	 * parameters and its curvature
	 */
	if (d->n >= CLV_SAMPLE_FROM)
	{
		ClvData    *s = clv_sample(d, CLV_SAMPLE_ROWS);
		double		t0[4] = {0, 0, 0, 0};

		clv_minimise(pnbd_objective, pnbd_args(s), 4, t0, false, s->total_w, &sres);
		if (clv_usable_start(4, t0, &sres))
		{
			memcpy(theta, t0, sizeof(theta));
			start = &sres;
		}
	}
	clv_minimise_warm(pnbd_objective, pnbd_args(d), 4, theta, false, d->total_w, start, &res);
	/* without a repeat purchase the likelihood has no interior maximum */
	if (d->sum_wx == 0)
		res.converged = false;
	PG_RETURN_POINTER(clv_fit_model(CLV_PARETONBD, &res, theta, (const double[4]) {1, d->scale, 1, d->scale},
									d->sum_wx * log(d->scale), d->total_w));
}

/*
 * log of G(r+s+j) / G(r+s) B2(j, u) of P(X(t) = x): the j-th term of the
 * Pareto/NBD pmf, with B2(j, u) = 2F1(r+s+j, s+1; r+s+x+1; (alpha-beta)/
 * (alpha+u)) / (alpha+u)^(r+s+j) when alpha >= beta, and the symmetric
 * form with (r+x, beta) otherwise (Fader & Hardie 2006, note 012).
 */
static double
pnbd_log_b2(const double *p, double x, double j, double u)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];
	double		c = r + s + j;
	int			sign;

	if (alpha >= beta)
		return clv_log_hyp2f1(c, s + 1, r + s + x + 1, (alpha - beta) / (alpha + u), &sign)
			- c * log(alpha + u);
	return clv_log_hyp2f1(c, r + x, r + s + x + 1, (beta - alpha) / (beta + u), &sign)
		- c * log(beta + u);
}

/* Most terms the tail series of pnbd_prob may take */
#define PNBD_TAIL_MAX_TERMS	100000

/* log of the j-th term G(r+s+j)/(G(r+s) j!) t^j B2(j, t) of the pmf's bracket */
static double
pnbd_log_term(const double *p, double x, double j, double t)
{
	double		rs = p[0] + p[2];

	return lgamma(rs + j) - lgamma(rs) - lgamma(j + 1) + j * log(t) + pnbd_log_b2(p, x, j, t);
}

/*
 * P(X(t) = x) of a new customer.  Alive at t with x purchases, or dead at
 * some tau < t after x purchases:
 *	 NB(x; r, alpha/(alpha+t)) (beta/(beta+t))^s
 *	 + alpha^r beta^s B(r+x, s+1)/B(r,s)
 *	   [B2(0, 0) - sum_{j=0}^{x} G(r+s+j)/(G(r+s) j!) t^j B2(j, t)]
 * The bracket weighs P(at least x+1 events of rate lambda+mu by t), so it
 * also equals the positive series sum_{j>x} of the same terms.  The
 * difference is used while it keeps at least half of B2(0, 0); below that,
 * where it would cancel to rounding noise, the series.
 */
static double
pnbd_prob(const double *p, double x, double t)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];
	double		first,
				lb1,
				lbracket,
				sum = -INFINITY;
	double		j;

	if (t == 0)
		return (x == 0) ? 1.0 : 0.0;	/* no time, no purchase */
	first = lgamma(r + x) - lgamma(r) - lgamma(x + 1) + r * log(alpha / (alpha + t))
		+ x * log(t / (alpha + t)) + s * log(beta / (beta + t));
	lb1 = pnbd_log_b2(p, x, 0, 0);
	for (j = 0; j <= x; j++)
	{
		sum = clv_log_add(sum, pnbd_log_term(p, x, j, t));
		CHECK_FOR_INTERRUPTS();
	}
	if (sum < lb1 + log(0.5))
		lbracket = lb1 + log(-expm1(sum - lb1));
	else
	{
		double		prev = INFINITY;

		lbracket = -INFINITY;
		for (j = x + 1;; j++)
		{
			double		term = pnbd_log_term(p, x, j, t);

			lbracket = clv_log_add(lbracket, term);
			if (term < lbracket - 40 && term < prev)
				break;
			if (j > x + PNBD_TAIL_MAX_TERMS)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("cannot compute the probability of %g purchases to full precision", x),
						 errdetail("The tail series did not converge in %d terms.", PNBD_TAIL_MAX_TERMS)));
			prev = term;
			CHECK_FOR_INTERRUPTS();
		}
	}
	return exp(first) + exp(r * log(alpha) + s * log(beta) + clv_lbeta(r + x, s + 1)
							- clv_lbeta(r, s) + lbracket);
}

/* E[Y(t) | x, t_x, T] */
static double
pnbd_conditional(const double *p, double t, double x, double tx, double T)
{
	double		r = p[0],
				alpha = p[1],
				s = p[2],
				beta = p[3];

	if (t == 0)
		return 0;
	return (r + x) * (beta + T) / (alpha + T) * pnbd_core(s, beta + T, t) * pnbd_palive(p, x, tx, T);
}

PG_FUNCTION_INFO_V1(crm_paretonbd_expected_conditional);
/* crm.expected_purchases(paretonbd, t, frequency, recency, T) */
Datum
crm_paretonbd_expected_conditional(PG_FUNCTION_ARGS)
{
	ClvModel   *m = clv_model_arg(fcinfo, 0, CLV_PARETONBD);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(1));
	ClvRfm		c = clv_rfm_arg(fcinfo, 2);

	PG_RETURN_FLOAT8(pnbd_conditional(m->p, t, c.x, c.tx, c.T));
}

PG_FUNCTION_INFO_V1(crm_paretonbd_expected_unconditional);
/* crm.expected_purchases(paretonbd, t): a new customer */
Datum
crm_paretonbd_expected_unconditional(PG_FUNCTION_ARGS)
{
	ClvModel   *m = clv_model_arg(fcinfo, 0, CLV_PARETONBD);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(1));

	if (t == 0)
		PG_RETURN_FLOAT8(0);
	/* r beta / alpha [1 - (beta/(beta+t))^(s-1)] / (s-1) */
	PG_RETURN_FLOAT8(m->p[0] * m->p[3] / m->p[1] * pnbd_core(m->p[2], m->p[3], t));
}

PG_FUNCTION_INFO_V1(crm_paretonbd_prob_purchases);
/* crm.prob_purchases(paretonbd, n, t) = P(X(t) = n) */
Datum
crm_paretonbd_prob_purchases(PG_FUNCTION_ARGS)
{
	ClvModel   *m = clv_model_arg(fcinfo, 0, CLV_PARETONBD);
	double		n = clv_check_count(PG_GETARG_FLOAT8(1), "number of purchases", 1e5);
	double		t = clv_check_horizon(PG_GETARG_FLOAT8(2));

	PG_RETURN_FLOAT8(pnbd_prob(m->p, n, t));
}

/* A function of one customer's (frequency, recency, T), arguments 1 to 3 */
static Datum
pnbd_customer(FunctionCallInfo fcinfo,
			  double (*fn) (const double *p, double x, double tx, double T))
{
	ClvModel   *m = clv_model_arg(fcinfo, 0, CLV_PARETONBD);
	ClvRfm		c = clv_rfm_arg(fcinfo, 1);

	PG_RETURN_FLOAT8(fn(m->p, c.x, c.tx, c.T));
}

PG_FUNCTION_INFO_V1(crm_paretonbd_p_alive);
/* crm.p_alive(paretonbd, frequency, recency, T) */
Datum
crm_paretonbd_p_alive(PG_FUNCTION_ARGS)
{
	return pnbd_customer(fcinfo, pnbd_palive);
}

PG_FUNCTION_INFO_V1(crm_paretonbd_loglik);
/* crm.log_likelihood(paretonbd, frequency, recency, T): one customer */
Datum
crm_paretonbd_loglik(PG_FUNCTION_ARGS)
{
	return pnbd_customer(fcinfo, pnbd_loglik1);
}

/* E[Y(t)] for crm.clv: conditional expectation of a Pareto/NBD model */
double
clv_paretonbd_expect(const double *p, double t, double x, double tx, double T)
{
	return pnbd_conditional(p, t, x, tx, T);
}
