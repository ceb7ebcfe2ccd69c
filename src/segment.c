/*
 * segment.c
 *		Validation and dependency analysis of dynamic segment predicates.
 *
 * A predicate is a boolean SQL expression over crm.contact_profile.  It is
 * parsed and analysed as "SELECT contact_id FROM crm.contact_profile WHERE
 * (<predicate>)", exactly the query a refresh runs, so syntax errors, unknown
 * columns and non-boolean results come back as PostgreSQL reports them, with
 * the position moved into the predicate text.  The walk over the analysed
 * tree then rejects what would make refresh wrong (volatile functions, row
 * locks, anything but one expression), and classifies the predicate:
 *
 *	time dependent:	its value may change with the clock alone (now(),
 *					current_date, windows, consent expiry, age, tables that
 *					no trigger tracks): every refresh re-evaluates everyone;
 *	population dependent: it compares a contact with the others (RFM
 *					quintiles, value_rank, subqueries over tracked tables):
 *					a refresh re-evaluates everyone when anything changed;
 *	otherwise:		only the contacts marked dirty since the last refresh.
 *
 * It also lists the segments used through crm.in_segment(contact_id, 'name').
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm.h"

#define PREDICATE_PREFIX "SELECT contact_id FROM crm.contact_profile WHERE ("
#define PREDICATE_SUFFIX "\n)"

/* Profile columns whose value moves with the clock */
static const char *const time_columns[] = {
	"age", "recency_days", "consent_email", "consent_phone", "consent_sms",
	"consent_post", "consent_profiling", "engagement_score", "fit_score", "grade", NULL
};

/* Profile columns that rank a contact among all the others */
static const char *const population_columns[] = {
	"rfm", "rfm_segment", "value_rank", NULL
};

/* Tables whose changes the dirty-marking triggers track */
static const char *const tracked_tables[] = {
	"contact", "company", "activity", "order", "consent", "contact_profile",
	"segment_member", "segment", NULL
};

typedef struct AnalyzeContext
{
	const char *sql;			/* the wrapped query */
	const char *predicate;		/* the user's text */
	const char *self;			/* name of the segment being defined */
	Oid			crm_nsp;
	Oid			profile_relid;
	List	   *rtables;		/* range tables, innermost first */
	bool		time_dependent;
	bool		population_dependent;
	List	   *uses;			/* segment names, as C strings */
} AnalyzeContext;

/* Is name in the NULL-terminated list? */
static bool
name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/* Character position (1-based) in the predicate of a byte offset in the query */
static int
predicate_position(AnalyzeContext *cxt, int location)
{
	int			prefix = strlen(PREDICATE_PREFIX);

	if (location < prefix)
		return 0;
	return pg_mbstrlen_with_len(cxt->predicate, location - prefix) + 1;
}

/* Report a rejected predicate at a position in its text */
#define PREDICATE_ERROR(cxt, location, code, ...) \
	ereport(ERROR, \
			(errcode(code), __VA_ARGS__, \
			 internalerrquery((cxt)->predicate), \
			 internalerrposition(predicate_position((cxt), (location)))))

/* check_functions_in_node callback: is the function volatile? */
static bool
function_is_volatile(Oid funcid, void *context)
{
	return func_volatile(funcid) == PROVOLATILE_VOLATILE;
}

