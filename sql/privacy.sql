-- Privacy: lossless merge, consent merge, the right to be forgotten
SET search_path = crm, public;
\set VERBOSITY default
\set SHOW_CONTEXT never
-- (explicit ids, so messages do not depend on other test files)
INSERT INTO crm.contact (contact_id, email, first_name, last_name, phone, city, country, stage, lead_source, attrs)
VALUES (7100001, 'keep@merge.example', 'Ann', 'Lee', NULL, 'Boston', 'US', 'lead', 'form', '{"a": 1}'),
	   (7100002, 'drop@merge.example', 'Anne', NULL, '+1 617 555 0101', 'Cambridge', NULL, 'customer', 'import', '{"a": 2, "b": 3}');
SELECT contact_id AS keep FROM crm.contact WHERE email = 'keep@merge.example' \gset
SELECT contact_id AS drop FROM crm.contact WHERE email = 'drop@merge.example' \gset
INSERT INTO crm.activity (contact_id, kind, properties)
SELECT c, k, '{"url": "/x"}' FROM (VALUES (:keep, 'page_view'), (:drop, 'page_view'), (:drop, 'email_open'), (:drop, 'form_submit')) v(c, k);
INSERT INTO crm."order" (contact_id, order_id, total, items) VALUES (:drop, 900001, 30, 2), (:keep, 900002, 10, 1);
INSERT INTO crm.product (sku, name, price) VALUES ('MERGE-1', 'Mug', 10);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, unit_price)
SELECT :drop, 900001, l, product_id, 15 FROM crm.product, generate_series(1, 2) l WHERE sku = 'MERGE-1';
INSERT INTO crm.deal (contact_id, deal_id, title, amount) VALUES (:drop, 900001, 'Deal for Anne', 500);
INSERT INTO crm.task (contact_id, deal_id, title, note) VALUES (:drop, 900001, 'Call Anne', 'prefers mornings');
-- consent: keep granted e-mail and sms; drop revoked e-mail later and granted phone
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, source, note) VALUES
	(:keep, 'email', 'granted', now() - interval '10 days', 'form', NULL),
	(:keep, 'sms', 'granted', now() - interval '10 days', 'form', NULL),
	(:drop, 'email', 'granted', now() - interval '20 days', 'import', NULL),
	(:drop, 'email', 'revoked', now() - interval '5 days', 'unsubscribe link', 'clicked unsubscribe'),
	(:drop, 'phone', 'granted', now() - interval '3 days', 'call', 'said yes on the phone');
-- a feature added later: a per-contact summary row (unique per contact)
-- and a ledger with a composite key; merge finds them through their keys
CREATE TABLE public.contact_score (contact_id bigint PRIMARY KEY REFERENCES crm.contact ON DELETE CASCADE, points int);
CREATE TABLE public.score_event (contact_id bigint REFERENCES crm.contact, event_id int, points int,
								 PRIMARY KEY (contact_id, event_id));
INSERT INTO public.contact_score VALUES (:keep, 5), (:drop, 7);
INSERT INTO public.score_event VALUES (:keep, 1, 5), (:drop, 1, 4), (:drop, 2, 3);
-- (other features add their own tables; this test looks at these)
CREATE TEMP TABLE known (t regclass);
INSERT INTO known VALUES ('crm.activity'), ('crm.consent'), ('crm.deal'), ('crm."order"'), ('crm.order_line'),
	('crm.task'), ('public.contact_score'), ('public.score_event'), ('crm.contact'), ('crm.merge_log');
SELECT table_name, contact_column, action FROM crm.contact_references()
 WHERE table_name IN (SELECT t FROM known) ORDER BY table_name::text;

-- the row count of every table that references contacts, for keep + drop
CREATE TEMP VIEW counts AS
SELECT 'activity' t, count(*) n FROM crm.activity WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'order', count(*) FROM crm."order" WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'order_line', count(*) FROM crm.order_line WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'deal', count(*) FROM crm.deal WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'task', count(*) FROM crm.task WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'consent', count(*) FROM crm.consent WHERE contact_id IN (:keep, :drop) UNION ALL
SELECT 'score_event', count(*) FROM public.score_event WHERE contact_id IN (:keep, :drop);
CREATE TEMP TABLE before AS SELECT * FROM counts;

-- dry run: what would move, and nothing changes
SELECT * FROM crm.merge_contacts(:keep, :drop, dry_run => true) WHERE item::regclass IN (SELECT t FROM known);
SELECT count(*) AS drop_still_there FROM crm.contact WHERE contact_id = :drop;
SELECT count(*) AS no_log_yet FROM crm.merge_log WHERE dropped_id = :drop;

