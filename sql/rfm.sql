-- The crm.rfm type: literals, accessors, ordering, hashing, named segments
SET search_path = crm, public;
\set VERBOSITY default
SELECT '5-4-3'::crm.rfm AS dashed, '543'::crm.rfm AS compact, ' 1-1-1 '::crm.rfm AS spaces,
	   crm.rfm(2, 3, 4) AS made;
SELECT crm.r(c), crm.f(c), crm.m(c) FROM (SELECT '5-4-3'::crm.rfm c) s;
-- bad literals: 22P02
SELECT '6-1-1'::crm.rfm;
SELECT '5-4'::crm.rfm;
SELECT ''::crm.rfm;
SELECT '0-1-1'::crm.rfm;
SELECT '5-43'::crm.rfm;
SELECT '54-3'::crm.rfm;
SELECT '5431'::crm.rfm;
SELECT 'abc'::crm.rfm;
SELECT '5--4-3'::crm.rfm;
-- out-of-range scores in the constructor: 22023
SELECT crm.rfm(6, 1, 1);
SELECT crm.rfm(1, 0, 1);
SELECT crm.rfm(NULL, 1, 1) IS NULL AS null_in_null_out;
-- ordering: by r, then f, then m
SELECT c FROM unnest('{3-1-1,1-5-5,3-1-2,5-1-1,1-1-1,3-2-1}'::crm.rfm[]) c ORDER BY c;
SELECT '5-4-3'::crm.rfm = '543' AS eq, '5-4-3'::crm.rfm <> '5-4-2' AS ne,
	   '1-5-5'::crm.rfm < '2-1-1' AS lt, '2-1-1'::crm.rfm >= '2-1-1' AS ge;
-- btree and hash operator classes: index, hash join, hash aggregate
CREATE TABLE rfm_t (c crm.rfm);
INSERT INTO rfm_t SELECT crm.rfm(1 + i % 5, 1 + (i / 5) % 5, 1 + (i / 25) % 5) FROM generate_series(0, 249) i;
CREATE INDEX ON rfm_t (c);
CREATE INDEX rfm_t_hash ON rfm_t USING hash (c);
SET enable_seqscan = off;
SELECT count(*) FROM rfm_t WHERE c = '3-3-3';
SELECT count(*) FROM rfm_t WHERE c BETWEEN '5-5-4' AND '5-5-5';
RESET enable_seqscan;
SET enable_sort = off;
SELECT count(*) AS distinct_cells FROM (SELECT c FROM rfm_t GROUP BY c) s;
RESET enable_sort;
SELECT count(*) AS hash_joined FROM rfm_t a JOIN (SELECT DISTINCT c FROM rfm_t) b USING (c);
DROP TABLE rfm_t;
-- binary form: four bytes, 0x00RRFFMM
SELECT crm.rfm_send('4-2-5');
-- the segment map: R by FM = round((F + M) / 2)
SELECT r, string_agg(crm.rfm_segment(crm.rfm(r, fm, fm)), ' | ' ORDER BY fm) AS "FM 1 .. 5"
  FROM generate_series(5, 1, -1) r, generate_series(1, 5) fm GROUP BY r ORDER BY r DESC;
-- every named segment is reachable, and every one of the 125 cells has one
SELECT crm.rfm_segment(crm.rfm(r, f, m)) AS segment, count(*) AS cells
  FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
 GROUP BY 1 ORDER BY 1;
SELECT crm.rfm_segment('5-1-2') AS fm_rounds_up, crm.rfm_segment('5-1-1') AS new, crm.rfm_segment('1-5-5') AS cant_lose;
