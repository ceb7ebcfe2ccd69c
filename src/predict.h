/*
 * predict.h
 *		Predictive models (src/predict_*.c): the columns of the model type
 *		crm.logit (src/predict.sql), in order.
 */
#ifndef CRM_PREDICT_H
#define CRM_PREDICT_H

/* crm.logit: feature, level, coefficient, std_error, dropped, log_likelihood,
 * n, positives, vectors, iterations, converged, l2 */
#define LOGIT_NATTS		12
#define LOGIT_FEATURE	0
#define LOGIT_LEVEL		1
#define LOGIT_COEF		2
#define LOGIT_DROPPED	4

#include "common/hashfn.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/*
 * A feature's value as "feature\0value" (len counts both and the \0), with
 * the weight of each outcome: naive Bayes's counts, logistic regression's
 * set of string levels
 */
typedef struct FvKey
{
	char	   *bytes;
	int			len;
} FvKey;

typedef struct FvEntry
{
	FvKey		key;
	uint32		hash;
	char		status;
	double		pos;
	double		neg;
} FvEntry;

#define SH_PREFIX		fv
#define SH_ELEMENT_TYPE	FvEntry
#define SH_KEY_TYPE		FvKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k).bytes, (k).len)
#define SH_EQUAL(tb, a, b)	((a).len == (b).len && memcmp((a).bytes, (b).bytes, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* src/predict_common.c */
extern FvKey predict_fv_key(const char *feature, const char *value);
extern char *predict_category(const char *feature, JsonbValue *v);
extern Datum predict_text_array(char **items, bool *nulls, int n);
extern Datum predict_float8_array(double *v, int n);
extern void predict_reader(StringInfo buf, bytea *flat);
extern void predict_emit_reason(ReturnSetInfo *rsinfo, const char *feature, const char *value,
								double contribution);

#endif