/* Classify a call of a known function */
static void
classify_function(AnalyzeContext *cxt, FuncExpr *fexpr)
{
	Oid			nsp = get_func_namespace(fexpr->funcid);
	char	   *name = get_func_name(fexpr->funcid);
	int			nargs = list_length(fexpr->args);

	if (nsp == PG_CATALOG_NAMESPACE)
	{
		if (strcmp(name, "now") == 0 || strcmp(name, "statement_timestamp") == 0 ||
			strcmp(name, "transaction_timestamp") == 0 ||
			(strcmp(name, "age") == 0 && nargs == 1))
			cxt->time_dependent = true;
		return;
	}
	if (nsp != cxt->crm_nsp)
		return;
	if ((strcmp(name, "activity_count") == 0 && nargs >= 3) ||
		strcmp(name, "bought_between") == 0 || strcmp(name, "can_contact") == 0 ||
		strcmp(name, "score") == 0 || strcmp(name, "rfm_scores") == 0)
		cxt->time_dependent = true;
	else if (strcmp(name, "in_segment") == 0 && nargs == 2)
	{
		Node	   *arg = (Node *) lsecond(fexpr->args);
		char	   *used;

		if (!IsA(arg, Const) || ((Const *) arg)->consttype != TEXTOID)
			PREDICATE_ERROR(cxt, exprLocation(arg), ERRCODE_INVALID_PARAMETER_VALUE,
							errmsg("the segment name given to crm.in_segment must be a constant"),
							errdetail("Segment dependencies are read from the predicate when it is stored."),
							errhint("Write the name as a literal: crm.in_segment(contact_id, 'name')."));
		if (((Const *) arg)->constisnull)
			return;
		used = TextDatumGetCString(((Const *) arg)->constvalue);
		if (cxt->self && strcmp(used, cxt->self) == 0)
			PREDICATE_ERROR(cxt, exprLocation(arg), ERRCODE_INVALID_RECURSION,
							errmsg("segment \"%s\" cannot depend on itself", used),
							errdetail("A predicate may use crm.in_segment on other segments only."));
		cxt->uses = lappend(cxt->uses, used);
	}
}

/* Classify a column of the profile */
static void
classify_var(AnalyzeContext *cxt, Var *var)
{
	RangeTblEntry *rte;
	char	   *col;

	if (var->varlevelsup >= list_length(cxt->rtables))
		return;
	rte = rt_fetch(var->varno, (List *) list_nth(cxt->rtables, var->varlevelsup));
	if (rte->rtekind != RTE_RELATION || rte->relid != cxt->profile_relid)
		return;
	if (var->varattno <= 0)
	{
		/* a whole-row reference reads every column */
		cxt->time_dependent = true;
		cxt->population_dependent = true;
		return;
	}
	col = get_attname(rte->relid, var->varattno, false);
	if (name_in(col, time_columns))
		cxt->time_dependent = true;
	if (name_in(col, population_columns))
		cxt->population_dependent = true;
}

/* Classify a relation read by a subquery */
static void
classify_rte(AnalyzeContext *cxt, RangeTblEntry *rte)
{
	if (rte->rtekind != RTE_RELATION)
		return;
	if (get_rel_namespace(rte->relid) == cxt->crm_nsp &&
		name_in(get_rel_name(rte->relid), tracked_tables))
		cxt->population_dependent = true;
	else
		cxt->time_dependent = true;
}

/* Walk the analysed predicate, classifying and rejecting as we go */
static bool
analyze_walker(Node *node, AnalyzeContext *cxt)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;
		ListCell   *lc;
		bool		result;

		if (q->rowMarks != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a segment predicate must not lock rows"),
					 errdetail("FOR UPDATE and FOR SHARE take locks, which a refresh must not do."),
					 internalerrquery(cxt->predicate)));
		foreach(lc, q->rtable)
			classify_rte(cxt, (RangeTblEntry *) lfirst(lc));
		cxt->rtables = lcons(q->rtable, cxt->rtables);
		result = query_tree_walker(q, analyze_walker, (void *) cxt, 0);
		cxt->rtables = list_delete_first(cxt->rtables);
		return result;
	}
	if (check_functions_in_node(node, function_is_volatile, NULL))
		PREDICATE_ERROR(cxt, exprLocation(node), ERRCODE_INVALID_PARAMETER_VALUE,
						errmsg("a segment predicate must not call volatile functions"),
						errdetail("A volatile function can change data or give a different answer on every call, so stored membership could not match the predicate."),
						errhint("Use stable or immutable functions only."));
	if (IsA(node, FuncExpr))
		classify_function(cxt, (FuncExpr *) node);
	else if (IsA(node, SQLValueFunction))
	{
		SQLValueFunction *svf = (SQLValueFunction *) node;

		if (svf->op <= SVFOP_LOCALTIMESTAMP_N)
			cxt->time_dependent = true;
	}
	else if (IsA(node, Var))
		classify_var(cxt, (Var *) node);
	return expression_tree_walker(node, analyze_walker, (void *) cxt);
}