-- the merge: the clash on contact_score (both have a row) keeps keep's row
-- and logs drop's; score_event (1) clashes, (2) moves
SELECT * FROM crm.merge_contacts(:keep, :drop) WHERE item::regclass IN (SELECT t FROM known);

-- nothing lost: per table, rows after + rows logged in merge_log.conflicts
-- (key clashes) = rows before, and none left on drop
SELECT b.t, b.n AS before, a.n AS after, l.n AS logged, a.n + l.n = b.n AS adds_up,
	   (SELECT count(*) FROM crm.contact WHERE contact_id = :drop) AS drop_rows
  FROM before b JOIN counts a USING (t)
 CROSS JOIN LATERAL (SELECT count(*) AS n FROM crm.merge_log m, jsonb_array_elements(m.conflicts) x
					  WHERE m.dropped_id = :drop AND x ? ('public.' || b.t)) l
 ORDER BY b.t;
SELECT (SELECT count(*) FROM crm.activity WHERE contact_id = :keep) AS activities_on_keep,
	   (SELECT sum(total) FROM crm."order" WHERE contact_id = :keep) AS revenue_on_keep,
	   (SELECT count(*) FROM crm.order_line WHERE contact_id = :keep AND order_id = 900001) AS lines_followed_order,
	   (SELECT count(*) FROM crm.task WHERE contact_id = :keep AND deal_id = 900001) AS task_followed_deal;
SELECT * FROM public.contact_score WHERE contact_id IN (:keep, :drop);
SELECT event_id, points FROM public.score_event WHERE contact_id = :keep ORDER BY event_id;

-- keep: empty fields filled, most advanced stage, attrs joined (keep wins)
SELECT first_name, last_name, phone, city, country, stage, lead_source, attrs
  FROM crm.contact WHERE contact_id = :keep;

-- consent: the whole history is on keep (copies marked merged_from), and
-- per channel the most restrictive current state won: e-mail revoked
SELECT channel, status, source, note, merged_from = :drop AS copied, is_current
  FROM crm.consent_history(:keep) ORDER BY channel, recorded_at, consent_id;
SELECT crm.can_contact(:keep, 'email') AS email, crm.can_contact(:keep, 'sms') AS sms,
	   crm.can_contact(:keep, 'phone') AS phone;

-- the log explains it
SELECT kept_id = :keep AS kept, dropped_row ->> 'email' AS dropped_email, dropped_row ->> 'stage' AS dropped_stage,
	   kept_row ->> 'stage' AS kept_stage_before,
	   (SELECT string_agg(x ->> 'action', ', ' ORDER BY x ->> 'table', x ->> 'action') FROM jsonb_array_elements(moved) x
		 WHERE (x ->> 'table') = 'public.score_event') AS score_event_moves,
	   jsonb_array_length(conflicts) AS conflict_rows,
	   conflicts -> 0 -> 'public.contact_score' ->> 'points' AS logged_score, merged_by = current_user AS by_me
  FROM crm.merge_log WHERE dropped_id = :drop;
-- ... with the images of the consent rows it let go, and the merge is over
SELECT in_progress, string_agg((x ->> 'channel') || ' ' || (x ->> 'status') || ' ' || (x ->> 'source'), ', '
							   ORDER BY x ->> 'recorded_at') AS consent_images,
	   bool_and((x ->> 'contact_id')::bigint = :drop) AS of_drop
  FROM crm.merge_log, jsonb_array_elements(moved_consent) x WHERE dropped_id = :drop GROUP BY in_progress;

-- an application still holding the old id: its insert lands on keep
INSERT INTO crm.activity (contact_id, kind) VALUES (:drop, 'page_view') RETURNING contact_id = :keep AS redirected;
SELECT crm.merged_into(:drop) = :keep AS merged_into, crm.merged_into(-1) AS unknown;
-- ... also for a role without UPDATE on contacts, which may not lock the
-- contact row (tasks: no lifecycle trigger on them needs UPDATE either)
CREATE ROLE crm_regress_tasks NOLOGIN;
GRANT USAGE ON SCHEMA crm TO crm_regress_tasks;
GRANT SELECT ON crm.contact, crm.merge_log TO crm_regress_tasks;
GRANT SELECT, INSERT ON crm.task TO crm_regress_tasks;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_regress_tasks;
SET ROLE crm_regress_tasks;
INSERT INTO crm.task (contact_id, title) VALUES (:drop, 'call back') RETURNING contact_id = :keep AS redirected_without_update;
RESET ROLE;
DELETE FROM crm.task WHERE contact_id = :keep AND title = 'call back';
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM crm_regress_tasks;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA crm FROM crm_regress_tasks;
REVOKE ALL ON SCHEMA crm FROM crm_regress_tasks;
DROP ROLE crm_regress_tasks;

