-- Loaded by test/t/citus.sh before crm.distribute() on the coordinator (and
-- into the one-node database): crm.distribute() copies these rows to the
-- shards.  Rows written after it are the cases of workload.sql.
UPDATE crm.score_group SET half_life = NULL WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (rule_id, name, activity_kind, condition, points) VALUES
	(1001, 'visited pricing', 'page_view', '$.url == "/pricing"', 30),
	(1002, 'page view', 'page_view', NULL, 1),
	(1003, 'requested a demo', 'form_submit', '$.form == "demo_request"', 60);
INSERT INTO crm.lifecycle_policy (mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit)
VALUES (40, NULL, 90, NULL);
INSERT INTO crm.contact (contact_id, email, first_name, last_name, city, country, lead_source) VALUES
	(1, 'Ann.Lee@Example.COM', 'Ann', 'Lee', 'Berlin', 'DE', 'form'),
	(2, 'bob@example.org', 'Bob', 'Stone', 'Madrid', 'ES', 'newsletter'),
	(3, 'carla@bücher.de', 'Carla', 'Diaz', 'Berlin', 'DE', 'webinar'),
	(4, 'dan@example.net', 'Dan', 'Wu', 'Austin', 'US', 'ads'),
	(5, 'ann.lee@example.org', 'Ann', 'Lee', 'Berlin', 'DE', 'event'),
	(6, 'eve@example.com', 'Eve', 'Ng', 'Paris', 'FR', 'contest');
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(1, 1, 'page_view', '2026-06-01 10:00+00', '{"url": "/pricing"}'),
	(1, 2, 'page_view', '2026-06-02 10:00+00', '{"url": "/pricing"}'),
	(2, 4, 'page_view', '2026-06-01 11:00+00', '{"url": "/blog/x"}'),
	(5, 8, 'page_view', '2026-06-06 09:00+00', '{"url": "/"}');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items) VALUES
	(1, 1, '2026-01-10 10:00+00', 'paid', 120.00, 2),
	(1, 2, '2026-03-15 10:00+00', 'paid', 80.50, 1),
	(2, 4, '2026-02-01 10:00+00', 'paid', 15.00, 1);
INSERT INTO crm.deal (contact_id, deal_id, title, amount, status, closed_at) VALUES
	(1, 1, 'Ann: platform', 5000, 'won', '2026-05-01 00:00+00');
