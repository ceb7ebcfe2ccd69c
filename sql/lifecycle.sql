-- Lifecycle: forward-only stages, automatic promotions, history, funnel
SET search_path = crm, public;
SET timezone = 'UTC';
-- a policy and rules of this test's own (removed at the end)
INSERT INTO score_group (score_group, half_life) VALUES ('lc_engage', NULL), ('lc_fit', NULL);
INSERT INTO scoring_rule (name, score_group, activity_kind, points) VALUES ('lc visit', 'lc_engage', 'lc_visit', 10);
INSERT INTO fit_rule (name, score_group, condition, points) VALUES ('lc germany', 'lc_fit', '$.country == "DE"', 30);
INSERT INTO lifecycle_policy (engagement_group, fit_group, mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit)
VALUES ('lc_engage', 'lc_fit', 30, 20, 60, 20);

-- new contacts start where their lead source says, unless given
-- (explicit ids, so messages that name a contact do not depend on other tests)
INSERT INTO contact (contact_id, email, country, lead_source, created_at) VALUES
	(9001, 'lc1@lc.example', 'DE', 'form', '2026-01-01'),
	(9002, 'lc2@lc.example', 'FR', 'newsletter', '2026-01-01'),
	(9003, 'lc3@lc.example', 'DE', 'download', '2026-01-01');
INSERT INTO contact (contact_id, email, stage, created_at) VALUES (9004, 'lc4@lc.example', 'customer', '2026-01-01');
SELECT contact_id AS c1 FROM contact WHERE email = 'lc1@lc.example' \gset
SELECT contact_id AS c2 FROM contact WHERE email = 'lc2@lc.example' \gset
SELECT contact_id AS c3 FROM contact WHERE email = 'lc3@lc.example' \gset
SELECT contact_id AS c4 FROM contact WHERE email = 'lc4@lc.example' \gset
SELECT email, stage FROM contact WHERE email::text LIKE '%@lc.example' ORDER BY email;

-- 3 visits = 30 points, fit 30: lead -> mql in the same statement
INSERT INTO activity (contact_id, kind, occurred_at) SELECT :c1, 'lc_visit', '2026-01-02'::timestamptz + i * interval '1 hour' FROM generate_series(1, 3) i;
SELECT stage FROM contact WHERE contact_id = :c1;
-- 3 more: past the SQL rule, mql -> sql
INSERT INTO activity (contact_id, kind, occurred_at) SELECT :c1, 'lc_visit', '2026-01-03'::timestamptz + i * interval '1 hour' FROM generate_series(1, 3) i;
SELECT stage FROM contact WHERE contact_id = :c1;
-- 6 visits in one statement: dated as one at a time, lead -> mql at the 3rd, -> sql at the 6th
INSERT INTO activity (contact_id, kind, occurred_at) SELECT :c3, 'lc_visit', '2026-01-03'::timestamptz + i * interval '1 hour' FROM generate_series(1, 6) i;
SELECT stage FROM contact WHERE contact_id = :c3;
-- no fit: engagement alone does not make an MQL
INSERT INTO activity (contact_id, kind, occurred_at) SELECT :c2, 'lc_visit', '2026-01-02'::timestamptz + i * interval '1 hour' FROM generate_series(1, 3) i;
SELECT stage FROM contact WHERE contact_id = :c2;
-- ... until the fit changes (a contact update re-evaluates the policy)
UPDATE contact SET country = 'DE' WHERE contact_id = :c2;
SELECT stage FROM contact WHERE contact_id = :c2;
-- a sales-acceptance activity promotes to sql whatever the score
UPDATE lifecycle_policy SET sql_acceptance_kinds = '{lc_meeting}';
INSERT INTO activity (contact_id, kind, occurred_at) VALUES (:c2, 'lc_meeting', '2026-01-04');
SELECT stage FROM contact WHERE contact_id = :c2;
-- an open deal makes an opportunity, a won deal a customer
INSERT INTO deal (contact_id, title, created_at) VALUES (:c1, 'LC deal', '2026-01-05') RETURNING deal_id AS d1 \gset
SELECT stage FROM contact WHERE contact_id = :c1;
UPDATE deal SET status = 'won', closed_at = '2026-01-06' WHERE contact_id = :c1 AND deal_id = :d1;
SELECT stage FROM contact WHERE contact_id = :c1;
-- an order makes a customer
INSERT INTO "order" (contact_id, ordered_at, total) VALUES (:c3, '2026-01-07', 99);
SELECT stage FROM contact WHERE contact_id = :c3;