-- within one transaction the trigger locks a contact once, for the first row
-- aimed at it; a merge in that same transaction makes it look again, so a
-- row for the merged-away contact after the merge is still redirected
INSERT INTO crm.contact (contact_id, email) VALUES (7100011, 'tx-keep@merge.example'), (7100012, 'tx-drop@merge.example');
BEGIN;
INSERT INTO crm.activity (contact_id, kind) VALUES (7100012, 'page_view');
INSERT INTO crm.activity (contact_id, kind) VALUES (7100012, 'email_open');
SELECT count(*) AS merge_steps FROM crm.merge_contacts(7100011, 7100012);
INSERT INTO crm.activity (contact_id, kind) VALUES (7100012, 'page_view') RETURNING contact_id AS redirected_to;
COMMIT;
SELECT contact_id, count(*) AS activities FROM crm.activity WHERE contact_id IN (7100011, 7100012) GROUP BY 1;

-- bad input
SELECT * FROM crm.merge_contacts(:keep, :keep);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.merge_contacts(:keep, -1);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT * FROM crm.merge_contacts(:keep, :drop);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) AS null_args_no_rows FROM crm.merge_contacts(NULL, :keep);
-- an unknown id in a new row still fails the foreign key
INSERT INTO crm.activity (contact_id, kind) VALUES (-5, 'page_view');
\echo :LAST_ERROR_SQLSTATE

-- the consent ledger still refuses edits and deletes by hand, also for
-- rows copied by the merge
UPDATE crm.consent SET status = 'granted' WHERE contact_id = :keep AND channel = 'email';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.consent WHERE contact_id = :keep;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.consent SET note = NULL WHERE contact_id = :keep AND note IS NOT NULL;
\echo :LAST_ERROR_SQLSTATE

-- a merge function registered by a feature: called with (keep, drop)
INSERT INTO crm.contact (contact_id, email, first_name) VALUES (7100003, 'k2@merge.example', 'K'), (7100004, 'd2@merge.example', 'D');
SELECT contact_id AS k2 FROM crm.contact WHERE email = 'k2@merge.example' \gset
SELECT contact_id AS d2 FROM crm.contact WHERE email = 'd2@merge.example' \gset
INSERT INTO public.contact_score VALUES (:k2, 1), (:d2, 2);
CREATE FUNCTION public.merge_scores(keep bigint, drop bigint) RETURNS void LANGUAGE sql AS $$
	UPDATE public.contact_score SET points = points + (SELECT points FROM public.contact_score WHERE contact_id = drop)
	 WHERE contact_id = keep;
	DELETE FROM public.contact_score WHERE contact_id = drop;
$$;
INSERT INTO crm.merge_rule (table_name, action, merge_function)
VALUES ('public.contact_score', 'function', 'public.merge_scores(bigint, bigint)');
SELECT * FROM crm.merge_contacts(:k2, :d2) WHERE item::regclass IN (SELECT t FROM known);
SELECT points AS summed FROM public.contact_score WHERE contact_id = :k2;
INSERT INTO crm.merge_rule (table_name, action) VALUES ('public.contact_score', 'sum');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.merge_rule;

-- the right to be forgotten
INSERT INTO crm.consent (contact_id, channel, status, source, note) VALUES (:keep, 'post', 'granted', 'form', 'lives at 1 Main St');
-- a score earned from activity properties, which the erasure strips
INSERT INTO crm.score_group (score_group) VALUES ('erasure_test');
INSERT INTO crm.scoring_rule (name, score_group, condition, points) VALUES ('visited /x', 'erasure_test', '$.url == "/x"', 5);
SELECT crm.rescore(ARRAY[:keep]::bigint[]) AS rescored;
SELECT crm.score(:keep, 'erasure_test') AS score_before_erasure;
SELECT crm.forget_contact(:keep, 'erasure request, ticket 42', keep_email_hash => true) IS NOT NULL AS erased;
SELECT email::text LIKE 'erased-%@erased.invalid' AS email_token, first_name, last_name, phone, city, birth_date,
	   country, stage, do_not_contact, attrs
  FROM crm.contact WHERE contact_id = :keep;
SELECT count(*) AS activities_kept, count(*) FILTER (WHERE properties <> '{}') AS with_properties
  FROM crm.activity WHERE contact_id = :keep;
