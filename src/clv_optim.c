/*
 * clv_optim.c
 *		The optimisers shared by the CLV fits.
 *
 * BFGS with a backtracking line search on log-parameters, warm-started
 * from a previous fit when one is given, and a Newton polish for the
 * objectives with an analytic Hessian.  They report the standard errors
 * from the Hessian at the optimum.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "clv.h"

#define BFGS_MAX_ITER		500
#define BFGS_GTOL			1e-7
#define THETA_BOUND			30.0	/* |log parameter| beyond this is a boundary */
#define MAX_STEP			2.0		/* largest move of a log-parameter per step */
#define NEWTON_MAX_ITER		200
#define NEWTON_LL_TOL		1e-8	/* log-likelihood a last step may leave */
#define NEWTON_LL_RTOL		1e-13	/* ... or this share of it, when larger */

typedef struct OptCtx
{
	ClvObjective f;
	void	   *arg;
	int			n;
	bool		analytic;
	int			evals;
} OptCtx;

/* Objective value, counting evaluations; non-finite values become +inf */
static double
eval_f(OptCtx *o, const double *x)
{
	double		v;

	o->evals++;
	v = o->f(x, NULL, NULL, o->arg);
	if (isnan(v))
		v = INFINITY;
	return v;
}

/* Gradient, analytic when the objective has one, else central differences */
static double
eval_fg(OptCtx *o, const double *x, double *g)
{
	double		v;
	double		xx[CLV_MAX_PARAMS];
	int			i;

	if (o->analytic)
	{
		o->evals++;
		v = o->f(x, g, NULL, o->arg);
		return isnan(v) ? INFINITY : v;
	}
	v = eval_f(o, x);
	for (i = 0; i < o->n; i++)
	{
		double		h = 1e-5 * Max(1.0, fabs(x[i]));
		double		fp,
					fm;

		memcpy(xx, x, sizeof(double) * o->n);
		xx[i] = x[i] + h;
		fp = eval_f(o, xx);
		xx[i] = x[i] - h;
		fm = eval_f(o, xx);
		g[i] = (fp - fm) / (2 * h);
	}
	return v;
}

/* Hessian of the objective at x by differences (of the gradient g0 at x if analytic) */
static bool
hessian(OptCtx *o, const double *x, const double *g0, double H[CLV_MAX_PARAMS][CLV_MAX_PARAMS])
{
	int			n = o->n;
	double		xx[CLV_MAX_PARAMS];
	double		gp[CLV_MAX_PARAMS];
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		double		h = 1e-4 * Max(1.0, fabs(x[i]));

		memcpy(xx, x, sizeof(double) * n);
		if (o->analytic)
		{
			/* forward differences of the gradient: enough for standard errors */
			xx[i] = x[i] + h;
			eval_fg(o, xx, gp);
			for (j = 0; j < n; j++)
				H[i][j] = (gp[j] - g0[j]) / h;
		}
		else
		{
			/* the four points of (i, j) are those of (j, i): one of the two */
			for (j = i; j < n; j++)
			{
				double		hj = 1e-4 * Max(1.0, fabs(x[j]));
				double		fpp,
							fpm,
							fmp,
							fmm;

				memcpy(xx, x, sizeof(double) * n);
				xx[i] += h;
				xx[j] += hj;
				fpp = eval_f(o, xx);
				xx[j] -= 2 * hj;
				fpm = eval_f(o, xx);
				xx[i] -= 2 * h;
				fmm = eval_f(o, xx);
				xx[j] += 2 * hj;
				fmp = eval_f(o, xx);
				H[i][j] = H[j][i] = (fpp - fpm - fmp + fmm) / (4 * h * hj);
			}
		}
	}
	/* symmetrise */
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
		{
			double		v = (H[i][j] + H[j][i]) / 2;

			if (!isfinite(v))
				return false;
			H[i][j] = H[j][i] = v;
		}
	return true;
}

/* Cholesky factor L (lower) of A + shift I; false when not positive definite */
static bool
cholesky(int n, const double A[CLV_MAX_PARAMS][CLV_MAX_PARAMS], double shift,
		 double L[CLV_MAX_PARAMS][CLV_MAX_PARAMS])
{
	int			i,
				j,
				k;

	for (i = 0; i < n; i++)
		for (j = 0; j <= i; j++)
		{
			double		s = A[i][j] + (i == j ? shift : 0);

			for (k = 0; k < j; k++)
				s -= L[i][k] * L[j][k];
			if (i == j)
			{
				if (!(s > 0 && isfinite(s)))
					return false;
				L[i][i] = sqrt(s);
			}
			else
				L[i][j] = s / L[j][j];
		}
	return true;
}

