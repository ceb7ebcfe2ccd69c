-- Scoring rules and a lifecycle policy for the demo, installed before the
-- data is generated so the triggers score and promote as the rows arrive.
UPDATE crm.score_group SET half_life = '60 days' WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, condition, points, once, "window") VALUES
 ('visited pricing', 'page_view', '$.url == "/pricing"', 10, false, NULL),
 ('visited demo page', 'page_view', '$.url == "/demo"', 15, false, NULL),
 ('read the blog', 'page_view', '$.url starts with "/blog"', 2, false, NULL),
 ('job seeker', 'page_view', '$.url == "/careers"', -5, false, NULL),
 ('page view', 'page_view', NULL, 1, false, NULL),
 ('opened an e-mail', 'email_open', NULL, 1, false, NULL),
 ('clicked spring sale', 'email_click', '$.campaign == "spring_sale"', 8, false, NULL),
 ('clicked an e-mail', 'email_click', NULL, 3, false, '30 days'),
 ('requested a demo', 'form_submit', '$.form == "demo_request"', 40, true, NULL),
 ('submitted a form', 'form_submit', NULL, 10, false, NULL),
 ('downloaded the whitepaper', 'download', '$.asset == "whitepaper"', 12, true, NULL),
 ('downloaded', 'download', NULL, 5, false, NULL),
 ('long webinar', 'webinar', '$.minutes > 30', 20, false, NULL),
 ('webinar', 'webinar', NULL, 10, false, NULL),
 ('sales call', 'call', NULL, 8, false, NULL);
INSERT INTO crm.fit_rule (name, condition, points) VALUES
 ('company over 200 people', '$.company.employees > 200', 25),
 ('decision maker', '$.job_title like_regex "^(CEO|CTO|Head of Sales)$"', 25),
 ('target market', '$.country == "DE" || $.country == "US" || $.country == "ES"', 15),
 ('student', '$.job_title == "Student"', -20);
INSERT INTO crm.lifecycle_policy (mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit)
VALUES (40, 30, 80, 50);