-- forward-only: a plain UPDATE cannot move back, on any path
\set VERBOSITY default
UPDATE contact SET stage = 'lead' WHERE contact_id = :c1;
\set VERBOSITY terse
UPDATE contact SET stage = 'subscriber' WHERE email::text LIKE '%@lc.example';
UPDATE contact SET stage = 'churned' WHERE contact_id = :c2;
-- skipping forward is allowed and logged as one transition
UPDATE contact SET stage = 'evangelist' WHERE contact_id = :c4;
-- manual moves
SELECT set_stage(:c2, 'lead', 'talked to sales: not ready');
SELECT set_stage(:c2, 'lead', NULL, true);
SELECT set_stage(:c2, 'lead', '   ', true);
SELECT set_stage(-1, 'lead', 'no such contact');
SELECT set_stage(:c2, 'prospect', 'no such stage');
SELECT set_stage(:c2, 'lead', 'talked to sales: not ready', force => true);
SELECT set_stage(:c2, 'disqualified', 'competitor');
\set VERBOSITY default
SELECT set_stage(:c2, 'disqualified', 'again');

-- churn: customers with no order in the window; a new order revives them
SELECT detect_churn('2027-06-01') >= 3 AS churned;
SELECT email, stage FROM contact WHERE email::text LIKE '%@lc.example' ORDER BY email;
INSERT INTO "order" (contact_id, ordered_at, total) VALUES (:c3, '2027-06-02', 10);
SELECT stage FROM contact WHERE contact_id = :c3;
UPDATE lifecycle_policy SET revive_churned = false;
SELECT detect_churn('2029-01-01') >= 1 AS churned_again;
INSERT INTO "order" (contact_id, ordered_at, total) VALUES (:c3, '2029-01-02', 10);
SELECT stage FROM contact WHERE contact_id = :c3;

-- the history: exactly one row per transition, and the current stage is the last row
SELECT h.contact_id = :c1 AS c1, h.contact_id = :c2 AS c2, h.contact_id = :c3 AS c3,
	   from_stage, to_stage, reason, automatic, forced
  FROM stage_history h JOIN contact c USING (contact_id)
 WHERE c.email::text LIKE '%@lc.example' ORDER BY c.email, h.history_id;
SELECT count(*) AS contacts_whose_stage_is_not_the_last_history_row
  FROM contact c
 WHERE c.email::text LIKE '%@lc.example'
   AND c.stage IS DISTINCT FROM (SELECT h.to_stage FROM stage_history h WHERE h.contact_id = c.contact_id
								 ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1);

-- funnel at past dates comes from the history
SELECT s.stage, count(*) FROM stages_at('2026-01-01 12:00') s JOIN contact c USING (contact_id)
 WHERE c.email::text LIKE '%@lc.example' GROUP BY s.stage ORDER BY s.stage;
-- transitions are logged when they happen, so now the funnel shows the current stages
SELECT s.stage, count(*) FROM stages_at(now()) s JOIN contact c USING (contact_id)
 WHERE c.email::text LIKE '%@lc.example' GROUP BY s.stage ORDER BY s.stage;
SELECT stage, contacts FROM funnel('2000-01-01');

-- conversion over a period, from history rows in 2001 (no other test writes
-- there): 9101 lead -> mql after 10 days -> sql after 20; 9102 lead -> mql
-- after 20 days; 9103 stays a lead; 9104 lead -> disqualified after 2 days
-- (an exit: time in stage, no conversion)
INSERT INTO contact (contact_id, email) VALUES
	(9101, 'conv1@lc.example'), (9102, 'conv2@lc.example'), (9103, 'conv3@lc.example'), (9104, 'conv4@lc.example');