/* Solve L L' x = b for x, given the Cholesky factor L */
static void
cholesky_solve(int n, const double L[CLV_MAX_PARAMS][CLV_MAX_PARAMS], const double *b, double *x)
{
	double		y[CLV_MAX_PARAMS];
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		double		s = b[i];

		for (j = 0; j < i; j++)
			s -= L[i][j] * y[j];
		y[i] = s / L[i][i];
	}
	for (i = n - 1; i >= 0; i--)
	{
		double		s = y[i];

		for (j = i + 1; j < n; j++)
			s -= L[j][i] * x[j];
		x[i] = s / L[i][i];
	}
}

/* Invert a symmetric positive-definite matrix by Cholesky; false if not PD */
static bool
invert_spd(int n, double A[CLV_MAX_PARAMS][CLV_MAX_PARAMS], double inv[CLV_MAX_PARAMS][CLV_MAX_PARAMS])
{
	double		L[CLV_MAX_PARAMS][CLV_MAX_PARAMS] = {{0}};
	int			i,
				k;

	if (!cholesky(n, A, 0, L))
		return false;
	for (k = 0; k < n; k++)
	{
		double		e[CLV_MAX_PARAMS] = {0},
					x[CLV_MAX_PARAMS];

		e[k] = 1.0;
		cholesky_solve(n, L, e, x);
		for (i = 0; i < n; i++)
			inv[i][k] = x[i];
	}
	return true;
}

/* Standard errors of theta from the Hessian H of the mean objective; false if H is not PD */
static bool
standard_errors(int n, const double H[CLV_MAX_PARAMS][CLV_MAX_PARAMS], double n_obs, double *se)
{
	double		Hs[CLV_MAX_PARAMS][CLV_MAX_PARAMS],
				C[CLV_MAX_PARAMS][CLV_MAX_PARAMS];
	int			i,
				j;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			Hs[i][j] = H[i][j] * n_obs;
	if (!invert_spd(n, Hs, C))
		return false;
	for (i = 0; i < n; i++)
		se[i] = sqrt(C[i][i]);
	return true;
}

/* A fit cannot start where the log-likelihood is not finite */
static void
check_start(double fx)
{
	if (!isfinite(fx))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("log-likelihood is not finite at the starting point"),
				 errhint("Check the input for extreme values.")));
}

/* Is theta outside the region where an estimate means something? */
static bool
at_boundary(int n, const double *theta)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!isfinite(theta[i]) || fabs(theta[i]) > THETA_BOUND)
			return true;
	return false;
}

/*
 * Does a line-search step of length t along d (slope gd) lower f enough
 * (Armijo)?  fn == fx, a step too small to tell apart, is no progress:
 * accepting it would repeat the same iteration until the limit.
 */
static inline bool
step_lowers(double fn, double fx, double t, double gd)
{
	return isfinite(fn) && fn <= fx + 1e-4 * t * gd && fn < fx;
}

/* The slope g'd of f along d */
static double
dot(int n, const double *g, const double *d)
{
	double		s = 0;
	int			i;

	for (i = 0; i < n; i++)
		s += g[i] * d[i];
	return s;
}

/*
 * The value at a trial point, with the gradient g when it comes in the
 * same pass (analytic) and the Hessian when hess is not NULL (Newton)
 */
static double
eval_trial(OptCtx *o, const double *x, double *g, double *hess)
{
	if (hess != NULL)
	{
		o->evals++;
		return o->f(x, g, hess, o->arg);
	}
	return o->analytic ? eval_fg(o, x, g) : eval_f(o, x);
}

/*
 * Backtracking line search from theta along d (slope gd): the first step
 * moves no log-parameter by more than MAX_STEP, and is halved until the
 * point xn lowers fx enough.  Its value in *fn, its gradient and Hessian
 * as eval_trial gives them.  False when 60 halvings do not.
 */
static bool
line_search(OptCtx *o, const double *theta, const double *d, double fx, double gd,
			double *xn, double *fn, double *gn, double *hess)
{
	double		dmax = 0,
				t = 1.0;
	int			i,
				ls;

	for (i = 0; i < o->n; i++)
		dmax = Max(dmax, fabs(d[i]));
	if (dmax > MAX_STEP)
		t = MAX_STEP / dmax;
	for (ls = 0; ls < 60; ls++)
	{
		for (i = 0; i < o->n; i++)
			xn[i] = theta[i] + t * d[i];
		*fn = eval_trial(o, xn, gn, hess);
		if (step_lowers(*fn, fx, t, gd))
			return true;
		t *= 0.5;
	}
	return false;
}

