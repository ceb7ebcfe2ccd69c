-- pgTAP: lead scoring and lifecycle behaviour as an application sees it
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(29);

SELECT has_table('crm', t, 'table crm.' || t) FROM unnest(ARRAY['score_group', 'scoring_rule', 'fit_rule',
	'score_ledger', 'score_event', 'lifecycle_policy', 'stage_history']) t;
SELECT has_function('crm', f, 'function crm.' || f) FROM unnest(ARRAY['score', 'explain_score', 'grade',
	'rescore', 'set_stage', 'detect_churn', 'funnel', 'stage_conversion']) f;
SELECT enum_has_labels('crm', 'stage', ARRAY['subscriber', 'lead', 'mql', 'sql', 'opportunity', 'customer',
	'evangelist', 'disqualified', 'churned'], 'stages in funnel order, exits last');

INSERT INTO crm.scoring_rule (name, activity_kind, points) VALUES ('tap visit', 'tap_visit', 60);
INSERT INTO crm.fit_rule (name, condition, points) VALUES ('tap fit', '$.country == "NL"', 25);
INSERT INTO crm.contact (contact_id, email, country, lead_source) VALUES (7001, 'tap1@tap.example', 'NL', 'form');
SELECT is(crm.score(7001, 'fit'), 25::float8, 'fit scored on insert');
INSERT INTO crm.activity (contact_id, kind) VALUES (7001, 'tap_visit');
SELECT is(crm.score(7001), 60::float8, 'engagement scored on insert, same transaction');
SELECT is((SELECT stage::text FROM crm.contact WHERE contact_id = 7001), 'mql', 'lead promoted to mql by the trigger');
-- crm's own moves skip the refit unless a fit rule may read the stage: this one does
INSERT INTO crm.fit_rule (name, condition, points) VALUES ('tap stage', '$.stage == "mql"', 3);
INSERT INTO crm.contact (contact_id, email, country, lead_source) VALUES (7002, 'tap2@tap.example', 'NL', 'form');
INSERT INTO crm.activity (contact_id, kind) VALUES (7002, 'tap_visit');
SELECT is((SELECT stage::text FROM crm.contact WHERE contact_id = 7002), 'mql', 'second lead promoted to mql');
SELECT is(crm.score(7002, 'fit'), 28::float8, 'a fit rule on the stage is re-evaluated after crm''s own move');
DELETE FROM crm.fit_rule WHERE name = 'tap stage';
SELECT throws_ok($$UPDATE crm.contact SET stage = 'lead' WHERE contact_id = 7001$$, 'CR001', NULL,
	'backward move refused with CR001');
SELECT throws_ok($$SELECT crm.set_stage(7001, 'lead', NULL, true)$$, '22023', NULL, 'forced move needs a reason');
SELECT throws_ok($$SELECT crm.set_stage(-7, 'lead', 'x')$$, 'P0002', NULL, 'missing contact: P0002');
SELECT throws_ok($$INSERT INTO crm.scoring_rule (name, points, "window") VALUES ('x', 1, '-1 day')$$, '22023', NULL,
	'negative window: 22023');
SELECT throws_ok($$INSERT INTO crm.scoring_rule (name, condition, points) VALUES ('x', '$.a ==', 1)$$, '42601', NULL,
	'invalid jsonpath rejected when saved');
SELECT throws_ok($$INSERT INTO crm.lifecycle_policy (mql_min_engagement, sql_min_engagement) VALUES (50, 10)$$, '23514', NULL,
	'SQL threshold below MQL: 23514');
-- the stage facts (src/lifecycle.c): both orders, every stage
SELECT results_eq($$SELECT s::text, crm.stage_rank(s) FROM unnest(enum_range(NULL::crm.stage)) s ORDER BY 2$$,
	$$VALUES ('disqualified', 0::real), ('subscriber', 1), ('lead', 2), ('mql', 3), ('sql', 4),
			 ('opportunity', 5), ('churned', 5.5), ('customer', 6), ('evangelist', 7)$$,
	'merge rank of every stage: churned between opportunity and customer, disqualified lowest');
SELECT results_eq($$SELECT a::text || '>' || b::text FROM unnest(enum_range(NULL::crm.stage)) a,
						   unnest(enum_range(NULL::crm.stage)) b
					WHERE crm.stage_move_is_forward(a, b) ORDER BY a, b$$,
	$$VALUES ('subscriber>lead'), ('subscriber>mql'), ('subscriber>sql'), ('subscriber>opportunity'),
			 ('subscriber>customer'), ('subscriber>evangelist'), ('subscriber>disqualified'),
			 ('lead>mql'), ('lead>sql'), ('lead>opportunity'), ('lead>customer'), ('lead>evangelist'),
			 ('lead>disqualified'),
			 ('mql>sql'), ('mql>opportunity'), ('mql>customer'), ('mql>evangelist'), ('mql>disqualified'),
			 ('sql>opportunity'), ('sql>customer'), ('sql>evangelist'), ('sql>disqualified'),
			 ('opportunity>customer'), ('opportunity>evangelist'), ('opportunity>disqualified'),
			 ('customer>evangelist'), ('customer>churned'), ('evangelist>churned')$$,
	'forward moves by the funnel order: up the funnel, to disqualified before customer, to churned from customer on');
SELECT * FROM finish();
ROLLBACK;
