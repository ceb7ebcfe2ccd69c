/*
 * clv_gammagamma.c
 *		Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV";
 *		Hardie's note 025) and the discounted CLV that combines it with a
 *		transaction model.
 *
 * A customer with x repeat purchases of mean value mbar contributes
 *	 log L = lgamma(px+q) - lgamma(px) - lgamma(q) + q log(gamma)
 *			 + (px-1) log(mbar) + px log(x) - (px+q) log(gamma + x mbar).
 * Spend is divided by its weighted mean before optimising (gamma scaled
 * back).  The conditional expected average spend is
 * p (gamma + x mbar) / (px + q - 1); it needs q > 1 (finite mean spend).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"

#include "clv.h"

/* Objective: minus the mean log-likelihood over log(p, q, gamma), with gradient */
static double
gg_objective(const double *theta, double *grad, double *hess, void *arg)
{
	ClvData    *d = arg;
	double		p = exp(theta[0]),
				q = exp(theta[1]),
				g = exp(theta[2]);
	double		base = -lgamma(q) + q * theta[2];
	double		dq_base = grad ? -clv_digamma(q) + theta[2] : 0;
	double		ll = 0,
				gp = 0,
				gq = 0,
				gg = 0;
	int64		j;

	for (j = 0; j < d->n; j++)
	{
		double		x = d->rows[j].k[0],
					m = d->rows[j].k[1],
					w = d->rows[j].w;
		double		px = p * x;
		double		lgm = log(g + x * m);

		ll += w * (base + lgamma(px + q) - lgamma(px) + (px - 1) * log(m)
				   + px * log(x) - (px + q) * lgm);
		if (grad)
		{
			double		psi_pxq = clv_digamma(px + q);

			gp += w * x * (psi_pxq - clv_digamma(px) + log(m) + log(x) - lgm);
			gq += w * (dq_base + psi_pxq - lgm);
			gg += w * (q / g - (px + q) / (g + x * m));
		}
	}
	if (grad)
	{
		/* chain rule to log-parameters, and minus the mean */
		grad[0] = -gp * p / d->total_w;
		grad[1] = -gq * q / d->total_w;
		grad[2] = -gg * g / d->total_w;
	}
	return -ll / d->total_w;
}

PG_FUNCTION_INFO_V1(crm_gammagamma_final);
/* Final function of crm.gammagamma_fit */
Datum
crm_gammagamma_final(PG_FUNCTION_ARGS)
{
	ClvRows    *st = clv_final_state(fcinfo, "gammagamma");
	ClvData    *d = clv_prepare(st, false);
	double		theta[3] = {0, 0, 0};
	double		mean = 0;
	ClvFitResult res;
	int64		j;

	/* scale spend to mean 1 */
	for (j = 0; j < d->n; j++)
		mean += d->rows[j].w * d->rows[j].k[1];
	mean /= d->total_w;
	for (j = 0; j < d->n; j++)
		d->rows[j].k[1] /= mean;
	clv_minimise(gg_objective, d, 3, theta, true, d->total_w, &res);
	PG_RETURN_POINTER(clv_fit_model(CLV_GAMMAGAMMA, &res, theta, (const double[3]) {1, 1, mean},
									d->total_w * log(mean), d->total_w));
}

