-- Lead scoring: rules, triggers, exact decay, once, windows, caps, explain
SET search_path = crm, public;
SET timezone = 'UTC';
-- a scoring sandbox: its own groups, so other tests' rules do not interfere
INSERT INTO score_group (score_group, half_life, cap, grade_labels, grade_thresholds)
VALUES ('t_engage', '7 days', NULL, '{1,2,3,4}', '{30,10,5}'),
	   ('t_capped', NULL, 25, '{}', '{}'),
	   ('t_fit', NULL, NULL, '{A,B,C,D}', '{50,30,10}');
INSERT INTO scoring_rule (name, score_group, activity_kind, condition, points) VALUES
	('t pricing page', 't_engage', 'page_view', '$.url == "/pricing"', 10),
	('t any page', 't_engage', 'page_view', NULL, 1),
	('t unsubscribe', 't_engage', 'unsubscribe', NULL, -15),
	('t big download', 't_engage', 'download', '$ ? (@.pages > 20)', 7),
	('t capped clicks', 't_capped', 'email_click', NULL, 10);
INSERT INTO scoring_rule (name, score_group, activity_kind, points, once) VALUES
	('t webinar once', 't_engage', 'webinar', 25, true);
INSERT INTO scoring_rule (name, score_group, activity_kind, points, "window") VALUES
	('t recent demo', 't_engage', 'demo_request', 5, '30 days');
INSERT INTO fit_rule (name, score_group, condition, points) VALUES
	('t in Germany', 't_fit', '$.country == "DE"', 20),
	('t big company', 't_fit', '$.company.employees > 100', 30),
	('t CTO', 't_fit', '$.job_title like_regex "^C.O$"', 15);
INSERT INTO company (name, employees) VALUES ('T Big GmbH', 500) RETURNING company_id AS big \gset
INSERT INTO contact (email, country, company_id, job_title)
VALUES ('score1@t.example', 'DE', :big, 'CTO') RETURNING contact_id AS c1 \gset
INSERT INTO contact (email, country) VALUES ('score2@t.example', 'FR') RETURNING contact_id AS c2 \gset

-- fit is scored when the contact is inserted
SELECT score(:c1, 't_fit') AS fit1, score(:c2, 't_fit') AS fit2;
-- ... and when its company changes
UPDATE company SET employees = 50 WHERE company_id = :big;
SELECT score(:c1, 't_fit') AS fit_after_company_shrank;
UPDATE contact SET country = 'AT' WHERE contact_id = :c1;
SELECT score(:c1, 't_fit') AS fit_after_move;
UPDATE contact SET country = 'DE' WHERE contact_id = :c1;
UPDATE company SET employees = 500 WHERE company_id = :big;

-- engagement: a multi-row INSERT is scored in the same statement
INSERT INTO activity (contact_id, kind, occurred_at, properties) VALUES
	(:c1, 'page_view', '2026-01-01', '{"url": "/pricing"}'),
	(:c1, 'page_view', '2026-01-10', '{"url": "/"}'),
	(:c1, 'webinar', '2026-01-05', '{}'),
	(:c1, 'webinar', '2026-01-06', '{}'),
	(:c1, 'download', '2026-01-07', '{"pages": 35}'),
	(:c1, 'download', '2026-01-08', '{"pages": 3}'),
	(:c1, 'demo_request', '2025-11-01', '{}'),
	(:c1, 'demo_request', '2026-01-20', '{}');
-- by hand, at 2026-01-24 with a 7-day half-life:
--   pricing 10 * 2^(-23/7) + any page (2^(-23/7) + 2^(-14/7)) + webinar once 25 * 2^(-19/7)
--   + big download 7 * 2^(-17/7) + demo in window 5 * 2^(-4/7)
SELECT round(score(:c1, 't_engage', '2026-01-24')::numeric, 9) AS engagement,
	   round((10 * 2^(-23/7.0) + 2^(-23/7.0) + 2^(-14/7.0) + 25 * 2^(-19/7.0) + 7 * 2^(-17/7.0) + 5 * 2^(-4/7.0))::numeric, 9) AS by_hand;
SELECT rule, score_group, matches, raw_points, round(contribution::numeric, 6) AS contribution
  FROM explain_score(:c1, '2026-01-24') WHERE score_group LIKE 't\_%' ORDER BY score_group, rule;
-- the rows add up to the score
SELECT abs(sum(contribution) - score(:c1, 't_engage', '2026-01-24')) < 1e-12 AS adds_up
  FROM explain_score(:c1, '2026-01-24') WHERE score_group = 't_engage';
-- a past time is answered from the history (the demo in November is in its window then)
SELECT round(score(:c1, 't_engage', '2025-11-15')::numeric, 9) AS past,
	   round((5 * 2^(-14/7.0))::numeric, 9) AS by_hand;
-- the window: 60 days later the demo request no longer counts
SELECT round(score(:c1, 't_engage', '2026-03-24')::numeric, 9) - round((10 * 2^(-82/7.0) + 2^(-82/7.0) + 2^(-73/7.0) + 25 * 2^(-78/7.0) + 7 * 2^(-76/7.0))::numeric, 9) AS window_diff;
-- negative points
INSERT INTO activity (contact_id, kind, occurred_at) VALUES (:c2, 'unsubscribe', '2026-01-24');
SELECT score(:c2, 't_engage', '2026-01-24') AS negative;
-- caps hold: 4 clicks of 10 points in a group capped at 25
INSERT INTO activity (contact_id, kind, occurred_at) SELECT :c2, 'email_click', '2026-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 4) i;
SELECT score(:c2, 't_capped', '2026-02-01') AS capped;
SELECT rule, contribution FROM explain_score(:c2, '2026-02-01') WHERE score_group = 't_capped' ORDER BY rule;
-- grades
SELECT grade_of('t_fit', score(:c1, 't_fit')) AS fit_grade, grade_of('t_engage', score(:c1, 't_engage', '2026-01-24')) AS engagement_grade;
SELECT grade_of('fit', 70) AS a, grade_of('fit', 45) AS b, grade_of('fit', 0) AS d, grade_of('engagement', 100) AS one, grade_of('engagement', 19.9) AS four;

