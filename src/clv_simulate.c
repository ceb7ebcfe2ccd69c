/*
 * clv_simulate.c
 *		Deterministic customer simulators of the five CLV models, for
 *		recovery tests and benchmarks.
 *
 * crm.bgnbd_simulate, crm.mbgnbd_simulate, crm.paretonbd_simulate,
 * crm.bgbb_simulate and crm.gammagamma_simulate each draw one customer
 * from a model.  BG/NBD, for instance: lambda ~ Gamma(r, alpha),
 * p ~ Beta(a, b), purchases at Poisson(lambda) times until the customer
 * drops out (probability p after each purchase) or time T.  The random
 * stream is a splitmix64 generator seeded from the seed alone, so a
 * customer depends only on (model, T, seed): the same call gives the same
 * customer on every run, in any plan.  When step > 0, times are rounded up
 * to multiples of step (whole days in a weekly model, for instance), as in
 * real transaction logs.
 */
#include "postgres.h"

#include <float.h>
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
	/* huge shapes: the normal limit (relative sd 1/sqrt(shape) < 3e-8) */
	if (shape > 1e15)
		return Max(shape + sqrt(shape) * rng_norm(g), 0.0);
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
	/* + 0.0: a time 0 stays +0, never -0 from ceil(-1e-9) */
	return step > 0 ? ceil(t / step - 1e-9) * step + 0.0 : t;
}

/* Seed the generator from the seed alone */
static void
rng_seed(Rng *g, int64 seed)
{
	g->s = (uint64) seed * UINT64CONST(0xd1b54a32d192ed03) + UINT64CONST(0x2545f4914f6cdd1d);
	rng_next(g);
}

/* Beta(a, b) as a ratio of gammas */
static double
rng_beta(Rng *g, double a, double b)
{
	double		ga = rng_gamma(g, a),
				gb = rng_gamma(g, b);

	/* both underflow only for tiny shapes: pick a side by the odds a : b */
	if (!(ga + gb > 0))
		return rng_unif(g) < a / (a + b) ? 1.0 : 0.0;
	return ga / (ga + gb);
}

#define MAX_PURCHASES	1000000

/*
 * The model's parameters must be positive and finite.  The type's input
 * and receive functions already guarantee it; checked again because the
 * sampling loops rely on it.
 */
static void
check_model(const ClvModel *m)
{
	const ClvKindInfo *ki = clv_kind_info(m->kind);
	int			i;

	for (i = 0; i < ki->nparams; i++)
		if (!(isfinite(m->p[i]) && m->p[i] > 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s parameter %s must be positive and finite, not %g",
							ki->name, ki->params[i], m->p[i])));
}

