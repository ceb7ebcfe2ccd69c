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
