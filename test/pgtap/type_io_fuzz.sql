-- pgTAP: a seeded fuzz of the text input of every crm type.  The types come
-- from the catalog (base, enum, domain, range and stand-alone composite types
-- in schema crm; array types and the row types of tables and views are
-- built from these), so a type added later is fuzzed too, and the test fails
-- until it has seed literals here.  Each input is a mutation of a seed
-- literal (Unicode edge cases, punctuation, odd numbers, case changes,
-- splices, long repeats).  Properties: an accepted value's output is
-- accepted again and prints the same; a refusal is a class 22 SQLSTATE
-- (data exception); the backend survives.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public;

CREATE TEMP TABLE fuzz_type AS
SELECT t.oid::regtype AS typ, t.typname::text AS typname,
	   -- regclass and regprocedure fields fail name lookups with their own
	   -- classes (42P01, 3F000, 42883, 0A000 for db.schema.name): allowed in
	   -- such composites only
	   CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type f ON f.oid = a.atttypid
						  WHERE a.attrelid = t.typrelid AND a.attnum > 0
							AND f.typnamespace = 'pg_catalog'::regnamespace AND f.typname LIKE 'reg%')
			THEN ARRAY['22', '42', '3F', '0A'] ELSE ARRAY['22'] END AS classes
  FROM pg_type t
 WHERE t.typnamespace = 'crm'::regnamespace
   AND t.typtype IN ('b', 'e', 'd', 'r', 'm', 'c')
   AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid)
   AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c');

-- Valid literals to start from, several per type
CREATE TEMP TABLE fuzz_seed (typname text, literal text);
INSERT INTO fuzz_seed VALUES
	('email', 'ann@example.com'), ('email', '  Foo.Bar@EXAMPLE.com '), ('email', 'JOSÉ@Bücher.DE'),
	('email', 'ivan@пример.рф'), ('email', 'Straße@x.de'), ('email', E'jose\u0301@x.es'),
	('email', 'user@نامه‌ای.com'), ('email', E'user@\u0915\u094D\u200D\u0937.in'),
	('email', 'a+tag@sub.example.co.uk'), ('email', 'x@xn--bcher-kva.de'), ('email', E'party\U0001F389@example.com'),
	('email', 'o''neil{1}@my-host.example'), ('email', 'ΣΊΣΥΦΟΣ@ελληνικά.gr'), ('email', 'İstanbul@ǰ.tr'),
	('rfm', '5-4-3'), ('rfm', '543'), ('rfm', ' 1-1-1 '), ('rfm', '5-5-5'), ('rfm', '213'),
	('stage', 'subscriber'), ('stage', 'lead'), ('stage', 'mql'), ('stage', 'sql'), ('stage', 'opportunity'),
	('stage', 'customer'), ('stage', 'evangelist'), ('stage', 'disqualified'), ('stage', 'churned'),
	('bgnbd', 'bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'),
	('bgnbd', 'bgnbd(r=1,alpha=2,a=3,b=4,ll=-9582.4,n=2357,se_r=0.0125,se_alpha=0.3,se_a=0.1,se_b=0.75,converged=false)'),
	('bgnbd', ' BGNBD ( b = 4 , a = 3 , alpha = 2 , r = 1e-3 ) '),
	('mbgnbd', 'mbgnbd(r=1,alpha=2,a=3,b=4,ll=-5,n=7)'), ('mbgnbd', 'mbgnbd(r=0.5,alpha=10,a=1.5,b=9,se_a=1e300)'),
	('paretonbd', 'paretonbd(r=0.55,alpha=10.58,s=0.61,beta=11.67)'),
	('paretonbd', 'paretonbd(r=0.55,alpha=10.58,s=0.61,beta=11.67,ll=NaN,n=0,converged=true)'),
	('gammagamma', 'gammagamma(p=6,q=3,gamma=15)'), ('gammagamma', 'gammagamma(p=6.25,q=3.74,gamma=15.45,ll=-4000,n=946,se_q=0.1)'),
	('bgbb', 'bgbb(alpha=1,beta=2,gamma=3,delta=4)'), ('bgbb', 'bgbb(alpha=1.2,beta=0.75,gamma=0.66,delta=2.78,ll=-33225.6,n=11104)'),
	('btyd_rfm', '(3,10.5,20,12.50)'), ('btyd_rfm', '(0,0,0,)'), ('btyd_rfm', '( 12 , 1e3 ,"2000.25", -0.001)'),
	('logit', '("{(intercept),tenure}","{NULL,NULL}","{0.2,-0.03}","{1.6,0.003}",{},-2209.76,5283,1395,5253,6,t,0)'),
	('logit', '({(intercept)},{NULL},{-1.02},{0.03},"{phone_service,\"x=No internet service\"}",,,,,,,)'),
	('logit', '("{(intercept),contract,contract}","{NULL,\"One year\",\"Two year\"}","{0.1,-0.7,-1.5}",,{},-1e3,10,3,2,100,f,0.5)'),
	('nbayes', '("{contract,contract}","{\"One year\",\"Two year\"}","{10,2}","{30,50}",1395,3888,1)'),
	('nbayes', '({},{},{},{},1,1,0.5)'),
	('nbayes', '("{a,b}","{x,\"y z\"}","{1.5,0}","{0,2.25}",1e2,,)'),
	('contact_reference', '(crm.activity,contact_id,move,)'),
	('contact_reference', '("crm.order",contact_id,"move, then merge",crm.stage_rank(crm.stage))');