/* Conditional expected mean spend; q <= 1 is an error */
double
clv_gg_spend(const double *p, double x, double mbar)
{
	if (p[1] <= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gammagamma model has q = %g, expected spend is infinite", p[1]),
				 errdetail("The mean of the spend distribution, p gamma / (q - 1), exists only when q > 1."),
				 errhint("Refit on more customers or leave out extreme spenders.")));
	if (!(x >= 0 && x == floor(x) && isfinite(x)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a non-negative integer, not %g", x)));
	if (x == 0)
		return p[0] * p[2] / (p[1] - 1.0);
	if (!(isfinite(mbar) && mbar > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monetary value must be positive and finite when frequency > 0, not %g", mbar)));
	return p[0] * (p[2] + x * mbar) / (p[0] * x + p[1] - 1.0);
}

PG_FUNCTION_INFO_V1(crm_gammagamma_expected_spend);
/* crm.expected_spend(gammagamma, frequency, monetary_value) */
Datum
crm_gammagamma_expected_spend(PG_FUNCTION_ARGS)
{
	ClvModel   *m = clv_model_arg(fcinfo, 0, CLV_GAMMAGAMMA);

	PG_RETURN_FLOAT8(clv_gg_spend(m->p, PG_GETARG_FLOAT8(1), PG_GETARG_FLOAT8(2)));
}

PG_FUNCTION_INFO_V1(crm_gammagamma_loglik);
/* crm.log_likelihood(gammagamma, frequency, monetary_value): one customer with x > 0 */
Datum
crm_gammagamma_loglik(PG_FUNCTION_ARGS)
{
	ClvModel   *model = clv_model_arg(fcinfo, 0, CLV_GAMMAGAMMA);
	double		x = PG_GETARG_FLOAT8(1),
				m = PG_GETARG_FLOAT8(2);
	double		p = model->p[0],
				q = model->p[1],
				g = model->p[2];

	if (!(x >= 1 && x == floor(x) && isfinite(x)) || !(m > 0 && isfinite(m)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gammagamma log-likelihood needs frequency >= 1 and positive spend, not %g and %g", x, m)));
	PG_RETURN_FLOAT8(lgamma(p * x + q) - lgamma(p * x) - lgamma(q) + q * log(g)
					 + (p * x - 1) * log(m) + p * x * log(x) - (p * x + q) * log(g + x * m));
}

/* Check the horizon, discount and unit of crm.clv */
static void
check_clv_args(double horizon, double d, double unit)
{
	if (!(isfinite(horizon) && horizon >= 0 && horizon == floor(horizon) && horizon <= 10000))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be a whole number of periods between 0 and 10000, not %g", horizon)));
	if (!(isfinite(d) && d > -1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("discount rate must be greater than -1, not %g", d),
				 errhint("The discount rate is per period, e.g. 0.01 for 1%% a month.")));
	if (!(isfinite(unit) && unit > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must be positive, not %g", unit),
				 errhint("unit is the length of one period in the model's time unit, e.g. 4.345 weeks a month.")));
}

/*
 * Discounted value: sum over periods i = 1..horizon of
 * spend * (E[Y(i unit)] - E[Y((i-1) unit)]) / (1 + d)^i.
 */
static double
clv_value(FmgrInfo *flinfo, int kind, const double *tp, const double *gp, double x, double tx, double T,
		  double mbar, double horizon, double d, double unit)
{
	double		spend,
				prev = 0,
				total = 0,
				disc = 1;
	int			i;

	clv_check_rfm(x, tx, T);
	check_clv_args(horizon, d, unit);
	spend = clv_gg_spend(gp, x, mbar);
	for (i = 1; i <= (int) horizon; i++)
	{
		double		e;

		if (kind == CLV_PARETONBD)
			e = clv_paretonbd_expect(tp, i * unit, x, tx, T);
		else
			e = clv_bg_expect(flinfo, tp, kind == CLV_MBGNBD ? 1 : 0, i * unit, x, tx, T);
		disc /= (1.0 + d);
		total += (e - prev) * disc;
		prev = e;
	}
	return total * spend;
}

PG_FUNCTION_INFO_V1(crm_clv_value);
/* crm.clv(bgnbd|mbgnbd|paretonbd, gammagamma, frequency, recency, T, monetary_value, horizon, discount_rate, unit) */
Datum
crm_clv_value(PG_FUNCTION_ARGS)
{
	ClvModel   *tm = (ClvModel *) PG_GETARG_POINTER(0);
	ClvModel   *gm = clv_model_arg(fcinfo, 1, CLV_GAMMAGAMMA);

	if (tm->kind != CLV_BGNBD && tm->kind != CLV_MBGNBD && tm->kind != CLV_PARETONBD)
		elog(ERROR, "crm.clv needs a continuous-time transaction model, got kind %d", tm->kind);
	PG_RETURN_FLOAT8(clv_value(fcinfo->flinfo, tm->kind, tm->p, gm->p,
							   PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3), PG_GETARG_FLOAT8(4),
							   PG_GETARG_FLOAT8(5), PG_GETARG_FLOAT8(6), PG_GETARG_FLOAT8(7),
							   PG_GETARG_FLOAT8(8)));
}