INSERT INTO stage_history (contact_id, from_stage, to_stage, changed_at, reason) VALUES
	(9101, NULL, 'lead', '2001-01-01', 't'), (9101, 'lead', 'mql', '2001-01-11', 't'), (9101, 'mql', 'sql', '2001-01-31', 't'),
	(9102, NULL, 'lead', '2001-01-01', 't'), (9102, 'lead', 'mql', '2001-01-21', 't'),
	(9103, NULL, 'lead', '2001-01-05', 't'),
	(9104, NULL, 'lead', '2001-01-01', 't'), (9104, 'lead', 'disqualified', '2001-01-03', 't');
-- lead: 4 entered, 2 converted; times 2, 10, 20 days: median 10, p90 18.
-- mql: 2 entered, 1 converted, only 9101 left it (20 days).
SELECT * FROM stage_conversion('2001-01-01', '2001-03-01') WHERE entered > 0;
-- a period ending before the moves: entries count, nothing moved on yet
SELECT stage, entered, moved_on FROM stage_conversion('2001-01-01', '2001-01-02') WHERE entered > 0;
DELETE FROM contact WHERE contact_id BETWEEN 9101 AND 9104;

-- a policy change applies from the next event; apply_lifecycle re-evaluates now
INSERT INTO contact (contact_id, email, country, lead_source) VALUES (9105, 'apply@lc.example', 'DE', 'form');
INSERT INTO activity (contact_id, kind) VALUES (9105, 'lc_visit');
UPDATE lifecycle_policy SET mql_min_engagement = 10;
SELECT stage AS before_apply FROM contact WHERE contact_id = 9105;
SELECT apply_lifecycle(ARRAY[9105]) AS moved;
SELECT stage AS after_apply FROM contact WHERE contact_id = 9105;
SELECT from_stage, to_stage, reason, automatic FROM stage_history WHERE contact_id = 9105 ORDER BY history_id;
SELECT apply_lifecycle(ARRAY[9105]) AS moved_again;
UPDATE lifecycle_policy SET mql_min_engagement = 30;
DELETE FROM activity WHERE contact_id = 9105;
DELETE FROM contact WHERE contact_id = 9105;

-- COPY is a path like any other: three visits promote in the same statement
INSERT INTO contact (contact_id, email, country, lead_source) VALUES (9106, 'copy@lc.example', 'DE', 'form');
COPY activity (contact_id, kind, occurred_at) FROM stdin;
9106	lc_visit	2026-02-01 10:00:00+00
9106	lc_visit	2026-02-02 10:00:00+00
9106	lc_visit	2026-02-03 10:00:00+00
\.
SELECT stage AS after_copy FROM contact WHERE contact_id = 9106;
-- the current stage of every contact is the last row of its history
SELECT count(*) AS contacts, count(*) FILTER (WHERE c.stage IS DISTINCT FROM
		(SELECT h.to_stage FROM stage_history h WHERE h.contact_id = c.contact_id
		  ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1)) AS differing
  FROM contact c WHERE c.email::text LIKE '%@lc.example';
DELETE FROM activity WHERE contact_id = 9106;
DELETE FROM contact WHERE contact_id = 9106;

-- the pipeline view
INSERT INTO deal (contact_id, title, pipeline_stage, amount, probability) VALUES
	(:c4, 'LC open 1', 'lc_proposal', 1000, 0.5), (:c4, 'LC open 2', 'lc_proposal', 3000, 0.25);
SELECT * FROM pipeline WHERE pipeline_stage = 'lc_proposal';

-- bad policy: SQL below MQL
\set VERBOSITY terse
UPDATE lifecycle_policy SET sql_min_engagement = 10;
UPDATE lifecycle_policy SET mql_min_fit = 'NaN';
INSERT INTO lifecycle_policy DEFAULT VALUES;
SELECT 'prospect'::stage;
SELECT detect_churn('infinity');
\set VERBOSITY default

DELETE FROM lifecycle_policy;
DELETE FROM scoring_rule WHERE score_group LIKE 'lc\_%';
DELETE FROM fit_rule WHERE score_group LIKE 'lc\_%';
-- identity columns continue after explicitly given ids
SELECT setval(pg_get_serial_sequence('crm.contact', 'contact_id'), greatest(9004, (SELECT max(contact_id) FROM contact))) > 0 AS ok;
