/*
 * segment.c
 *		Validation, dependency analysis and evaluation of dynamic segment
 *		predicates.
 *
 * A predicate is a boolean SQL expression over crm.contact_profile.  It is
 * first lexed on its own: every token complete, every bracket closed within
 * it, no ';'.  So "(<predicate>\n)" is one parenthesised group in any query,
 * and no text can close a parenthesis it did not open or comment out what
 * follows.  It is then parsed and analysed as "SELECT contact_id FROM
 * crm.contact_profile WHERE (<predicate>\n)", the query a refresh runs (as a
 * subquery when only some contacts are evaluated), so syntax errors, unknown
 * columns and non-boolean results come back as PostgreSQL reports them, with
 * the position moved into the predicate text.  The walk over the analysed
 * tree then rejects what would make refresh wrong (volatile functions, row
 * locks, temporary objects, anything but one expression), and classifies
 * the predicate by the functions, columns and relations it resolved to:
 *
 *	time dependent:	its value may change with the clock or the session
 *					alone (now(), current_date, 'today', windows, consent
 *					expiry, age, tables no trigger tracks, and any function
 *					not known to be pure of time, user functions included):
 *					every refresh re-evaluates everyone;
 *	population dependent: it compares a contact with the others (RFM
 *					quintiles, value_rank, subqueries over tracked tables,
 *					another contact's activities or segments): a refresh
 *					re-evaluates everyone when anything changed;
 *	otherwise:		only the contacts marked dirty since the last refresh.
 *
 * It also lists the segments used through crm.in_segment(contact_id, 'name').
 *
 * crm.segment_evaluate runs a stored predicate for a refresh with the
 * privileges of the segment's owner alone, in a security-restricted
 * operation (as REFRESH MATERIALIZED VIEW runs a view's query as its owner),
 * after validating it again as that owner: whoever refreshes, the predicate
 * never runs with more privilege than its author had.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/gramparse.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm.h"

#define PREDICATE_PREFIX "SELECT contact_id FROM crm.contact_profile WHERE ("
#define PREDICATE_SUFFIX "\n)"
#define PREFIX_LEN ((int) sizeof(PREDICATE_PREFIX) - 1)

/* The path a predicate resolves its names under, at validation and refresh */
#define PREDICATE_SEARCH_PATH "pg_catalog, crm, pg_temp"

/*
 * Profile columns whose value moves with the clock, or with writes no dirty
 * mark follows (loyalty: redemptions, expiry and tier reviews)
 */
