-- Segmentation and campaigns on the demo data: RFM segments of the real
-- CDNOW customers, a dynamic segment refreshed incrementally, a value
-- segment, a seasonal selection and a campaign's targets with and without
-- the consent filter.
\set ON_ERROR_STOP 1
SET search_path = crm, public;

\echo '== RFM segments of the CDNOW customers (orders 1997-01 .. 1998-06, as of 1998-07-01)'
SELECT segment, count(*) AS customers, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
	   round(avg(recency_days)) AS avg_recency_days, round(avg(frequency), 1) AS avg_orders,
	   round(avg(monetary), 2) AS avg_spend
  FROM crm.rfm_scores('1998-07-01', '1997-01-01')
 GROUP BY segment ORDER BY avg(crm.r(rfm) * 10 + crm.f(rfm) + crm.m(rfm)) DESC;

\echo '== CDNOW customers per R (rows) and F (columns) score'
SELECT 'R=' || crm.r(rfm) AS r,
	   count(*) FILTER (WHERE crm.f(rfm) = 1) AS "F=1", count(*) FILTER (WHERE crm.f(rfm) = 2) AS "F=2",
	   count(*) FILTER (WHERE crm.f(rfm) = 3) AS "F=3", count(*) FILTER (WHERE crm.f(rfm) = 4) AS "F=4",
	   count(*) FILTER (WHERE crm.f(rfm) = 5) AS "F=5"
  FROM crm.rfm_scores('1998-07-01', '1997-01-01') GROUP BY 1 ORDER BY 1 DESC;

\echo '== Seasonal: CDNOW customers who bought in the 3 weeks before Mother''s Day 1997 (US: 2nd Sunday of May)'
SELECT crm.nth_weekday(1997, 5, 0, 2) AS mothers_day,
	   count(*) AS customers
  FROM crm.contact_profile
 WHERE crm.bought_between(contact_id, crm.nth_weekday(1997, 5, 0, 2) - 21, crm.nth_weekday(1997, 5, 0, 2));

\echo '== Dynamic segment: engaged German leads (3+ e-mail opens, not yet customers)'
SELECT crm.create_segment('demo engaged de',
	$$country = 'DE' AND stage IN ('lead', 'mql', 'sql') AND crm.activity_count(contact_id, 'email_open') >= 3$$) AS segment_id;
\timing on
SELECT 'first refresh' AS refresh, * FROM crm.refresh_segment('demo engaged de');
\timing off
-- a day of activity: 300 contacts open three more e-mails, 100 German leads move to Spain
INSERT INTO crm.activity (contact_id, kind, occurred_at)
SELECT c.contact_id, 'email_open', now() - n * interval '1 hour'
  FROM (SELECT contact_id FROM crm.contact WHERE country = 'DE' ORDER BY hashint8(contact_id) LIMIT 300) c,
	   generate_series(1, 3) n;
UPDATE crm.contact SET country = 'ES'
 WHERE contact_id IN (SELECT m.contact_id FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
					   WHERE s.name = 'demo engaged de' ORDER BY hashint8(m.contact_id) LIMIT 100);
\timing on
SELECT 'after the changes' AS refresh, * FROM crm.refresh_segment('demo engaged de');
\timing off
SELECT name, last_full AS full_scan, last_evaluated AS contacts_evaluated, last_entered AS entered,
	   last_exited AS exited, (SELECT count(*) FROM crm.segment_member m WHERE m.segment_id = s.segment_id) AS members
  FROM crm.segment s WHERE name = 'demo engaged de';

\echo '== Value segment: the best 20% of customers by lifetime value (value_rank >= 0.8) and their share of revenue'
SELECT count(*) FILTER (WHERE value_rank >= 0.8) AS top_20_pct_customers,
	   count(*) AS customers,
	   round(100 * sum(lifetime_value) FILTER (WHERE value_rank >= 0.8) / sum(lifetime_value), 1) AS pct_of_revenue
  FROM crm.contact_profile WHERE order_count > 0;

\echo '== Campaign on the segment, e-mail channel, 10% hold-out: targets with and without the consent filter'
SELECT crm.create_campaign('demo spring mailing', 'demo engaged de', 'email', now(), now() + interval '30 days', 250, 0.1) AS campaign_id \gset
SELECT (SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'demo engaged de') AS segment_members,
	   (SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
		 WHERE s.name = 'demo engaged de' AND crm.can_contact(m.contact_id, 'email')) AS may_be_emailed,
	   (SELECT count(*) FROM crm.campaign_targets(:campaign_id)) AS targets_after_holdout;
SELECT count(*) FILTER (WHERE NOT holdout) AS targeted, count(*) FILTER (WHERE holdout) AS held_out
  FROM crm.campaign_target WHERE campaign_id = :campaign_id;

-- leave the database as it was
DELETE FROM crm.campaign WHERE name = 'demo spring mailing';
SELECT crm.drop_segment('demo engaged de');
