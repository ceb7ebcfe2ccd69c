/*
 * type_ops.h
 *		The comparison functions of a crm base type, written once: its six
 *		operators and its btree support function all come from one three-way
 *		comparison of the call's two arguments.
 */
#ifndef TYPE_OPS_H
#define TYPE_OPS_H

#include "fmgr.h"

/* One operator: NAME(a, b) is CMP(fcinfo) OP 0 */
#define TYPE_OPS_OPERATOR(name, cmp, op) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(cmp(fcinfo) op 0); \
}

/*
 * PREFIX_eq, _ne, _lt, _le, _gt, _ge and the btree support function
 * PREFIX_cmp, from "static int CMP(FunctionCallInfo fcinfo)", which reads
 * arguments 0 and 1 and returns less than, equal to or greater than zero
 */
#define TYPE_OPS_COMPARISON(prefix, cmp) \
TYPE_OPS_OPERATOR(prefix##_eq, cmp, ==) \
TYPE_OPS_OPERATOR(prefix##_ne, cmp, !=) \
TYPE_OPS_OPERATOR(prefix##_lt, cmp, <) \
TYPE_OPS_OPERATOR(prefix##_le, cmp, <=) \
TYPE_OPS_OPERATOR(prefix##_gt, cmp, >) \
TYPE_OPS_OPERATOR(prefix##_ge, cmp, >=) \
PG_FUNCTION_INFO_V1(prefix##_cmp); \
Datum \
prefix##_cmp(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_INT32(cmp(fcinfo)); \
}

#endif							/* TYPE_OPS_H */