-- the score is what crm.rescore() makes of the stripped activities
SELECT crm.score(:keep, 'erasure_test') AS score_after_erasure;
SELECT crm.rescore(ARRAY[:keep]::bigint[]) AS rescored;
SELECT crm.score(:keep, 'erasure_test') AS score_after_rescore;
DELETE FROM crm.scoring_rule WHERE score_group = 'erasure_test';
DELETE FROM crm.score_group WHERE score_group = 'erasure_test';
SELECT count(*) AS orders_kept, sum(total) AS revenue_kept FROM crm."order" WHERE contact_id = :keep;
SELECT title FROM crm.deal WHERE contact_id = :keep;
SELECT count(*) AS consent_rows_kept, count(note) AS notes_left FROM crm.consent WHERE contact_id = :keep;
SELECT reason, erased_by = current_user AS by_me, email_hash IS NOT NULL AS hash_kept, details
  FROM crm.erasure_log WHERE contact_id = :keep;
SELECT dropped_row, kept_row FROM crm.merge_log WHERE kept_id = :keep;
SELECT jsonb_array_length(moved_consent) AS consent_images_left FROM crm.merge_log WHERE kept_id = :keep;
-- the address only matches again through the salted hash
SELECT crm.is_forgotten('keep@merge.example') AS forgotten, crm.is_forgotten('KEEP@Merge.Example') AS any_spelling,
	   crm.is_forgotten('someone@else.example') AS other;
