/*
 * clv.h
 *		Shared pieces of the customer-lifetime-value units: the model value
 *		layout (clv_model.c), the fitting state seen from the models
 *		(clv_fit.c, clv_rows.c, clv_prepare.c), the special functions
 *		(clv_special.c) and the optimisers (clv_optim.c).
 */
#ifndef CLV_H
#define CLV_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

/* Model kinds; stored in the model value, never renumber */
typedef enum ClvKind
{
	CLV_BGNBD = 1,
	CLV_PARETONBD = 2,
	CLV_MBGNBD = 3,
	CLV_GAMMAGAMMA = 4,
	CLV_BGBB = 5
} ClvKind;

#define CLV_MAX_PARAMS		4
#define CLV_MODEL_VERSION	1
#define CLV_FLAG_CONVERGED	0x0001

/*
 * A fitted (or hand-written) model.  Fixed length, passed by reference.
 * version lets the layout evolve; recv rejects versions it does not know.
 */
typedef struct ClvModel
{
	uint8		version;
	uint8		kind;
	uint16		flags;
	int32		nparams;
	double		n;				/* customers (sum of weights) in the fit */
	double		ll;				/* log-likelihood at the parameters */
	double		p[CLV_MAX_PARAMS];	/* parameters */
	double		se[CLV_MAX_PARAMS]; /* standard errors, NaN when unknown */
} ClvModel;

/* Names and parameter names of one kind */
typedef struct ClvKindInfo
{
	const char *name;
	int			nparams;
	const char *params[CLV_MAX_PARAMS];
} ClvKindInfo;

extern const ClvKindInfo *clv_kind_info(int kind);
extern ClvModel *clv_model_arg(FunctionCallInfo fcinfo, int argno, int kind);

/* One compressed row: up to three keys and the summed weight */
typedef struct ClvRow
{
	double		k[3];
	double		w;
} ClvRow;

/* The state of the fitting aggregates (clv_rows.h) */
typedef struct ClvRows ClvRows;

extern ClvRows *clv_rows_new(MemoryContext cxt, int kind);
extern void clv_rows_add(ClvRows *st, const double *k, double w);
extern bool clv_rows_empty(ClvRows *st);
extern const ClvRow *clv_rows_sorted(ClvRows *st, int64 *n);

/* Sorted, time-scaled rows ready for a fit */
typedef struct ClvData
{
	ClvRow	   *rows;
	int64		n;
	double		scale;			/* times were divided by this */
	double		total_w;		/* customers */
	double		sum_wx;			/* sum of weight * frequency */
	/* distinct time values (t_x and T) and each row's index into them */
	int64		ntimes;
	double	   *times;
	int32	   *itx;
	int32	   *iT;
} ClvData;

extern void clv_check_rfm(double x, double tx, double T);
extern void clv_check_discrete(double x, double tx, double n);
extern double clv_check_horizon(double t);
extern double clv_check_count(double v, const char *what, double max);
extern ClvRows *clv_final_state(FunctionCallInfo fcinfo, const char *what);
extern ClvData *clv_prepare(ClvRows *st, bool scale_times);
extern void clv_index_times(ClvData *d);
extern ClvData *clv_prepare_indexed(ClvRows *st);
extern ClvData *clv_sample(const ClvData *d, int64 target);

/* One customer of a continuous-time model: frequency, recency and T */
typedef struct ClvRfm
{
	double		x;
	double		tx;
	double		T;
} ClvRfm;

/*
 * The customer in arguments first to first + 2, checked: the per-customer
 * functions of the continuous-time models
 */
static inline ClvRfm
clv_rfm_arg(FunctionCallInfo fcinfo, int first)
{
	ClvRfm		c = {PG_GETARG_FLOAT8(first), PG_GETARG_FLOAT8(first + 1), PG_GETARG_FLOAT8(first + 2)};

	clv_check_rfm(c.x, c.tx, c.T);
	return c;
}

/*
 * Above this many distinct rows a fit starts from a fit on a sample of
 * about CLV_SAMPLE_ROWS of them (see clv_sample)
 */
#define CLV_SAMPLE_FROM		32768
#define CLV_SAMPLE_ROWS		4096

/* Special functions */
extern double clv_digamma(double x);
extern double clv_trigamma(double x);
extern double clv_lbeta(double a, double b);
extern double clv_log_hyp2f1(double a, double b, double c, double z, int *sign);
extern double clv_log_add(double la, double lb);

/*
 * Objective for the optimiser: value and, when grad (hess) is not NULL,
 * gradient (Hessian, row-major with rows of CLV_MAX_PARAMS)
 */
typedef double (*ClvObjective) (const double *theta, double *grad, double *hess, void *arg);

typedef struct ClvFitResult
{
	double		fmin;
	int			iterations;
	int			evaluations;
	bool		converged;
	double		se[CLV_MAX_PARAMS]; /* standard errors of theta */
	bool		have_hinv;		/* hinv holds the inverse Hessian at the end */
	double		hinv[CLV_MAX_PARAMS][CLV_MAX_PARAMS];
} ClvFitResult;

extern void clv_minimise(ClvObjective f, void *arg, int n, double *theta,
						 bool analytic, double n_obs, ClvFitResult *res);
extern void clv_minimise_warm(ClvObjective f, void *arg, int n, double *theta,
							  bool analytic, double n_obs, const ClvFitResult *start,
							  ClvFitResult *res);
extern bool clv_usable_start(int n, const double *theta, const ClvFitResult *res);
extern void clv_minimise_newton(ClvObjective f, void *arg, int n, double *theta,
								double n_obs, ClvFitResult *res);

/* The model of a finished fit (exp(theta) * scale); warns when it did not converge */
extern ClvModel *clv_fit_model(int kind, const ClvFitResult *res, const double *theta,
							   const double *scale, double ll_shift, double n);

/* Conditional expectations, for crm.clv */
extern double clv_bg_expect(FmgrInfo *flinfo, const double *p, int m, double t, double x, double tx, double T);
extern double clv_paretonbd_expect(const double *p, double t, double x, double tx, double T);
extern double clv_gg_spend(const double *p, double x, double mbar);

#endif							/* CLV_H */