/*
 * Can a fit on a sample serve as the start of the full fit?  Only a start:
 * a sample fit that failed or wandered far leaves the default start.
 */
bool
clv_usable_start(int n, const double *theta, const ClvFitResult *res)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!(isfinite(theta[i]) && fabs(theta[i]) < 20))
			return false;
	return res->converged;
}

/*
 * Minimise f over theta (in place) by BFGS.  n_obs is the number of
 * observations the objective is averaged over (f = -LL / n_obs), used to
 * turn the Hessian into standard errors of theta.
 */
void
clv_minimise(ClvObjective f, void *arg, int n, double *theta,
			 bool analytic, double n_obs, ClvFitResult *res)
{
	clv_minimise_warm(f, arg, n, theta, analytic, n_obs, NULL, res);
}

/*
 * clv_minimise from the end of an earlier fit (start, may be NULL):
 * its inverse Hessian, when it has one, replaces the identity BFGS starts
 * from.  A fit on a sample has nearly the Hessian of the full mean
 * objective, so the full fit starts with Newton-like steps.
 */
void
clv_minimise_warm(ClvObjective f, void *arg, int n, double *theta,
				  bool analytic, double n_obs, const ClvFitResult *start,
				  ClvFitResult *res)
{
	OptCtx		o = {f, arg, n, analytic, 0};
	double		Hi[CLV_MAX_PARAMS][CLV_MAX_PARAMS];
	double		g[CLV_MAX_PARAMS],
				gn[CLV_MAX_PARAMS],
				d[CLV_MAX_PARAMS],
				xn[CLV_MAX_PARAMS],
				s[CLV_MAX_PARAMS],
				y[CLV_MAX_PARAMS];
	double		fx,
				fn;
	int			iter,
				i,
				j;
	bool		conv = false;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			Hi[i][j] = (start && start->have_hinv) ? start->hinv[i][j] : (i == j) ? 1.0 : 0.0;
	res->have_hinv = false;
	fx = eval_fg(&o, theta, g);
	check_start(fx);

	for (iter = 0; iter < BFGS_MAX_ITER; iter++)
	{
		double		gd = 0,
					gmax = 0,
					sy = 0;

		for (i = 0; i < n; i++)
			gmax = Max(gmax, fabs(g[i]));
		if (gmax < BFGS_GTOL)
		{
			conv = true;
			break;
		}
		for (i = 0; i < n; i++)
		{
			d[i] = 0;
			for (j = 0; j < n; j++)
				d[i] -= Hi[i][j] * g[j];
			gd += g[i] * d[i];
		}
		if (!(gd < 0))
		{
			/* not a descent direction: restart from steepest descent */
			for (i = 0; i < n; i++)
			{
				for (j = 0; j < n; j++)
					Hi[i][j] = (i == j) ? 1.0 : 0.0;
				d[i] = -g[i];
			}
			gd = dot(n, g, d);
		}
		/* with an analytic gradient, value and gradient come in one pass */
		if (!line_search(&o, theta, d, fx, gd, xn, &fn, gn, NULL))
		{
			/* no decrease possible: accept when the gradient is nearly zero */
			conv = (gmax < 1e-5);
			break;
		}
		if (!o.analytic)
			fn = eval_fg(&o, xn, gn);
		for (i = 0; i < n; i++)
		{
			s[i] = xn[i] - theta[i];
			y[i] = gn[i] - g[i];
			sy += s[i] * y[i];
		}
		if (sy > 1e-14)
		{
			double		Hy[CLV_MAX_PARAMS];
			double		yHy = 0;

			for (i = 0; i < n; i++)
			{
				Hy[i] = 0;
				for (j = 0; j < n; j++)
					Hy[i] += Hi[i][j] * y[j];
				yHy += y[i] * Hy[i];
			}
			for (i = 0; i < n; i++)
				for (j = 0; j < n; j++)
					Hi[i][j] += ((sy + yHy) * s[i] * s[j]) / (sy * sy)
						- (Hy[i] * s[j] + s[i] * Hy[j]) / sy;
		}
		memcpy(theta, xn, sizeof(double) * n);
		memcpy(g, gn, sizeof(double) * n);
		fx = fn;
		CHECK_FOR_INTERRUPTS();
	}

	res->fmin = fx;
	res->iterations = iter;
	for (i = 0; i < n; i++)
		res->se[i] = NAN;
	if (at_boundary(n, theta))
		conv = false;
	if (isfinite(fx))
	{
		double		H[CLV_MAX_PARAMS][CLV_MAX_PARAMS];

		/* not a minimum when H is not positive definite: saddle or flat direction */
		if (!hessian(&o, theta, g, H) || !standard_errors(n, H, n_obs, res->se))
			conv = false;
		else
			res->have_hinv = invert_spd(n, H, res->hinv);
	}
	else
		conv = false;
	res->evaluations = o.evals;
	res->converged = conv;
}