SELECT count(*) AS plain_match FROM crm.contact WHERE email = 'keep@merge.example';
-- twice: a notice (its detail has the date), nothing changes
\set VERBOSITY terse
SELECT crm.forget_contact(:keep, 'again') AS second_time;
\set VERBOSITY default
SELECT count(*) AS one_record FROM crm.erasure_log WHERE contact_id = :keep;
-- bad input
SELECT crm.forget_contact(:keep, '  ');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.forget_contact(-1, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.forget_contact(:drop, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.forget_contact(NULL, 'x') AS null_is_null;
-- consent notes of a contact that is not erased stay read-only
INSERT INTO crm.consent (contact_id, channel, status, note) VALUES (:k2, 'email', 'granted', 'personal note');
UPDATE crm.consent SET note = NULL WHERE contact_id = :k2;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS no_rows FROM crm.consent_history(-1);
DROP VIEW counts;
DROP TABLE known;
DROP TABLE public.score_event, public.contact_score;
DROP FUNCTION public.merge_scores(bigint, bigint);

-- Stage history after a merge: drop's rows move to keep marked with the
-- contact they were written for (merged_from), a last row records the
-- merge, and the history ends at the contact's stage, so crm.stages_at and
-- crm.funnel agree with the contacts.  Each pair: keep created first, drop
-- later (its rows are the latest by time); one pair per path.
CREATE TEMP VIEW stage_check AS
SELECT c.contact_id, c.stage,
	   (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
		 ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1) AS last_row,
	   (SELECT s.stage FROM crm.stages_at(now()) s WHERE s.contact_id = c.contact_id) AS stage_now
  FROM crm.contact c;
CREATE TEMP VIEW history AS
SELECT h.contact_id, h.from_stage, h.to_stage, h.forced, h.merged_from, h.reason
  FROM crm.stage_history h ORDER BY h.contact_id, h.changed_at, h.history_id;
INSERT INTO crm.contact (contact_id, email, stage, created_at)
SELECT 7100200 + 2 * p - 1, 'h' || p || 'k@merge.example', k::crm.stage, '2003-01-01'::timestamptz + p * interval '1 day'
  FROM (VALUES (1, 'lead'), (2, 'subscriber'), (3, 'mql'), (4, 'lead'), (5, 'disqualified'), (6, 'churned'),
			   (7, 'customer'), (8, 'churned')) v(p, k)
UNION ALL
SELECT 7100200 + 2 * p, 'h' || p || 'd@merge.example', d::crm.stage, '2003-06-01'::timestamptz + p * interval '1 day'
  FROM (VALUES (1, 'subscriber'), (2, 'customer'), (3, 'mql'), (4, 'churned'), (5, 'subscriber'), (6, 'evangelist'),
			   (7, 'disqualified'), (8, 'lead')) v(p, d);
-- 1 keep more advanced: drop's later history row says subscriber, the
-- contact stays a lead
SELECT action FROM crm.merge_contacts(7100201, 7100202) WHERE item = 'crm.stage_history' ORDER BY action;
SELECT contact_id, stage, last_row, stage_now FROM stage_check WHERE contact_id = 7100201;
-- 2 less advanced, 3 equal, 4-8 exits on either side: leaving an exit or a
-- lead becoming churned is forced and logged as such; nothing is refused
SELECT v.k, s.stage AS keep_was, t.stage AS drop_was, m.action
  FROM (SELECT 7100200 + 2 * p - 1, 7100200 + 2 * p FROM generate_series(2, 8) p) v(k, d)
  JOIN crm.contact s ON s.contact_id = v.k JOIN crm.contact t ON t.contact_id = v.d
 CROSS JOIN LATERAL crm.merge_contacts(v.k, v.d) m
 WHERE m.item = 'crm.stage_history' AND m.action LIKE 'recorded%'
 ORDER BY v.k;
SELECT * FROM history WHERE contact_id BETWEEN 7100201 AND 7100216;
SELECT contact_id, stage, last_row, stage_now, stage = last_row AND stage = stage_now AS agree
  FROM stage_check WHERE contact_id BETWEEN 7100201 AND 7100216 ORDER BY contact_id;

-- a chain: C <- D, then A <- B, then A <- C.  Every row says whose record
-- it was written for: C's own rows and C's merge row C, D's rows still D.
INSERT INTO crm.contact (contact_id, email, stage, created_at) VALUES
	(7100221, 'chain-a@merge.example', 'lead', '2002-01-01'), (7100222, 'chain-b@merge.example', 'mql', '2002-03-01'),
	(7100223, 'chain-c@merge.example', 'subscriber', '2002-05-01'), (7100224, 'chain-d@merge.example', 'sql', '2002-07-01');
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(7100223, 7100224);
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(7100221, 7100222);
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(7100221, 7100223);
SELECT * FROM history WHERE contact_id = 7100221;
SELECT contact_id, stage, last_row, stage_now FROM stage_check WHERE contact_id = 7100221;
-- conversion follows each record's own timeline: in 2002 every record just
-- entered its stage (interleaved, A's lead would seem to move on to B's mql)
SELECT stage, entered, moved_on FROM crm.stage_conversion('2002-01-01', '2003-01-01') WHERE entered > 0;

-- a merge inside a transaction that also writes activities and an order:
-- drop is promoted before the merge, rows for drop after it are redirected
-- to keep and promote it further; the history still ends at the stage
INSERT INTO crm.contact (contact_id, email, stage, created_at) VALUES
	(7100231, 'tx-h-keep@merge.example', 'lead', '2004-01-01'), (7100232, 'tx-h-drop@merge.example', 'lead', '2004-02-01');
BEGIN;
INSERT INTO crm.activity (contact_id, kind) VALUES (7100232, 'meeting_booked');
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(7100231, 7100232);
INSERT INTO crm.activity (contact_id, kind) VALUES (7100232, 'merge_probe');
INSERT INTO crm."order" (contact_id, order_id, total) VALUES (7100232, 900231, 20);
COMMIT;
SELECT * FROM history WHERE contact_id = 7100231;
SELECT contact_id, stage, last_row, stage_now FROM stage_check WHERE contact_id = 7100231;
-- (before the commit, the check needs the clock: this transaction's rows
-- are later than its now())
BEGIN;
SELECT count(*) > 0 AS moved FROM crm.set_stage(7100231, 'evangelist', 'check inside a transaction');
SELECT count(*) AS at_now, (SELECT count(*) FROM crm.stage_history_mismatches(clock_timestamp())
							WHERE contact_id = 7100231) AS at_clock
  FROM crm.stage_history_mismatches() WHERE contact_id = 7100231;
ROLLBACK;

-- dry run: says what the history gets, writes nothing
INSERT INTO crm.contact (contact_id, email, stage) VALUES
	(7100241, 'dry-keep@merge.example', 'disqualified'), (7100242, 'dry-drop@merge.example', 'customer');
SELECT * FROM crm.merge_contacts(7100241, 7100242, dry_run => true)
 WHERE item IN ('crm.stage_history', 'crm.contact');
SELECT contact_id, count(*) AS history_rows FROM crm.stage_history WHERE contact_id IN (7100241, 7100242) GROUP BY 1 ORDER BY 1;
SELECT action FROM crm.merge_contacts(7100241, 7100242) WHERE item = 'crm.stage_history' ORDER BY action;

-- the invariant over every contact: the history explains every stage, and
-- the funnel counts what the contacts say
SELECT count(*) AS mismatches FROM crm.stage_history_mismatches();
SELECT f.stage, f.contacts, coalesce(c.n, 0) AS contacts_now
  FROM crm.funnel() f LEFT JOIN (SELECT stage, count(*) AS n FROM crm.contact GROUP BY stage) c USING (stage)
 WHERE f.contacts <> coalesce(c.n, 0);
DELETE FROM crm."order" WHERE contact_id = 7100231;
DROP VIEW stage_check, history;