static const char *const time_columns[] = {
	"age", "recency_days", "consent_email", "consent_phone", "consent_sms",
	"consent_post", "consent_profiling", "engagement_score", "fit_score", "grade",
	"points_balance", "loyalty_tier", "points_expiring_30d", NULL
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

/*
 * Built-in functions whose result moves with the clock, the transaction or
 * the session rather than with the data: a predicate calling one is time
 * dependent.  (Other built-ins are pure of time; the date and time input
 * functions are here for 'now', 'today' and the like.)
 */
static const Oid clock_functions[] = {
	F_NOW, F_STATEMENT_TIMESTAMP, F_TRANSACTION_TIMESTAMP, F_CLOCK_TIMESTAMP, F_TIMEOFDAY,
	F_AGE_TIMESTAMP, F_AGE_TIMESTAMPTZ, F_AGE_XID, F_MXID_AGE,
	F_PG_CURRENT_XACT_ID, F_PG_CURRENT_XACT_ID_IF_ASSIGNED, F_PG_CURRENT_SNAPSHOT,
	F_TXID_CURRENT, F_TXID_CURRENT_IF_ASSIGNED, F_TXID_CURRENT_SNAPSHOT,
	F_PG_POSTMASTER_START_TIME, F_PG_CONF_LOAD_TIME, F_PG_BACKEND_PID, F_PG_TRIGGER_DEPTH,
	F_PG_MY_TEMP_SCHEMA, F_CURRENT_SETTING_TEXT, F_CURRENT_SETTING_TEXT_BOOL,
	F_INET_CLIENT_ADDR, F_INET_CLIENT_PORT, F_INET_SERVER_ADDR, F_INET_SERVER_PORT,
	F_DATE_IN, F_TIMESTAMP_IN, F_TIMESTAMPTZ_IN, F_TIME_IN, F_TIMETZ_IN,
	F_TIMETZ_TIME, F_TIMEZONE_TEXT_TIMETZ, F_PG_TIMEZONE_NAMES, F_PG_TIMEZONE_ABBREVS
};

/* Words that date and time input reads as the current time */
static const char *const clock_words[] = {"now", "today", "tomorrow", "yesterday", NULL};

typedef struct AnalyzeContext
{
	const char *sql;			/* the wrapped query */
	const char *predicate;		/* the user's text */
	const char *self;			/* name of the segment being defined */
	Oid			crm_nsp;
	Oid			crm_ext;
	Oid			profile_relid;
	Oid			in_segment_fn;	/* crm.in_segment(bigint, text) */
	Oid			activity_count_fn;	/* crm.activity_count(bigint, text, interval) */
	Oid			activity_count_text_fn; /* the same with the window as text */
	Oid			stage_text_fns[2];	/* stage = text, stage <> text: stable (enum
									 * input), not time-dependent */
	Oid			my_roles_fn;	/* crm.my_roles() */
	List	   *rtables;		/* range tables, innermost first */
	int			location;		/* of the node being classified */
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
	if (location < PREFIX_LEN)
		return 0;
	return pg_mbstrlen_with_len(cxt->predicate, location - PREFIX_LEN) + 1;
}

/* Report a rejected predicate at a position (in the wrapped query) */
#define PREDICATE_ERROR(cxt, location, code, ...) \
	ereport(ERROR, \
			(errcode(code), __VA_ARGS__, \
			 internalerrquery((cxt)->predicate), \
			 internalerrposition(predicate_position((cxt), (location)))))

/*
 * Run a parser step and move the position of its errors into the predicate:
 * offset is where the predicate starts in the text the step reads.
 */
#define WITH_PREDICATE_POSITIONS(cxt, offset, step) \
	do { \
		MemoryContext oldcxt_ = CurrentMemoryContext; \
		PG_TRY(); \
		{ \
			step; \
		} \
		PG_CATCH(); \
		{ \
			ErrorData  *edata_; \
			MemoryContextSwitchTo(oldcxt_); \
			edata_ = CopyErrorData(); \
			FlushErrorState(); \
			if (edata_->cursorpos > 0) \
			{ \
				edata_->internalpos = edata_->cursorpos > (offset) ? edata_->cursorpos - (offset) : 0; \
				edata_->internalquery = pstrdup((cxt)->predicate); \
				edata_->cursorpos = 0; \
			} \
			ReThrowError(edata_); \
		} \
		PG_END_TRY(); \
	} while (0)

/* Does a string constant hold a word that date/time input reads as the clock? */
static bool
names_the_clock(const char *s)
{
	while (*s)
	{
		const char *w = s;
		const char *const *word;

		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			s++;
		if (s == w)
		{
			s++;
			continue;
		}
		for (word = clock_words; *word; word++)
			if ((int) strlen(*word) == s - w && pg_strncasecmp(w, *word, s - w) == 0)
				return true;
	}
	return false;
}

/*
 * Lex the predicate on its own: every token complete (the scanner rejects an
 * unterminated string, comment or dollar quote), brackets paired within it,
 * no ';'.  String constants naming the clock make it time dependent.
 */
static void
lex_tokens(AnalyzeContext *cxt)
{
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int		   *open = palloc(sizeof(int) * (strlen(cxt->predicate) + 1));
	int			depth = 0;
	int			tokens = 0;
	int			tok;

	scanner = scanner_init(cxt->predicate, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while ((tok = core_yylex(&yylval, &yylloc, scanner)) != 0)
	{
		tokens++;
		switch (tok)
		{
			case '(':
			case '[':
				open[depth++] = yylloc;
				break;
			case ')':
			case ']':
				if (depth == 0)
					PREDICATE_ERROR(cxt, PREFIX_LEN + yylloc, ERRCODE_SYNTAX_ERROR,
									errmsg("a segment predicate must be one boolean expression"),
									errdetail("This \"%c\" closes a bracket the predicate did not open.", tok),
									errhint("Balance the brackets within the predicate."));
				if (cxt->predicate[open[depth - 1]] != (tok == ')' ? '(' : '['))
					PREDICATE_ERROR(cxt, PREFIX_LEN + yylloc, ERRCODE_SYNTAX_ERROR,
									errmsg("a segment predicate must be one boolean expression"),
									errdetail("This \"%c\" does not match the \"%c\" it closes.",
											  tok, cxt->predicate[open[depth - 1]]));
				depth--;
				break;
			case ';':
				PREDICATE_ERROR(cxt, PREFIX_LEN + yylloc, ERRCODE_SYNTAX_ERROR,
								errmsg("a segment predicate must be one boolean expression"),
								errdetail("A predicate is one expression, not a list of statements."));
				break;
			case SCONST:
				if (names_the_clock(yylval.str))
					cxt->time_dependent = true;
				break;
			case USCONST:
				/* its escapes are decoded after lexing: assume the worst */
				cxt->time_dependent = true;
				break;
		}
	}
	scanner_finish(scanner);
	if (tokens == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a dynamic segment needs a predicate"),
				 errdetail("The predicate holds nothing but white space and comments."),
				 errhint("Give a boolean expression over crm.contact_profile, e.g. country = 'DE', or use crm.create_static_segment.")));
	if (depth > 0)
		PREDICATE_ERROR(cxt, PREFIX_LEN + open[depth - 1], ERRCODE_SYNTAX_ERROR,
						errmsg("a segment predicate must be one boolean expression"),
						errdetail("This \"%c\" is not closed within the predicate.",
								  cxt->predicate[open[depth - 1]]));
}

/* Reject an object the refreshing session, not the author, would provide */
static void
reject_temporary(AnalyzeContext *cxt, Oid nsp, const char *what)
{
	if (isAnyTempNamespace(nsp))
		PREDICATE_ERROR(cxt, cxt->location, ERRCODE_INVALID_PARAMETER_VALUE,
						errmsg("a segment predicate must not use temporary %s", what),
						errdetail("Temporary objects belong to one session; a refresh may run in another."));
}

/* Reject a value of a temporary type */
static void
check_type(AnalyzeContext *cxt, Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));

	if (!HeapTupleIsValid(tup))
		return;
	reject_temporary(cxt, ((Form_pg_type) GETSTRUCT(tup))->typnamespace, "types");
	ReleaseSysCache(tup);
}

