-- Campaigns: targets = segment members with consent on the channel and no
-- do-not-contact flag, a recorded hold-out group, and the report.
SET search_path = crm, public;
\set VERBOSITY default
INSERT INTO crm.contact (contact_id, email, attrs)
SELECT 950000 + i, format('k%s@camp.test', i), '{"t": "camp"}' FROM generate_series(1, 40) i;
-- consent: 1-30 granted e-mail; 25-26 later revoked; 27 expired; 28 bounced;
-- 29 granted for sms only; 31-40 nothing
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until)
SELECT 950000 + i, 'email', 'granted', now() - interval '10 days',
	   CASE WHEN i = 27 THEN now() - interval '1 day' END
  FROM generate_series(1, 30) i WHERE i <> 29;
INSERT INTO crm.consent (contact_id, channel, status, recorded_at)
VALUES (950025, 'email', 'revoked', now() - interval '1 day'), (950026, 'email', 'denied', now() - interval '1 hour'),
	   (950029, 'sms', 'granted', now() - interval '1 day');
UPDATE crm.contact SET do_not_contact = 'bounced' WHERE contact_id = 950028;
SELECT crm.create_segment('camp all', $$attrs @> '{"t": "camp"}'$$) > 0 AS created;
SELECT entered FROM crm.refresh_segment('camp all');

-- a campaign without hold-out: every member who may be e-mailed now
SELECT crm.create_campaign('camp spring', 'camp all', 'email', now() - interval '1 hour', now() + interval '30 days', 100) AS spring \gset
SELECT count(*) AS targets, min(contact_id) - 950000 AS first, max(contact_id) - 950000 AS last,
	   array_agg(contact_id - 950000 ORDER BY contact_id) FILTER (WHERE contact_id > 950020) AS above_20
  FROM crm.campaign_targets(:spring);
-- the same members without the consent filter, for comparison
SELECT count(*) AS members FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'camp all';
-- on sms only contact 29 may be contacted
SELECT crm.create_campaign('camp sms', 'camp all', 'sms') AS sms \gset
SELECT contact_id - 950000 AS c, email FROM crm.campaign_targets(:sms);

-- a hold-out of 30%: deterministic, recorded, and stable across calls
SELECT crm.create_campaign('camp holdout', 'camp all', 'email', now() - interval '1 hour', NULL, 50, 0.3) AS ho \gset
SELECT count(*) AS targets FROM crm.campaign_targets(:ho);
SELECT holdout, count(*) FROM crm.campaign_target WHERE campaign_id = :ho GROUP BY holdout ORDER BY holdout;
SELECT count(*) FILTER (WHERE holdout <> crm.campaign_holdout(contact_id, campaign_id, 0.3)) AS not_by_hash
  FROM crm.campaign_target WHERE campaign_id = :ho;
SELECT count(*) AS targets_again FROM crm.campaign_targets(:ho);
SELECT count(*) AS recorded FROM crm.campaign_target WHERE campaign_id = :ho;

-- responses: orders in the window, or activities tagged with the campaign
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT t.contact_id, now() - interval '10 minutes', 40
  FROM crm.campaign_target t WHERE t.campaign_id = :ho AND NOT t.holdout AND t.contact_id % 2 = 0;
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT t.contact_id, now() - interval '10 minutes', 30
  FROM crm.campaign_target t WHERE t.campaign_id = :ho AND t.holdout AND t.contact_id % 4 = 0;
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
SELECT t.contact_id, 'email_click', now() - interval '5 minutes', jsonb_build_object('campaign_id', :ho)
  FROM crm.campaign_target t WHERE t.campaign_id = :ho AND NOT t.holdout AND t.contact_id % 2 = 1 AND t.contact_id % 3 = 0;
-- an order before the window does not count
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (950001, now() - interval '2 days', 999);
SELECT * FROM crm.campaign_report(:ho);
-- what the report says, recomputed by hand
SELECT count(*) FILTER (WHERE NOT holdout) AS targeted,
	   count(*) FILTER (WHERE NOT holdout AND (contact_id % 2 = 0 OR contact_id % 3 = 0)) AS responded,
	   count(*) FILTER (WHERE holdout) AS held_out,
	   count(*) FILTER (WHERE holdout AND contact_id % 4 = 0) AS holdout_responded,
	   40 * count(*) FILTER (WHERE NOT holdout AND contact_id % 2 = 0) AS revenue
  FROM crm.campaign_target WHERE campaign_id = :ho;
SELECT targeted, responded, revenue, cost, return_on_cost, lift IS NULL AS no_holdout FROM crm.campaign_report(:spring);

-- a merge moves the dropped contact's targets: 29 was the only sms target;
-- 1 and 2 were both targeted by the e-mail campaigns (the kept row wins)
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(950030, 950029);
SELECT contact_id - 950000 AS c, campaign_id = :sms AS sms
  FROM crm.campaign_target WHERE contact_id IN (950029, 950030) ORDER BY 1, 2;
SELECT count(*) AS targets_of_1 FROM crm.campaign_target WHERE contact_id = 950001;
SELECT count(*) > 0 AS merged FROM crm.merge_contacts(950001, 950002);
SELECT count(*) AS left_for_2, (SELECT count(*) FROM crm.campaign_target WHERE contact_id = 950001) AS targets_of_1
  FROM crm.campaign_target WHERE contact_id = 950002;
SELECT count(*) AS orphans FROM crm.campaign_target t
 WHERE NOT EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = t.contact_id);

-- bad input (terse: failing-row details hold timestamps)
\set VERBOSITY terse
SELECT crm.create_campaign('camp spring', 'camp all');
SELECT crm.create_campaign('camp x', 'no such segment');
SELECT crm.create_campaign('camp x', 'camp all', 'pigeon');
SELECT crm.create_campaign('camp x', 'camp all', 'email', now(), now() - interval '1 day');
SELECT crm.create_campaign('camp x', 'camp all', 'email', now(), NULL, -5);
SELECT crm.create_campaign('camp x', 'camp all', 'email', now(), NULL, 0, 1);
SELECT * FROM crm.campaign_targets(-1);
SELECT crm.create_campaign('camp over', 'camp all', 'email', now() - interval '2 days', now() - interval '1 day') AS over \gset
SELECT * FROM crm.campaign_targets(:over);
-- a read-only preview, for BI connections: the same contacts, nothing recorded
SELECT crm.create_campaign('camp preview', 'camp all', 'email', now() - interval '1 hour', NULL, 10, 0.3) AS pv \gset
BEGIN READ ONLY;
SELECT count(*) AS previewed FROM crm.campaign_targets_preview(:pv);
SELECT count(*) FROM crm.campaign_targets(:pv);
ROLLBACK;
SELECT count(*) AS recorded_by_preview FROM crm.campaign_target WHERE campaign_id = :pv;
SELECT (SELECT array_agg(contact_id ORDER BY contact_id) FROM crm.campaign_targets_preview(:pv))
	 = (SELECT array_agg(contact_id ORDER BY contact_id) FROM crm.campaign_targets(:pv)) AS preview_equals_targets;
SELECT crm.drop_segment('camp all');
-- clean up
DELETE FROM crm.campaign WHERE name LIKE 'camp %';
SELECT crm.drop_segment('camp all');