-- Pieces the mutations insert: invisible and format characters (inside and
-- outside the BMP), the IDNA full stops, Unicode white space, characters that
-- case folding or NFC change, right-to-left letters, odd numbers, syntax
CREATE TEMP TABLE fuzz_atom AS
SELECT ARRAY[E'\u00A0', E'\u00AD', E'\u200B', E'\u200C', E'\u200D', E'\u2028', E'\u3000', E'\uFEFF',
			 E'\U000E0041', E'\U000E0001', E'\U0001F600', E'\U0010FFFF', E'\uE000', E'\uFFFD', E'\u0085',
			 E'\u3002', E'\uFF0E', E'\uFF61', E'\uFF20', E'\u0301', E'\u0345', E'\u034F', E'\uFE0F',
			 E'\u0130', E'\u0131', E'\u00DF', E'\u1E9E', E'\uFB03', E'\u01F0', E'\u03A3', E'\u03C2', E'\u1FB3',
			 E'\u2126', E'\u212B', E'\u1100\u1161', E'\u00BD', E'\u0663', E'\u0627', E'\u05D0', E'\u0915\u094D',
			 E'\t', E'\n', E'\r', ' ', '.', '..', '@', '-', '--', '_', ',', '(', ')', '=', '"', '\', '''',
			 '{', '}', '[', ']', '+', 'xn--', 'XN--', 'a', 'Z', '0', '9', '6', 'e', 'nan', 'NaN', 'inf',
			 '-Infinity', '-0', '1e308', '1e309', '1e-320', '0x1p3', '00001', '99999999999999999999',
			 'true', 'false', 'converged', 'se_', 'll=', 'n=', 'crm.', 'pg_catalog.'] AS atoms,
	   ARRAY['0', '-0', '1', '-1', '0.5', '1e-3', '1e-320', '1e308', '1e309', 'nan', 'inf', '-inf',
			 '0x10', '7.', '.5', '1e', '+3', '99999999999999999999999', '2147483648'] AS numbers;

-- One input: a seed literal after one to three random edits
CREATE FUNCTION pg_temp.fuzz_mutate(s text, seeds text[], atoms text[], numbers text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	pos int;
	a text;
BEGIN
	FOR k IN 1..1 + floor(random() * 3)::int LOOP
		pos := floor(random() * (length(s) + 1))::int;
		a := atoms[1 + floor(random() * array_length(atoms, 1))::int];
		CASE floor(random() * 11)::int
			WHEN 0 THEN s := left(s, pos) || a || substr(s, pos + 1);
			WHEN 1 THEN s := CASE WHEN random() < 0.5 THEN a || s ELSE s || a END;
			WHEN 2 THEN s := left(s, pos) || substr(s, pos + 2 + floor(random() * 3)::int);
			WHEN 3 THEN s := left(s, pos) || a || substr(s, pos + 2);
			WHEN 4 THEN s := left(s, pos) || substr(s, pos + 1, 1 + floor(random() * 8)::int) || substr(s, pos + 1);
			WHEN 5 THEN s := CASE WHEN random() < 0.5 THEN upper(s) ELSE lower(s) END;
			WHEN 6 THEN s := left(s, pos);
			WHEN 7 THEN s := left(s, pos) || substr(seeds[1 + floor(random() * array_length(seeds, 1))::int],
													1 + floor(random() * 20)::int);
			-- long: up to 3,000 copies of a piece, or up to 30 of the input
			WHEN 8 THEN s := left(s, pos) || CASE WHEN random() < 0.2 THEN repeat(s, (30 ^ random())::int)
												 ELSE repeat(a, (3000 ^ random())::int) END || substr(s, pos + 1);
			WHEN 9 THEN s := a || s || a;
			ELSE s := regexp_replace(s, '[0-9]+(\.[0-9]+)?', numbers[1 + floor(random() * array_length(numbers, 1))::int],
									 1, 1 + floor(random() * 4)::int);
		END CASE;
	END LOOP;
	RETURN s;
END $$;

-- Feed one input to a type: was it accepted, and (problem) what broke, if anything
CREATE FUNCTION pg_temp.fuzz_check(typ regtype, s text, classes text[], OUT accepted boolean, OUT problem text)
LANGUAGE plpgsql AS $$
DECLARE
	out1 text;
	out2 text;
	st text;
BEGIN
	BEGIN
		EXECUTE format('SELECT %L::%s::text', s, typ) INTO out1;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
		accepted := false;
		IF NOT left(st, 2) = ANY (classes) THEN
			problem := format('%s refused %L with %s (not class 22): %s', typ, left(s, 200), st, SQLERRM);
		END IF;
		RETURN;
	END;
	accepted := true;
	BEGIN
		EXECUTE format('SELECT %L::%s::text', out1, typ) INTO out2;
	EXCEPTION WHEN OTHERS THEN
		problem := format('%s accepted %L as %L but refuses that output: %s', typ, left(s, 200), left(out1, 200), SQLERRM);
		RETURN;
	END;
	IF out2 IS DISTINCT FROM out1 THEN
		problem := format('%s: %L prints %L, which reads back as %L', typ, left(s, 200), left(out1, 200), left(out2, 200));
	END IF;
END $$;

SELECT plan(2 + 2 * (SELECT count(*)::int FROM fuzz_type));

SELECT is(ARRAY(SELECT typname FROM fuzz_type EXCEPT SELECT typname FROM fuzz_seed ORDER BY 1), '{}',
		  'every crm type with text input has seed literals in this test');
SELECT is(ARRAY(SELECT typname FROM fuzz_seed EXCEPT SELECT typname FROM fuzz_type ORDER BY 1), '{}',
		  'every seed names a crm type');

-- The same inputs on every run (a fixed seed, a fixed order): 2,000 per type
CREATE TEMP TABLE fuzz_result (typname text, accepted boolean, problem text);
DO $$
DECLARE
	t record;
	f record;
	s text;
	c record;
BEGIN
	PERFORM setseed(0.1103);
	SELECT * INTO f FROM fuzz_atom;
	FOR t IN SELECT ft.*, ARRAY(SELECT literal FROM fuzz_seed s WHERE s.typname = ft.typname ORDER BY literal) AS seeds
			   FROM fuzz_type ft ORDER BY typname LOOP
		CONTINUE WHEN cardinality(t.seeds) = 0;
		FOR i IN 1..2000 LOOP
			s := t.seeds[1 + i % cardinality(t.seeds)];
			IF i > cardinality(t.seeds) THEN	-- each seed once as it is
				s := pg_temp.fuzz_mutate(s, t.seeds, f.atoms, f.numbers);
			END IF;
			c := pg_temp.fuzz_check(t.typ, s, t.classes);
			INSERT INTO fuzz_result VALUES (t.typname, c.accepted, c.problem);
		END LOOP;
	END LOOP;
END $$;

SELECT is(ARRAY(SELECT problem FROM fuzz_result r WHERE r.typname = t.typname AND problem IS NOT NULL LIMIT 5), '{}',
		  format('crm.%s: of %s inputs, every accepted one reads back unchanged and every refusal is %s',
				 typname, (SELECT count(*) FROM fuzz_result r WHERE r.typname = t.typname),
				 CASE WHEN classes = ARRAY['22'] THEN 'class 22' ELSE 'class 22 (or a name lookup error)' END))
  FROM fuzz_type t ORDER BY typname;
-- the generator reaches both sides of each parser
SELECT cmp_ok((SELECT least(count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE NOT accepted))::int
				 FROM fuzz_result r WHERE r.typname = t.typname), '>=', 50,
			  format('crm.%s: at least 50 inputs accepted and 50 refused', typname))
  FROM fuzz_type t ORDER BY typname;

SELECT * FROM finish();
ROLLBACK;