/*
 * check_functions_in_node callback: reject and classify each function a
 * node calls, by its OID.  Built-ins are pure of time but for the clock
 * list; crm's own are when immutable or known; anything else is not known
 * to be pure of time, whatever its label says.
 */
static bool
classify_funcid(Oid funcid, void *context)
{
	AnalyzeContext *cxt = (AnalyzeContext *) context;
	char		volatility = func_volatile(funcid);
	int			i;

	if (volatility == PROVOLATILE_VOLATILE)
		PREDICATE_ERROR(cxt, cxt->location, ERRCODE_INVALID_PARAMETER_VALUE,
						errmsg("a segment predicate must not call volatile functions"),
						errdetail("A volatile function can change data or give a different answer on every call, so stored membership could not match the predicate."),
						errhint("Use stable or immutable functions only."));
	reject_temporary(cxt, get_func_namespace(funcid), "functions");
	if (funcid < FirstNormalObjectId)
	{
		char	   *name = get_func_name(funcid);

		for (i = 0; i < lengthof(clock_functions); i++)
			if (clock_functions[i] == funcid)
				cxt->time_dependent = true;
		if (name && strncmp(name, "pg_stat_", 8) == 0)
			cxt->time_dependent = true;
		return false;
	}
	if (getExtensionOfObject(ProcedureRelationId, funcid) == cxt->crm_ext &&
		(volatility == PROVOLATILE_IMMUTABLE || funcid == cxt->in_segment_fn ||
		 funcid == cxt->activity_count_fn || funcid == cxt->activity_count_text_fn ||
		 funcid == cxt->stage_text_fns[0] || funcid == cxt->stage_text_fns[1] ||
		 funcid == cxt->my_roles_fn))
		return false;
	cxt->time_dependent = true;
	return false;
}

/* Is the node the contact_id of the profile row being evaluated? */
static bool
is_own_contact_id(AnalyzeContext *cxt, Node *node)
{
	Var		   *var;
	int			top = list_length(cxt->rtables) - 1;
	RangeTblEntry *rte;

	if (node == NULL || !IsA(node, Var))
		return false;
	var = (Var *) node;
	if (var->varlevelsup != top || var->varattno <= 0)
		return false;
	rte = rt_fetch(var->varno, (List *) llast(cxt->rtables));
	return rte->rtekind == RTE_RELATION && rte->relid == cxt->profile_relid &&
		strcmp(get_attname(rte->relid, var->varattno, false), "contact_id") == 0;
}

