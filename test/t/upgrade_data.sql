-- Data test/t/upgrade.sh loads at the old version, after the demo rules and
-- generate.sql: segments (dynamic and static, refreshed), merges of planted
-- duplicates, consents, a forced stage move, a churn run.  Written against
-- the SQL surface of 0.1.0, the oldest release.
\set ON_ERROR_STOP 1
SELECT crm.create_segment('upgrade de', $$country = 'DE'$$);
SELECT crm.create_segment('upgrade engaged', $$engagement_score > 20$$);
SELECT crm.create_static_segment('upgrade list');
SELECT crm.add_to_segment('upgrade list', ARRAY[1, 2, 3]::bigint[]);
UPDATE crm.contact SET country = 'DE' WHERE contact_id IN (4, 5);
SELECT count(*) FROM crm.refresh_segments();
INSERT INTO crm.consent (contact_id, channel, status, source)
SELECT contact_id, 'sms', 'granted', 'upgrade test' FROM crm.contact WHERE contact_id % 7 = 0;
SELECT crm.set_stage(10, 'disqualified', 'upgrade test');
SELECT crm.detect_churn(now() + interval '2 years');
\set rate 0.02
\ir ../demo/plant_duplicates.sql
SELECT count(*) FROM (SELECT crm.merge_contacts(original, duplicate)
	FROM (SELECT * FROM public.planted_duplicate ORDER BY original LIMIT 5) p) m;
DROP TABLE public.planted_duplicate;