/*
 * Minimise f over theta (in place) by Newton's method with the analytic
 * Hessian that f computes (hess, n x n row-major, when not NULL).  Near the
 * optimum it converges quadratically: a handful of passes over the data
 * where BFGS needs a few dozen.  Far from it, where the Hessian need not be
 * positive definite, the step uses H + lambda I (lambda raised until the
 * Cholesky factorisation succeeds) and a backtracking line search.  The
 * Hessian at the end gives the standard errors.
 */
void
clv_minimise_newton(ClvObjective f, void *arg, int n, double *theta,
					double n_obs, ClvFitResult *res)
{
	double		H[CLV_MAX_PARAMS][CLV_MAX_PARAMS],
				Hn[CLV_MAX_PARAMS][CLV_MAX_PARAMS],
				L[CLV_MAX_PARAMS][CLV_MAX_PARAMS];
	double		g[CLV_MAX_PARAMS],
				gn[CLV_MAX_PARAMS],
				d[CLV_MAX_PARAMS],
				xn[CLV_MAX_PARAMS];
	OptCtx		o = {f, arg, n, true, 0};
	double		fx,
				fn = 0;
	int			iter,
				i;
	bool		conv = false;

	res->have_hinv = false;
	fx = eval_trial(&o, theta, g, &H[0][0]);
	check_start(fx);
	for (iter = 0; iter < NEWTON_MAX_ITER; iter++)
	{
		double		gmax = 0,
					gd,
					shift = 0,
					hmax = 0;
		double		mg[CLV_MAX_PARAMS];

		for (i = 0; i < n; i++)
		{
			gmax = Max(gmax, fabs(g[i]));
			hmax = Max(hmax, fabs(H[i][i]));
			mg[i] = -g[i];
		}
		/* Newton direction, shifted towards steepest descent until it is one */
		while (!cholesky(n, H, shift, L) && shift < 1e12 * Max(hmax, 1.0))
			shift = (shift == 0) ? 1e-8 * Max(hmax, 1.0) : shift * 10;
		if (cholesky(n, H, shift, L))
			cholesky_solve(n, L, mg, d);
		else
			memcpy(d, mg, sizeof(double) * n);
		gd = dot(n, g, d);

		/*
		 * Converged when the gradient is small and the full Newton step
		 * would gain less than NEWTON_LL_TOL of log-likelihood (-g'd/2 per
		 * observation): the second test matters for millions of customers,
		 * where a small mean gradient can still hide a visible gain.  With
		 * huge weights (sums past 10^6 times the customers) an absolute
		 * gain is below what the log-likelihood can resolve: a share of it.
		 */
		if (gmax < BFGS_GTOL && (shift > 0 ||
								 -gd / 2 * n_obs < Max(NEWTON_LL_TOL, NEWTON_LL_RTOL * fabs(fx) * n_obs)))
		{
			conv = true;
			break;
		}
		if (!(gd < 0))
		{
			memcpy(d, mg, sizeof(double) * n);
			gd = dot(n, g, d);
		}
		if (!line_search(&o, theta, d, fx, gd, xn, &fn, gn, &Hn[0][0]))
		{
			/* no decrease possible: accept when the gradient is nearly zero */
			conv = (gmax < 1e-5);
			break;
		}
		memcpy(theta, xn, sizeof(double) * n);
		memcpy(g, gn, sizeof(double) * n);
		memcpy(H, Hn, sizeof(H));
		fx = fn;
		CHECK_FOR_INTERRUPTS();
	}
	res->fmin = fx;
	res->iterations = iter;
	res->evaluations = o.evals;
	for (i = 0; i < n; i++)
		res->se[i] = NAN;
	if (at_boundary(n, theta))
		conv = false;
	if (!standard_errors(n, H, n_obs, res->se))
		conv = false;
	res->converged = conv;
}