/* The argument given for parameter n (from 0) of a call, or NULL */
static Node *
func_arg(FuncExpr *fexpr, int n)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, fexpr->args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (IsA(arg, NamedArgExpr))
		{
			if (((NamedArgExpr *) arg)->argnumber == n)
				return (Node *) ((NamedArgExpr *) arg)->arg;
		}
		else if (i == n)
			return arg;
		i++;
	}
	return NULL;
}

/* Classify a call of one of crm's per-contact helpers */
static void
classify_function(AnalyzeContext *cxt, FuncExpr *fexpr)
{
	if (fexpr->funcid == cxt->activity_count_fn || fexpr->funcid == cxt->activity_count_text_fn)
	{
		/* a window before now */
		if (func_arg(fexpr, 2) != NULL)
			cxt->time_dependent = true;
		/* another contact's activities */
		if (!is_own_contact_id(cxt, func_arg(fexpr, 0)))
			cxt->population_dependent = true;
	}
	else if (fexpr->funcid == cxt->in_segment_fn)
	{
		Node	   *arg = func_arg(fexpr, 1);
		char	   *used;

		/* another contact's membership */
		if (!is_own_contact_id(cxt, func_arg(fexpr, 0)))
			cxt->population_dependent = true;
		if (arg == NULL || !IsA(arg, Const) || ((Const *) arg)->consttype != TEXTOID)
			PREDICATE_ERROR(cxt, arg ? exprLocation(arg) : fexpr->location, ERRCODE_INVALID_PARAMETER_VALUE,
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
	Oid			nsp;

	if (rte->rtekind != RTE_RELATION)
		return;
	nsp = get_rel_namespace(rte->relid);
	reject_temporary(cxt, nsp, "tables");
	if (nsp == cxt->crm_nsp && name_in(get_rel_name(rte->relid), tracked_tables))
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
		cxt->location = -1;
		foreach(lc, q->rtable)
			classify_rte(cxt, (RangeTblEntry *) lfirst(lc));
		cxt->rtables = lcons(q->rtable, cxt->rtables);
		result = query_tree_walker(q, analyze_walker, (void *) cxt, 0);
		cxt->rtables = list_delete_first(cxt->rtables);
		return result;
	}
	cxt->location = exprLocation(node);
	(void) check_functions_in_node(node, classify_funcid, cxt);
	switch (nodeTag(node))
	{
		case T_FuncExpr:
			check_type(cxt, ((FuncExpr *) node)->funcresulttype);
			classify_function(cxt, (FuncExpr *) node);
			break;
		case T_Const:
			check_type(cxt, ((Const *) node)->consttype);
			break;
		case T_RelabelType:
			check_type(cxt, ((RelabelType *) node)->resulttype);
			break;
		case T_CoerceViaIO:
			{
				CoerceViaIO *io = (CoerceViaIO *) node;
				Oid			infunc;
				Oid			ioparam;

				check_type(cxt, io->resulttype);
				/* input at run time may read 'now' (dates, and arrays or ranges of them) */
				getTypeInputInfo(io->resulttype, &infunc, &ioparam);
				if (func_volatile(infunc) != PROVOLATILE_IMMUTABLE)
					cxt->time_dependent = true;
			}
			break;
		case T_ArrayCoerceExpr:
			check_type(cxt, ((ArrayCoerceExpr *) node)->resulttype);
			break;
		case T_CoerceToDomain:
			/* a domain's checks may call anything */
			check_type(cxt, ((CoerceToDomain *) node)->resulttype);
			cxt->time_dependent = true;
			break;
		case T_RowExpr:
			check_type(cxt, ((RowExpr *) node)->row_typeid);
			break;
		case T_SQLValueFunction:
			{
				SQLValueFunction *svf = (SQLValueFunction *) node;

				/* the clock, or the session's user (the others are the owner's) */
				if (svf->op <= SVFOP_LOCALTIMESTAMP_N || svf->op == SVFOP_SESSION_USER)
					cxt->time_dependent = true;
			}
			break;
		case T_Var:
			classify_var(cxt, (Var *) node);
			break;
		default:
			break;
	}
	return expression_tree_walker(node, analyze_walker, (void *) cxt);
}

/* Parse and analyse the wrapped predicate */
static Query *
parse_wrapped(AnalyzeContext *cxt)
{
	List	   *raw = raw_parser(cxt->sql, RAW_PARSE_DEFAULT);

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a segment predicate must be one boolean expression"),
				 internalerrquery(cxt->predicate)));
	return parse_analyze_fixedparams(linitial_node(RawStmt, raw), cxt->sql, NULL, 0, NULL);
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
				 internalerrquery(cxt->predicate)));
}

