\echo '== Lead scoring: engagement score distribution (demo contacts)'
WITH s AS (SELECT e.score FROM crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact
												WHERE email::text NOT LIKE '%@cdnow.example'), 'engagement') e)
SELECT CASE WHEN score < 0 THEN '< 0' WHEN score < 10 THEN '0-10' WHEN score < 20 THEN '10-20'
			WHEN score < 40 THEN '20-40' WHEN score < 80 THEN '40-80' ELSE '80+' END AS engagement,
	   count(*) AS contacts
  FROM s GROUP BY 1 ORDER BY min(score);

\echo '== Grades (fit A-D x engagement 1-4)'
WITH ids AS (SELECT array_agg(contact_id) AS a FROM crm.contact WHERE email::text NOT LIKE '%@cdnow.example'),
	 g AS (SELECT crm.grade_of('fit', f.score) || crm.grade_of('engagement', e.score) AS grade
			 FROM ids, crm.scores_of(ids.a, 'fit') f JOIN crm.scores_of(ids.a, 'engagement') e USING (contact_id))
SELECT grade, count(*) FROM g GROUP BY 1 ORDER BY 1;

\echo '== Top 10 contacts by engagement, with grade'
WITH e AS (SELECT * FROM crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), 'engagement')
			ORDER BY score DESC, contact_id LIMIT 10)
SELECT c.contact_id, c.first_name || ' ' || c.last_name AS name, c.country, round(e.score::numeric, 1) AS engagement,
	   round(crm.score(c.contact_id, 'fit')::numeric) AS fit, crm.grade(c.contact_id) AS grade, c.stage
  FROM e JOIN crm.contact c USING (contact_id) ORDER BY e.score DESC, c.contact_id;

\echo '== Why the top contact scores what it does (crm.explain_score)'
SELECT rule, score_group, matches, raw_points, round(contribution::numeric, 2) AS contribution
  FROM crm.explain_score((SELECT contact_id FROM crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), 'engagement')
						   ORDER BY score DESC, contact_id LIMIT 1))
 ORDER BY score_group, contribution DESC;
