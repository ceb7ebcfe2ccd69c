-- crm.email: normalisation, validation, operators and index support
SET search_path = crm, public;
SELECT '  Foo.Bar@EXAMPLE.com '::crm.email AS trimmed_lowered;
SELECT 'JOSÉ@Bücher.DE'::crm.email AS idna_and_folded;
SELECT 'ivan@пример.рф'::crm.email AS cyrillic_domain;
SELECT 'Straße@x.de'::crm.email AS folded_sharp_s;
-- NFC: e + combining acute equals precomposed é
SELECT E'jose\u0301@x.es'::crm.email = 'josé@x.es'::crm.email AS nfc_equal;
SELECT 'a@EXAMPLE.com'::crm.email = 'A@example.COM'::crm.email AS case_equal;
SELECT 'a@bücher.de'::crm.email = 'a@xn--bcher-kva.de'::crm.email AS idna_equal;
SELECT 'a@x.de'::crm.email < 'b@x.de'::crm.email AS lt, 'a@x.de'::crm.email <> 'b@x.de'::crm.email AS ne;
SELECT crm.email_domain('Ann@Bücher.de'), crm.email_local('Ann@Bücher.de');
-- text functions apply after an explicit cast; there is no implicit one,
-- so without crm in search_path a comparison fails instead of comparing raw text
SELECT 'ann@example.com'::crm.email::text LIKE '%@example.com' AS like_works;
SET search_path = public;
SELECT 'ann@example.com'::crm.email = 'Ann@Example.com';
SET search_path = crm, public;
SELECT 'ann@example.com'::crm.email = 'Ann@Example.com' AS equal_with_search_path;
SELECT 'ann@example.com'::email = 'Ann@Example.com'::text::email AS text_cast;
-- binary send/receive: a round trip through COPY BINARY, and receive
-- re-validates what a client sends (here text that is not an address)
CREATE TEMP TABLE bin (e crm.email);
COPY (SELECT 'x@Bücher.org'::crm.email) TO '/tmp/crm_email_ok.bin' (FORMAT binary);
COPY bin FROM '/tmp/crm_email_ok.bin' (FORMAT binary);
COPY (SELECT 'Not An Email'::text) TO '/tmp/crm_email_bad.bin' (FORMAT binary);
COPY bin FROM '/tmp/crm_email_bad.bin' (FORMAT binary);
COPY (SELECT ' Mixed@CASE.org'::text) TO '/tmp/crm_email_case.bin' (FORMAT binary);
COPY bin FROM '/tmp/crm_email_case.bin' (FORMAT binary);
SELECT e FROM bin ORDER BY e;
-- bad input: each says what is wrong (22P02)
\set VERBOSITY default
SELECT ''::crm.email;
SELECT '   '::crm.email;
SELECT 'no-at-sign'::crm.email;
SELECT '@example.com'::crm.email;
SELECT 'ann@'::crm.email;
SELECT 'a@b@c.com'::crm.email;
SELECT 'ann smith@example.com'::crm.email;
SELECT E'ann\t@example.com'::crm.email;
SELECT '.ann@example.com'::crm.email;
SELECT 'ann..smith@example.com'::crm.email;
SELECT 'ann@-example.com'::crm.email;
SELECT 'ann@example..com'::crm.email;
SELECT 'ann@example.com.'::crm.email;
SELECT 'ann@exa_mple.com'::crm.email;
SELECT 'a"b@example.com'::crm.email;
SELECT repeat('a', 65) || '@example.com' AS addr \gset
SELECT :'addr'::crm.email;
SELECT repeat('a', 64) || '@example.com' AS ok64 \gset
SELECT length(:'ok64'::crm.email::text);
SELECT 'a@' || repeat('b', 64) || '.com' AS longlabel \gset
SELECT :'longlabel'::crm.email;
SELECT repeat('a', 60) || '@' || repeat(repeat('b', 60) || '.', 3) || 'com' AS longaddr \gset
SELECT :'longaddr'::crm.email;
SELECT repeat('x', 100000)::crm.email;
-- text to email on assignment; NULL stays NULL
CREATE TEMP TABLE t (e crm.email UNIQUE);
INSERT INTO t VALUES ('Ann@Example.com'::text), (NULL);
INSERT INTO t VALUES ('ANN@example.COM');
INSERT INTO t VALUES ('ann@xn--bcher-kva.de');
INSERT INTO t VALUES ('Ann@BÜCHER.de');
SELECT e FROM t ORDER BY e;
-- hash support: hash join and hash aggregate
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT e, count(*) FROM (SELECT e FROM t UNION ALL SELECT e FROM t) s GROUP BY e;
SELECT e, count(*) FROM (SELECT e FROM t UNION ALL SELECT e FROM t) s GROUP BY e ORDER BY e;
RESET enable_sort;