-- exactness: 3000 activities arriving in random order, late ones included,
-- INSERT ... SELECT and COPY, must equal a rescore from the full history
CREATE TEMP TABLE arrivals AS
SELECT (ARRAY[:c1, :c2])[1 + (i % 2)] AS contact_id,
	   (ARRAY['page_view', 'webinar', 'download', 'demo_request', 'email_click'])[1 + (i * 7 % 5)] AS kind,
	   timestamptz '2025-06-01' + ((hashint4(i) & 65535) * interval '4 minutes') AS occurred_at,
	   CASE WHEN i % 3 = 0 THEN '{"url": "/pricing", "pages": 40}'::jsonb ELSE '{"url": "/"}'::jsonb END AS properties
  FROM generate_series(1, 3000) i;
INSERT INTO activity (contact_id, kind, occurred_at, properties)
SELECT contact_id, kind, occurred_at, properties FROM arrivals ORDER BY hashint8(contact_id) # hashtext(kind) LIMIT 1500;
COPY (SELECT contact_id, kind, occurred_at, properties FROM arrivals ORDER BY hashint8(contact_id) # hashtext(kind) OFFSET 1500)
  TO '/tmp/crm_scoring_copy.csv' (FORMAT csv);
COPY activity (contact_id, kind, occurred_at, properties) FROM '/tmp/crm_scoring_copy.csv' (FORMAT csv);
CREATE TEMP TABLE incremental AS
SELECT c, g, score(c, g, '2026-06-01') AS s FROM unnest(ARRAY[:c1, :c2]) c, unnest(ARRAY['t_engage', 't_capped', 't_fit']) g;
SELECT rescore(ARRAY[:c1, :c2]) AS rescored;
SELECT i.g, max(abs(i.s - score(i.c, i.g, '2026-06-01')) / greatest(abs(i.s), 1e-300)) < 1e-9 AS equal_to_rescore
  FROM incremental i GROUP BY i.g ORDER BY i.g;
-- the once rule still counts once
SELECT matches > 1 AS many_webinars, raw_points FROM explain_score(:c1, '2026-06-01') WHERE rule = 't webinar once';

-- deleting a rule takes its points with it
DELETE FROM scoring_rule WHERE name = 't capped clicks';
SELECT score(:c2, 't_capped', '2026-02-01') AS after_delete;

-- bad input: rejected when the rule is saved
\set VERBOSITY terse
INSERT INTO scoring_rule (name, condition, points) VALUES ('bad', '$.url ==', 1);
INSERT INTO scoring_rule (name, score_group, points) VALUES ('bad', 'no_such_group', 1);
INSERT INTO scoring_rule (name, points) VALUES ('bad', 'NaN');
INSERT INTO scoring_rule (name, points) VALUES ('bad', 'Infinity');
INSERT INTO scoring_rule (name, points, "window") VALUES ('bad', 1, '-1 day');
INSERT INTO scoring_rule (name, activity_kind, points) VALUES ('bad', 'Page View', 1);
INSERT INTO fit_rule (name, condition, points) VALUES ('bad', 'not a path', 1);
UPDATE score_group SET half_life = '-7 days' WHERE score_group = 't_engage';
UPDATE score_group SET grade_thresholds = '{10,30,50}' WHERE score_group = 't_fit';
UPDATE score_group SET grade_thresholds = '{10}' WHERE score_group = 't_fit';
SELECT score(:c1, 'no_such_group');
SELECT score(:c1, 't_engage', 'infinity');
INSERT INTO activity (contact_id, kind) VALUES (-1, 'page_view');
\set VERBOSITY default
SELECT score(NULL, 't_engage') AS null_is_null, score(-1, 't_engage') AS unknown_contact_is_zero;

-- the ledger and windowed events are derived rows without a foreign key:
-- deleting a windowed rule or a contact removes them (statement triggers),
-- and privacy's merge and row-level security still find them
SELECT count(*) > 0 AS has_events FROM score_event e JOIN scoring_rule r USING (rule_id) WHERE r.name = 't recent demo';
DELETE FROM scoring_rule WHERE name = 't recent demo';
SELECT count(*) AS events_of_deleted_rule FROM score_event e WHERE NOT EXISTS (SELECT 1 FROM scoring_rule r WHERE r.rule_id = e.rule_id);
INSERT INTO contact (email) VALUES ('score3@t.example') RETURNING contact_id AS c3 \gset
INSERT INTO activity (contact_id, kind, occurred_at) VALUES (:c3, 'webinar', '2026-01-10');
SELECT count(*) AS ledger_rows_before FROM score_ledger WHERE contact_id = :c3;
DELETE FROM activity WHERE contact_id = :c3;
DELETE FROM contact WHERE contact_id = :c3;
SELECT count(*) AS ledger_rows_after FROM score_ledger WHERE contact_id = :c3;
SELECT table_name, action FROM contact_references() WHERE table_name IN ('score_ledger'::regclass, 'score_event'::regclass) ORDER BY 1;

-- clean up the sandbox rules so later tests see the built-in state
DELETE FROM scoring_rule WHERE score_group LIKE 't\_%';
DELETE FROM fit_rule WHERE score_group LIKE 't\_%';