/* Check T and step of a continuous-time simulator */
static void
check_time(double T, double step)
{
	if (!(isfinite(T) && T >= 0 && T <= 1e6))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("T must be between 0 and 1000000, not %g", T)));
	if (!(isfinite(step) && step >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step must be non-negative, not %g", step)));
}

/* Return (frequency, recency, last column) as the function's row type */
static Datum
sim_result(FunctionCallInfo fcinfo, double x, double tx, double T)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Float8GetDatum(x);
	values[1] = Float8GetDatum(tx);
	values[2] = Float8GetDatum(T);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * The model of a simulator (argument 0, checked) and its generator,
 * seeded from argument 2
 */
static ClvModel *
sim_start(FunctionCallInfo fcinfo, int kind, Rng *g)
{
	ClvModel   *model = clv_model_arg(fcinfo, 0, kind);

	check_model(model);
	rng_seed(g, PG_GETARG_INT64(2));
	return model;
}

/* T and step (arguments 1 and 3; no step, 0, when absent), checked */
static void
time_args(FunctionCallInfo fcinfo, double *T, double *step)
{
	*T = PG_GETARG_FLOAT8(1);
	*step = PG_NARGS() > 3 ? PG_GETARG_FLOAT8(3) : 0;
	check_time(*T, *step);
}

/*
 * Argument 1 of a count-driven simulator (opportunities, frequency): a
 * whole number between 1 and max; zero_detail, when given, says why 0 is
 * refused
 */
static double
count_arg(FunctionCallInfo fcinfo, const char *what, double max, const char *zero_detail)
{
	double		v = PG_GETARG_FLOAT8(1);

	if (!(isfinite(v) && v >= 1 && v <= max && v == floor(v)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a whole number between 1 and %.0f, not %g", what, max, v),
				 v == 0 && zero_detail ? errdetail("%s", zero_detail) : 0));
	return v;
}

/* A continuous-time customer's row: x purchases, the last at tx, times on the grid */
static Datum
time_result(FunctionCallInfo fcinfo, int x, double tx, double T, double step)
{
	return sim_result(fcinfo, (double) x,
					  x > 0 ? Min(on_grid(tx, step), on_grid(T, step)) : 0.0,
					  on_grid(T, step));
}

/* One BG/NBD (m = 0) or MBG/NBD (m = 1) customer */
static Datum
bg_simulate(FunctionCallInfo fcinfo, int kind, int m)
{
	Rng			g;
	ClvModel   *model = sim_start(fcinfo, kind, &g);
	double		T,
				step,
				lambda,
				p,
				t = 0,
				tx = 0;
	int			x = 0;

	time_args(fcinfo, &T, &step);
	lambda = rng_gamma(&g, model->p[0]) / model->p[1];
	p = rng_beta(&g, model->p[2], model->p[3]);
	/* MBG/NBD: the customer may drop out at time 0, before any purchase */
	if (m == 0 || !(rng_unif(&g) < p))
	{
		for (;;)
		{
			t += -log(rng_unif(&g)) / lambda;
			if (!(t <= T))
				break;
			x++;
			tx = t;
			if (rng_unif(&g) < p || x >= MAX_PURCHASES)
				break;
		}
	}
	return time_result(fcinfo, x, tx, T, step);
}

PG_FUNCTION_INFO_V1(crm_bgnbd_simulate);
/* crm.bgnbd_simulate(model, T, seed [, step]): one simulated customer */
Datum
crm_bgnbd_simulate(PG_FUNCTION_ARGS)
{
	return bg_simulate(fcinfo, CLV_BGNBD, 0);
}

PG_FUNCTION_INFO_V1(crm_mbgnbd_simulate);
/* crm.mbgnbd_simulate(model, T, seed [, step]): one simulated customer */
Datum
crm_mbgnbd_simulate(PG_FUNCTION_ARGS)
{
	return bg_simulate(fcinfo, CLV_MBGNBD, 1);
}

PG_FUNCTION_INFO_V1(crm_paretonbd_simulate);
/* crm.paretonbd_simulate(model, T, seed [, step]): one simulated customer */
Datum
crm_paretonbd_simulate(PG_FUNCTION_ARGS)
{
	Rng			g;
	ClvModel   *model = sim_start(fcinfo, CLV_PARETONBD, &g);
	double		T,
				step,
				lambda,
				mu,
				tau,
				end,
				t = 0,
				tx = 0;
	int			x = 0;

	time_args(fcinfo, &T, &step);
	lambda = rng_gamma(&g, model->p[0]) / model->p[1];
	mu = rng_gamma(&g, model->p[2]) / model->p[3];
	tau = -log(rng_unif(&g)) / mu;	/* +Inf when mu underflows: never dies */
	end = Min(tau, T);
	for (;;)
	{
		t += -log(rng_unif(&g)) / lambda;
		if (!(t <= end) || x >= MAX_PURCHASES)
			break;
		x++;
		tx = t;
	}
	return time_result(fcinfo, x, tx, T, step);
}

PG_FUNCTION_INFO_V1(crm_bgbb_simulate);
/* crm.bgbb_simulate(model, n, seed): one simulated customer over n opportunities */
Datum
crm_bgbb_simulate(PG_FUNCTION_ARGS)
{
	Rng			g;
	ClvModel   *model = sim_start(fcinfo, CLV_BGBB, &g);
	int			n = (int) count_arg(fcinfo, "opportunities", 100000, NULL);
	double		p,
				theta;
	int			i,
				x = 0,
				tx = 0;

	p = rng_beta(&g, model->p[0], model->p[1]);
	theta = rng_beta(&g, model->p[2], model->p[3]);
	for (i = 1; i <= n; i++)
	{
		/* drop out at the start of the opportunity, else maybe buy */
		if (rng_unif(&g) < theta)
			break;
		if (rng_unif(&g) < p)
		{
			x++;
			tx = i;
		}
	}
	return sim_result(fcinfo, (double) x, (double) tx, (double) n);
}

PG_FUNCTION_INFO_V1(crm_gammagamma_simulate);
/* crm.gammagamma_simulate(model, frequency, seed): mean value of frequency purchases */
Datum
crm_gammagamma_simulate(PG_FUNCTION_ARGS)
{
	Rng			g;
	ClvModel   *model = sim_start(fcinfo, CLV_GAMMAGAMMA, &g);
	double		x = count_arg(fcinfo, "frequency", 1e6,
							  "Gamma-Gamma describes the mean value of the repeat purchases; there is none at frequency 0.");
	double		nu,
				sum;

	if (!isfinite(model->p[0] * x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("p * frequency overflows: p = %g, frequency %g", model->p[0], x)));
	nu = rng_gamma(&g, model->p[1]) / model->p[2];
	sum = rng_gamma(&g, model->p[0] * x) / nu;
	/* keep the value a valid spend when a draw under- or overflows */
	PG_RETURN_FLOAT8(Min(Max(sum / x, DBL_MIN), DBL_MAX));
}
