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

#include "utils/jsonb.h"

/* src/predict_nbayes.c: a feature value as a category (NULL for JSON null) */
extern char *predict_category(const char *feature, JsonbValue *v);

#endif
