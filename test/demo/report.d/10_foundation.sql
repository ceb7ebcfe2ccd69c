\echo '== What is in the CRM: rows per table'
SELECT t AS "table", n AS "rows" FROM (
	SELECT 'company' t, count(*) n FROM crm.company UNION ALL
	SELECT 'contact', count(*) FROM crm.contact UNION ALL
	SELECT 'consent', count(*) FROM crm.consent UNION ALL
	SELECT 'activity', count(*) FROM crm.activity UNION ALL
	SELECT 'deal', count(*) FROM crm.deal UNION ALL
	SELECT 'product', count(*) FROM crm.product UNION ALL
	SELECT 'order', count(*) FROM crm."order" UNION ALL
	SELECT 'order_line', count(*) FROM crm.order_line UNION ALL
	SELECT 'task', count(*) FROM crm.task) s;

\echo '== Contacts per country (a sample of names in their own script)'
SELECT country, count(*) AS contacts,
	   (array_agg(first_name || ' ' || last_name ORDER BY contact_id))[1] AS example_name,
	   (array_agg(email ORDER BY contact_id))[1] AS example_email
  FROM crm.contact WHERE email::text NOT LIKE '%@cdnow.example'
 GROUP BY country ORDER BY contacts DESC;

\echo '== Contacts per lead source and current stage'
SELECT lead_source, stage, count(*) FROM crm.contact GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 12;

\echo '== Who may receive marketing e-mail now (consent ledger)'
SELECT count(*) FILTER (WHERE crm.can_contact(contact_id, 'email')) AS email_ok,
	   count(*) FILTER (WHERE NOT crm.can_contact(contact_id, 'email')) AS email_not_ok
  FROM crm.contact WHERE email::text NOT LIKE '%@cdnow.example';

\echo '== CDNOW orders per month (real data)'
SELECT to_char(date_trunc('month', ordered_at), 'YYYY-MM') AS month, count(*) AS orders,
	   round(sum(total)) AS revenue
  FROM crm."order" WHERE external_ref = 'cdnow' GROUP BY 1 ORDER BY 1;
