/*
 * clv_special.c
 *		Special functions shared by the CLV models: digamma, trigamma,
 *		log-beta, log-sum and the Gauss hypergeometric function.
 *
 * Everything works in log space: the Gauss hypergeometric function returns
 * log|2F1| and its sign, evaluated by its power series with running
 * rescaling (so terms of size e^1000 do not overflow), and through the
 * linear transformation z -> 1 - z when z is above one half.  The
 * optimisers are in clv_optim.c.
 */
#include "postgres.h"

#include <math.h>

#include "clv.h"

#define SERIES_MAX_TERMS	200000
#define RESCALE_AT			1e250

/* The digamma function psi(x) for x > 0: recurrence, then the asymptotic series */
double
clv_digamma(double x)
{
	double		r = 0.0;
	double		f;

	while (x < 6.0)
	{
		r -= 1.0 / x;
		x += 1.0;
	}
	f = 1.0 / (x * x);
	return r + log(x) - 0.5 / x
		- f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
}

/* The trigamma function psi'(x) for x > 0: recurrence, then the asymptotic series */
double
clv_trigamma(double x)
{
	double		r = 0.0;
	double		f;

	while (x < 6.0)
	{
		r += 1.0 / (x * x);
		x += 1.0;
	}
	f = 1.0 / (x * x);
	return r + 1.0 / x + f / 2
		+ f / x * (1.0 / 6 - f * (1.0 / 30 - f * (1.0 / 42 - f * (1.0 / 30 - f * (5.0 / 66)))));
}

/* log(B(a, b)) */
double
clv_lbeta(double a, double b)
{
	return lgamma(a) + lgamma(b) - lgamma(a + b);
}

/* log(exp(la) + exp(lb)) without overflow */
double
clv_log_add(double la, double lb)
{
	if (la == -INFINITY)
		return lb;
	if (lb == -INFINITY)
		return la;
	if (la > lb)
		return la + log1p(exp(lb - la));
	return lb + log1p(exp(la - lb));
}

/* Is x a non-positive integer (a pole of the gamma function)? */
static bool
is_pole(double x)
{
	return x <= 0 && x == floor(x);
}

/* log|Gamma(x)| and its sign, for x not a pole */
static double
lgamma_sign(double x, int *sign)
{
	if (x > 0)
		*sign = 1;
	else
		*sign = (((int64) ceil(-x)) % 2 == 1) ? -1 : 1;
	return lgamma(x);
}

/* log|2F1(a, b; c; z)| and sign by the power series, |z| < 1 */
static double
hyp2f1_series(double a, double b, double c, double z, int *sign)
{
	double		sum = 1.0;
	double		term = 1.0;
	double		logscale = 0.0;
	int			k;

	for (k = 0; k < SERIES_MAX_TERMS; k++)
	{
		double		ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;

		term *= ratio;
		sum += term;
		if (term == 0.0)
			break;
		if (fabs(sum) > RESCALE_AT || fabs(term) > RESCALE_AT)
		{
			sum /= RESCALE_AT;
			term /= RESCALE_AT;
			logscale += log(RESCALE_AT);
		}
		if (fabs(ratio) < 1.0 && fabs(term) <= 1e-17 * fabs(sum))
			break;
	}
	if (k >= SERIES_MAX_TERMS)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hypergeometric series did not converge"),
				 errdetail("2F1(%g, %g; %g; %g) needs more than %d terms.", a, b, c, z, SERIES_MAX_TERMS)));
	*sign = (sum > 0) ? 1 : (sum < 0 ? -1 : 0);
	return log(fabs(sum)) + logscale;
}

/*
 * log|2F1(a, b; c; z)| and its sign for 0 <= z < 1.  Above z = 1/2 it uses
 * the connection formula to two series in 1 - z, unless c - a - b is (close
 * to) an integer, where the formula degenerates and the direct series,
 * still convergent, is used.
 */
double
clv_log_hyp2f1(double a, double b, double c, double z, int *sign)
{
	double		m = c - a - b;
	double		l1 = -INFINITY,
				l2 = -INFINITY;
	int			s1 = 0,
				s2 = 0;
	int			sg,
				sf;
	double		lg;

	if (is_pole(c))
		elog(ERROR, "2F1 with c = %g is undefined", c);
	if (!(z >= -1.0 && z < 1.0))
		elog(ERROR, "2F1 argument %g outside [-1, 1)", z);
	if (z <= 0.5 || fabs(m - rint(m)) < 1e-4)
		return hyp2f1_series(a, b, c, z, sign);

	/* Gamma(c) Gamma(m) / (Gamma(c - a) Gamma(c - b)) F(a, b; 1 - m; 1 - z) */
	if (!is_pole(c - a) && !is_pole(c - b))
	{
		lg = lgamma_sign(c, &sg);
		s1 = sg;
		lg += lgamma_sign(m, &sg);
		s1 *= sg;
		lg -= lgamma_sign(c - a, &sg);
		s1 *= sg;
		lg -= lgamma_sign(c - b, &sg);
		s1 *= sg;
		l1 = lg + hyp2f1_series(a, b, 1.0 - m, 1.0 - z, &sf);
		s1 *= sf;
	}
	/* (1-z)^m Gamma(c) Gamma(-m) / (Gamma(a) Gamma(b)) F(c-a, c-b; 1+m; 1-z) */
	if (!is_pole(a) && !is_pole(b))
	{
		lg = lgamma_sign(c, &sg);
		s2 = sg;
		lg += lgamma_sign(-m, &sg);
		s2 *= sg;
		lg -= lgamma_sign(a, &sg);
		s2 *= sg;
		lg -= lgamma_sign(b, &sg);
		s2 *= sg;
		l2 = lg + m * log1p(-z) + hyp2f1_series(c - a, c - b, 1.0 + m, 1.0 - z, &sf);
		s2 *= sf;
	}
	if (s1 == 0 || l1 == -INFINITY)
	{
		*sign = s2;
		return l2;
	}
	if (s2 == 0 || l2 == -INFINITY)
	{
		*sign = s1;
		return l1;
	}
	if (s1 == s2)
	{
		*sign = s1;
		return clv_log_add(l1, l2);
	}
	/* opposite signs: log|e^l1 - e^l2| */
	if (l1 >= l2)
	{
		*sign = s1;
		return l1 + log1p(-exp(l2 - l1));
	}
	*sign = s2;
	return l2 + log1p(-exp(l1 - l2));
}
