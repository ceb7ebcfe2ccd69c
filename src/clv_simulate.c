/*
 * clv_simulate.c
 *		A deterministic BG/NBD customer simulator, for recovery tests and
 *		benchmarks.
 *
 * crm.bgnbd_simulate(model, T, seed) draws one customer from the model:
 * lambda ~ Gamma(r, alpha), p ~ Beta(a, b), purchases at Poisson(lambda)
 * times until the customer drops out (probability p after each purchase)
 * or time T.  The random stream is a splitmix64 generator seeded from the
 * seed alone, so a customer depends only on (model, T, seed): the same
 * call gives the same customer on every run, in any plan.  When step > 0,
 * times are rounded up to multiples of step (whole days in a weekly model,
 * for instance), as in real transaction logs.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"

#include "clv.h"

typedef struct Rng
{
	uint64		s;
} Rng;

/* Next 64 random bits (splitmix64) */
static uint64
rng_next(Rng *g)
{
	uint64		z = (g->s += UINT64CONST(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform on (0, 1) */
static double
rng_unif(Rng *g)
{
	return ((rng_next(g) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller) */
static double
rng_norm(Rng *g)
{
	return sqrt(-2.0 * log(rng_unif(g))) * cos(2.0 * M_PI * rng_unif(g));
}

/* Gamma(shape, 1) by Marsaglia and Tsang, boosted for shape < 1 */
static double
rng_gamma(Rng *g, double shape)
{
	double		d,
				c;

	if (shape < 1.0)
		return rng_gamma(g, shape + 1.0) * pow(rng_unif(g), 1.0 / shape);
	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;)
	{
		double		x = rng_norm(g),
					v = 1.0 + c * x,
					u;

		if (v <= 0)
			continue;
		v = v * v * v;
		u = rng_unif(g);
		if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

/* Round a time up to the grid (no grid when step is 0) */
static double
on_grid(double t, double step)
{
	return step > 0 ? ceil(t / step - 1e-9) * step : t;
}

PG_FUNCTION_INFO_V1(crm_bgnbd_simulate);
/* crm.bgnbd_simulate(model, T, seed [, step]): one simulated customer */
Datum
crm_bgnbd_simulate(PG_FUNCTION_ARGS)
{
	ClvModel   *m = crm_clv_model_arg(fcinfo, 0, CLV_BGNBD);
	double		T = PG_GETARG_FLOAT8(1);
	int64		seed = PG_GETARG_INT64(2);
	double		step = PG_NARGS() > 3 ? PG_GETARG_FLOAT8(3) : 0;
	Rng			g;
	double		lambda,
				p,
				ga,
				gb,
				t = 0,
				tx = 0;
	int			x = 0;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false};

	if (!(isfinite(T) && T >= 0 && T <= 1e6))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("T must be between 0 and 1000000, not %g", T)));
	if (!(isfinite(step) && step >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step must be non-negative, not %g", step)));
	g.s = (uint64) seed * UINT64CONST(0xd1b54a32d192ed03) + UINT64CONST(0x2545f4914f6cdd1d);
	rng_next(&g);
	lambda = rng_gamma(&g, m->p[0]) / m->p[1];
	ga = rng_gamma(&g, m->p[2]);
	gb = rng_gamma(&g, m->p[3]);
	p = ga / (ga + gb);
	for (;;)
	{
		t += -log(rng_unif(&g)) / lambda;
		if (!(t <= T))
			break;
		x++;
		tx = t;
		if (rng_unif(&g) < p || x >= 1000000)
			break;
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Float8GetDatum((double) x);
	values[1] = Float8GetDatum(x > 0 ? Min(on_grid(tx, step), on_grid(T, step)) : 0.0);
	values[2] = Float8GetDatum(on_grid(T, step));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