/* Parse and analyse the wrapped predicate, moving error positions into it */
static Query *
analyze_predicate(AnalyzeContext *cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *raw = NIL;
	Query	   *query = NULL;

	PG_TRY();
	{
		raw = raw_parser(cxt->sql, RAW_PARSE_DEFAULT);
		if (list_length(raw) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("a segment predicate must be one boolean expression"),
					 errdetail("The predicate closes the WHERE clause it is placed in."),
					 internalerrquery(cxt->predicate)));
		query = parse_analyze_fixedparams(linitial_node(RawStmt, raw), cxt->sql,
										  NULL, 0, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			prefix = strlen(PREDICATE_PREFIX);

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->cursorpos > 0)
		{
			edata->internalpos = edata->cursorpos > prefix ? edata->cursorpos - prefix : 0;
			edata->internalquery = pstrdup(cxt->predicate);
			edata->cursorpos = 0;
		}
		ReThrowError(edata);
	}
	PG_END_TRY();
	return query;
}

/* Check that the analysed query is still the wrapper with one predicate */
static void
check_shape(AnalyzeContext *cxt, Query *q)
{
	if (q->commandType != CMD_SELECT || q->setOperations || q->sortClause ||
		q->limitCount || q->limitOffset || q->groupClause || q->distinctClause ||
		q->hasAggs || q->hasWindowFuncs || q->cteList || q->rowMarks ||
		list_length(q->rtable) != 1 || list_length(q->targetList) != 1 ||
		list_length(q->jointree->fromlist) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a segment predicate must be one boolean expression"),
				 errdetail("The predicate closes the WHERE clause it is placed in."),
				 internalerrquery(cxt->predicate)));
}

/*
 * crm.segment_analyze(predicate, self): validate a predicate and return
 * (time_dependent, population_dependent, uses text[]).
 */
PG_FUNCTION_INFO_V1(crm_segment_analyze);
Datum
crm_segment_analyze(PG_FUNCTION_ARGS)
{
	AnalyzeContext cxt = {0};
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Datum	   *names;
	ListCell   *lc;
	int			i = 0;
	Query	   *query;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm.segment_analyze must return a composite type");
	cxt.predicate = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cxt.self = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	cxt.sql = psprintf("%s%s%s", PREDICATE_PREFIX, cxt.predicate, PREDICATE_SUFFIX);
	cxt.crm_nsp = get_namespace_oid("crm", false);
	cxt.profile_relid = get_relname_relid("contact_profile", cxt.crm_nsp);
	if (!OidIsValid(cxt.profile_relid))
		elog(ERROR, "view crm.contact_profile is missing");

	query = analyze_predicate(&cxt);
	check_shape(&cxt, query);
	/* the top level reads the profile itself: only its quals are the user's */
	cxt.rtables = list_make1(query->rtable);
	analyze_walker(query->jointree->quals, &cxt);

	values[0] = BoolGetDatum(cxt.time_dependent);
	values[1] = BoolGetDatum(cxt.population_dependent);
	names = palloc(sizeof(Datum) * (list_length(cxt.uses) + 1));
	foreach(lc, cxt.uses)
		names[i++] = CStringGetTextDatum((char *) lfirst(lc));
	values[2] = PointerGetDatum(construct_array(names, i, TEXTOID, -1, false, TYPALIGN_INT));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
