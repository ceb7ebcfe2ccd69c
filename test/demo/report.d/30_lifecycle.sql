\echo '== Lifecycle funnel now'
SELECT * FROM crm.funnel();
\echo '== Lifecycle funnel 90 days ago (from crm.stage_history)'
SELECT * FROM crm.funnel(now() - interval '90 days');
\echo '== Stage conversion over the last two years'
SELECT * FROM crm.stage_conversion(now() - interval '2 years', now() + interval '1 day');
\echo '== Lead cohorts: share at mql, sql, customer within 30 / 90 / 180 days of becoming a lead'
SELECT cohort, leads, mql_30d, mql_90d, sql_90d, sql_180d, customer_90d, customer_180d
  FROM crm.lead_cohorts WHERE cohort >= date_trunc('month', now() - interval '1 year') ORDER BY cohort;
\echo '== Automatic promotions the demo data caused'
SELECT from_stage, to_stage, reason, count(*)
  FROM crm.stage_history WHERE automatic GROUP BY 1, 2, 3 ORDER BY 4 DESC;
\echo '== Open pipeline'
SELECT * FROM crm.pipeline ORDER BY weighted_amount DESC;