/*
 * Look up one of crm's helper functions; with missing_ok, InvalidOid when it
 * is not there (a 0.1.0 schema not yet updated lacks the newer ones)
 */
static Oid
extension_function(const char *name, int nargs, Oid *argtypes, bool missing_ok)
{
	return LookupFuncName(list_make2(makeString("crm"), makeString(pstrdup(name))),
						  nargs, argtypes, missing_ok);
}

/*
 * Validate a predicate and classify it, as the current user and under the
 * predicate search path: fills cxt, whose sql is then the query to run.
 */
static void
check_predicate(AnalyzeContext *cxt, const char *predicate, const char *self)
{
	Oid			count_args[] = {INT8OID, TEXTOID, INTERVALOID};
	Oid			count_text_args[] = {INT8OID, TEXTOID, TEXTOID};
	Oid			stage_text_args[] = {InvalidOid, TEXTOID};
	Oid			in_segment_args[] = {INT8OID, TEXTOID};
	Query	   *query;

	cxt->predicate = predicate;
	cxt->self = self;
	cxt->crm_nsp = get_namespace_oid("crm", false);
	cxt->crm_ext = get_extension_oid("crm", false);
	cxt->profile_relid = get_relname_relid("contact_profile", cxt->crm_nsp);
	if (!OidIsValid(cxt->profile_relid))
		elog(ERROR, "view crm.contact_profile is missing");
	cxt->in_segment_fn = extension_function("in_segment", 2, in_segment_args, false);
	cxt->activity_count_fn = extension_function("activity_count", 3, count_args, false);
	cxt->activity_count_text_fn = extension_function("activity_count", 3, count_text_args, true);
	stage_text_args[0] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("stage"),
										 ObjectIdGetDatum(cxt->crm_nsp));
	cxt->stage_text_fns[0] = extension_function("stage_eq_text", 2, stage_text_args, true);
	cxt->stage_text_fns[1] = extension_function("stage_ne_text", 2, stage_text_args, true);
	cxt->my_roles_fn = extension_function("my_roles", 0, NULL, false);

	WITH_PREDICATE_POSITIONS(cxt, 0, lex_tokens(cxt));
	cxt->sql = psprintf("%s%s%s", PREDICATE_PREFIX, predicate, PREDICATE_SUFFIX);
	WITH_PREDICATE_POSITIONS(cxt, PREFIX_LEN, query = parse_wrapped(cxt));
	check_shape(cxt, query);
	/* the top level reads the profile itself: only its quals are the user's */
	cxt->rtables = list_make1(query->rtable);
	analyze_walker(query->jointree->quals, cxt);
}

/* Pin the path a predicate's names resolve under until the nest level ends */
static int
pin_predicate_path(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", PREDICATE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("standard_conforming_strings", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
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
	int			pinned;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm.segment_analyze must return a composite type");
	pinned = pin_predicate_path();
	check_predicate(&cxt, text_to_cstring(PG_GETARG_TEXT_PP(0)),
					PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	AtEOXact_GUC(true, pinned);

	values[0] = BoolGetDatum(cxt.time_dependent);
	values[1] = BoolGetDatum(cxt.population_dependent);
	names = palloc(sizeof(Datum) * (list_length(cxt.uses) + 1));
	foreach(lc, cxt.uses)
		names[i++] = CStringGetTextDatum((char *) lfirst(lc));
	values[2] = PointerGetDatum(construct_array(names, i, TEXTOID, -1, false, TYPALIGN_INT));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* What an evaluation is about, for the error context */
typedef struct EvaluationContext
{
	const char *segment;
	const char *owner;
} EvaluationContext;

static void
evaluation_error_context(void *arg)
{
	EvaluationContext *ev = (EvaluationContext *) arg;

	errcontext("predicate of segment \"%s\", evaluated as its owner %s", ev->segment, ev->owner);
}

/*
 * crm.segment_evaluate(segment_id, candidates): run a segment's stored
 * predicate as its owner.  candidates are the contacts changed since the
 * last refresh (NULL: unknown).  Everyone is evaluated when candidates is
 * NULL, the predicate is time dependent, or it is population dependent and
 * something changed; otherwise only the candidates, or nobody when there are
 * none.  Returns (everyone, time_dependent, population_dependent, members):
 * the classification as validated now, and the contacts that satisfy the
 * predicate among those evaluated.
 */
PG_FUNCTION_INFO_V1(crm_segment_evaluate);
Datum
crm_segment_evaluate(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	AnalyzeContext cxt = {0};
	EvaluationContext evcxt;
	ErrorContextCallback errcallback;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int64		segment_id;
	Datum		arg;
	Datum		cand = (Datum) 0;
	int			ncand = -1;		/* unknown: everyone */
	Oid			argtype;
	Oid			owner;
	char	   *owner_name;
	char	   *predicate;
	Oid			save_userid;
	int			save_sec_context;
	int			pinned;
	int			as_owner;
	bool		isnull;
	bool		everyone;
	Datum	   *members = NULL;
	int			nmembers = 0;
	uint64		i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm.segment_evaluate must return a composite type");
	segment_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);

		cand = PointerGetDatum(a);
		ncand = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}

	/* only who may refresh (or alter) segments learns what a predicate selects */
	if (pg_class_aclcheck(get_relname_relid("segment", get_namespace_oid("crm", false)),
						  GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to evaluate segment %lld", (long long) segment_id),
				 errdetail("Evaluating a segment needs UPDATE on crm.segment, as refreshing it does.")));

	pinned = spi_connect_pinned();
	argtype = INT8OID;
	arg = Int64GetDatum(segment_id);
	if (SPI_execute_with_args("SELECT name, predicate, owner FROM crm.segment WHERE segment_id = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.segment");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment %lld does not exist", (long long) segment_id)));
	evcxt.segment = MemoryContextStrdup(outer, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	predicate = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (predicate == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("segment \"%s\" is a static list", evcxt.segment),
				 errhint("Only dynamic segments have a predicate to evaluate.")));
	predicate = MemoryContextStrdup(outer, predicate);
	owner_name = isnull ? NULL : GetUserNameFromId(owner, true);
	if (owner_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of segment \"%s\" no longer exists", evcxt.segment),
				 errdetail("A predicate is evaluated with its owner's privileges."),
				 errhint("Write the predicate again with crm.alter_segment: its writer becomes the owner.")));
	evcxt.owner = quote_identifier(owner_name);

	/* from here on, the owner's privileges alone, and no role changes */
	errcallback.callback = evaluation_error_context;
	errcallback.arg = &evcxt;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	as_owner = pin_predicate_path();

	check_predicate(&cxt, predicate, evcxt.segment);
	everyone = ncand < 0 || cxt.time_dependent || (cxt.population_dependent && ncand > 0);
	if (everyone || ncand > 0)
	{
		/* the validated query itself, or as a subquery over the candidates */
		const char *sql = everyone ? cxt.sql :
			psprintf("SELECT f.contact_id FROM (%s) f WHERE f.contact_id OPERATOR(pg_catalog.=) ANY ($1)", cxt.sql);

		argtype = INT8ARRAYOID;
		if (SPI_execute_with_args(sql, everyone ? 0 : 1, &argtype, &cand, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not evaluate the predicate of segment \"%s\"", evcxt.segment);
		members = MemoryContextAlloc(outer, sizeof(Datum) * (SPI_processed + 1));
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				members[nmembers++] = id;
		}
	}

	AtEOXact_GUC(false, as_owner);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	error_context_stack = errcallback.previous;
	spi_finish_pinned(pinned);

	values[0] = BoolGetDatum(everyone);
	values[1] = BoolGetDatum(cxt.time_dependent);
	values[2] = BoolGetDatum(cxt.population_dependent);
	values[3] = PointerGetDatum(construct_array(members, nmembers, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
