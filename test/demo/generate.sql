-- Synthetic CRM data, deterministic for a given seed.
--   psql -v seed=42 -v contacts=100000 -v activities=1000000 -f test/demo/generate.sql
-- Every random choice is a hash of (row number, stream, seed), so the result
-- does not depend on the plan, parallelism or what is already in the tables
-- (ids continue after the existing ones).
\if :{?seed}
\else
\set seed 42
\endif
\if :{?contacts}
\else
\set contacts 100000
\endif
\if :{?activities}
\else
\set activities 1000000
\endif
\set ON_ERROR_STOP 1

BEGIN;

-- uniform in [0, 1) from (row, stream)
SELECT format($f$CREATE FUNCTION pg_temp.rnd(i bigint, stream int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$b$ SELECT (hashint8extended(i, %s::bigint * 1000 + stream) & 2147483647)::float8 / 2147483648.0 $b$$f$,
	(:seed)::bigint) \gexec

-- pick an element of an array
CREATE FUNCTION pg_temp.pick(a anyarray, i bigint, stream int) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT a[1 + floor(pg_temp.rnd(i, stream) * array_length(a, 1))::int] $$;

-- Names by country: native spelling and the ASCII form used in the address.
CREATE TEMP TABLE names (country text, kind text, native text[], ascii text[]);
INSERT INTO names VALUES
 ('ES', 'first', '{José,María,Lucía,Andrés,Sofía,Álvaro,Inés,Raúl,Jesús,Begoña}',
				 '{jose,maria,lucia,andres,sofia,alvaro,ines,raul,jesus,begona}'),
 ('ES', 'last',	 '{Núñez,Peña,Muñoz,García,Fernández,López,Martínez,Gómez,Sánchez,Díaz}',
				 '{nunez,pena,munoz,garcia,fernandez,lopez,martinez,gomez,sanchez,diaz}'),
 ('MX', 'first', '{José,Guadalupe,Fernando,Ximena,Martín,Valentina}',
				 '{jose,guadalupe,fernando,ximena,martin,valentina}'),
 ('MX', 'last',	 '{Hernández,Pérez,Ramírez,Cruz,Ortíz,Ríos}',
				 '{hernandez,perez,ramirez,cruz,ortiz,rios}'),
 ('DE', 'first', '{Jürgen,Jörg,Björn,Käthe,Sören,Ursula,Günter,Lena}',
				 '{juergen,joerg,bjoern,kaethe,soeren,ursula,guenter,lena}'),
 ('DE', 'last',	 '{Müller,Schröder,Köhler,Weiß,Groß,Bäcker,Schmidt,Krüger}',
				 '{mueller,schroeder,koehler,weiss,gross,baecker,schmidt,krueger}'),
 ('FR', 'first', '{Zoé,Chloé,Hélène,François,Léa,Jérôme}',
				 '{zoe,chloe,helene,francois,lea,jerome}'),
 ('FR', 'last',	 '{Lefèvre,Girard,Dupré,Bérenger,Moreau,Françoise}',
				 '{lefevre,girard,dupre,berenger,moreau,francoise}'),
 ('RU', 'first', '{Иван,Мария,Дмитрий,Анна,Сергей,Ольга,Алексей,Наталья}',
				 '{ivan,maria,dmitriy,anna,sergey,olga,aleksey,natalya}'),
 ('RU', 'last',	 '{Иванов,Смирнов,Кузнецов,Попов,Соколов,Лебедев,Новиков,Морозов}',
				 '{ivanov,smirnov,kuznetsov,popov,sokolov,lebedev,novikov,morozov}'),
 ('IN', 'first', '{సాయి,లక్ష్మి,రవి,శ్రీనివాస్,అనిత,వెంకట్,ప్రియ,కిరణ్}',
				 '{sai,lakshmi,ravi,srinivas,anitha,venkat,priya,kiran}'),
 ('IN', 'last',	 '{రెడ్డి,రావు,నాయుడు,శర్మ,చౌదరి,వర్మ}',
				 '{reddy,rao,naidu,sharma,chowdary,varma}'),
 ('US', 'first', '{John,Emily,Michael,Sarah,David,Jessica,Chris,Ashley}',
				 '{john,emily,michael,sarah,david,jessica,chris,ashley}'),
 ('US', 'last',	 '{Smith,Johnson,Brown,O''Neil,Miller,Davis,Wilson,Taylor}',
				 '{smith,johnson,brown,oneil,miller,davis,wilson,taylor}'),
 ('GB', 'first', '{Oliver,Amelia,Harry,Isla,George,Ava}',
				 '{oliver,amelia,harry,isla,george,ava}'),
 ('GB', 'last',	 '{Jones,Williams,Evans,Thomas,Roberts,Hughes}',
				 '{jones,williams,evans,thomas,roberts,hughes}');

CREATE TEMP TABLE geo (country text, weight float8, cities text[], domains text[], dial text);
INSERT INTO geo VALUES
 ('ES', 0.16, '{Madrid,Barcelona,Sevilla,Málaga,Zaragoza,A Coruña}', '{correo.es,empresa.es,telefónica.example}', '+34'),
 ('MX', 0.08, '{Ciudad de México,Guadalajara,Monterrey,Puebla}', '{correo.mx,negocio.com.mx}', '+52'),
 ('DE', 0.16, '{Berlin,München,Köln,Düsseldorf,Hamburg,Nürnberg}', '{post.de,müller-mail.de,firma.de}', '+49'),
 ('FR', 0.10, '{Paris,Lyon,Orléans,Besançon,Nice}', '{courriel.fr,société.example}', '+33'),
 ('RU', 0.10, '{Москва,Санкт-Петербург,Казань,Новосибирск}', '{почта.рф,mail.ru,yandex.ru}', '+7'),
 ('IN', 0.12, '{హైదరాబాద్,విజయవాడ,విశాఖపట్నం,వరంగల్}', '{mail.in,తెలుగు.example}', '+91'),
 ('US', 0.20, '{New York,Chicago,Austin,Seattle,Boston}', '{gmail.com,outlook.com,company.com}', '+1'),
 ('GB', 0.08, '{London,Manchester,Leeds,Bristol}', '{mail.co.uk,firm.co.uk}', '+44');

-- cumulative weights to pick a country
CREATE TEMP TABLE geo_cum AS
SELECT country, cities, domains, dial,
	   sum(weight) OVER (ORDER BY country) / sum(weight) OVER () AS hi
  FROM geo;

SELECT coalesce(max(company_id), 0) AS company_base FROM crm.company \gset
SELECT coalesce(max(contact_id), 0) AS contact_base FROM crm.contact \gset
SELECT greatest(:contacts / 50, 10) AS companies \gset

-- companies: size and revenue log-normally spread
INSERT INTO crm.company (company_id, name, domain, industry, employees, annual_revenue, country, owner, created_at)
SELECT :company_base + i,
	   pg_temp.pick('{Nova,Prisma,Alba,Kraft,Sever,Vega,Orbit,Lumen,Terra,Delta}'::text[], i, 1) || ' ' ||
	   pg_temp.pick('{Systems,Logistik,Foods,Media,Solutions,Tech,Retail,Energía,Консалтинг,Health}'::text[], i, 2),
	   'co' || (:company_base + i) || '-s' || :seed || '.example',
	   pg_temp.pick('{software,retail,manufacturing,finance,health,education,logistics,media}'::text[], i, 3),
	   round(exp(2 + 4 * pg_temp.rnd(i, 4)))::int,
	   round((exp(11 + 6 * pg_temp.rnd(i, 5)))::numeric, 2),
	   (SELECT g.country FROM geo_cum g WHERE g.hi > pg_temp.rnd(i, 6) ORDER BY g.hi LIMIT 1),
	   'sales_' || (1 + floor(pg_temp.rnd(i, 7) * 5))::int,
	   timestamptz '2023-01-01' + pg_temp.rnd(i, 8) * interval '900 days'
  FROM generate_series(1, :companies) i;

-- contacts
INSERT INTO crm.contact (contact_id, email, first_name, last_name, phone, city, region, country,
						 birth_date, income_band, company_id, job_title, lead_source, owner, attrs, created_at, updated_at)
SELECT :contact_base + i,
	   -- some addresses arrive in odd case, as people type them
	   CASE WHEN pg_temp.rnd(i, 19) < 0.05 THEN upper(addr) ELSE addr END,
	   fn.native[fi], ln.native[li],
	   CASE WHEN pg_temp.rnd(i, 13) < 0.6
			THEN g.dial || ' ' || (100000000 + floor(pg_temp.rnd(i, 14) * 899999999))::bigint END,
	   pg_temp.pick(g.cities, i, 15), NULL, g.country,
	   date '1950-01-01' + floor(pg_temp.rnd(i, 16) * 20000)::int,
	   pg_temp.pick('{low,lower_middle,middle,middle,upper_middle,high}'::text[], i, 17),
	   CASE WHEN pg_temp.rnd(i, 18) < 0.7 THEN :company_base + 1 + floor(pg_temp.rnd(i, 20) * :companies)::int END,
	   pg_temp.pick('{CEO,CTO,Marketing Manager,Developer,Analyst,Buyer,Student,Consultant,Head of Sales,Engineer}'::text[], i, 21),
	   pg_temp.pick('{form,form,download,newsletter,newsletter,contest,webinar,video,ads,ads,partner,event,import}'::text[], i, 22),
	   'sales_' || (1 + floor(pg_temp.rnd(i, 23) * 5))::int,
	   jsonb_build_object('newsletter_topics', pg_temp.pick('{news,offers,product,events}'::text[], i, 24),
						  'language', lower(g.country)),
	   now() - pg_temp.rnd(i, 25) * interval '720 days', now()
  FROM generate_series(1, :contacts) i
  CROSS JOIN LATERAL (SELECT * FROM geo_cum g WHERE g.hi > pg_temp.rnd(i, 10) ORDER BY g.hi LIMIT 1) g
  JOIN names fn ON fn.country = g.country AND fn.kind = 'first'
  JOIN names ln ON ln.country = g.country AND ln.kind = 'last'
  CROSS JOIN LATERAL (SELECT 1 + floor(pg_temp.rnd(i, 11) * array_length(fn.native, 1))::int AS fi,
							 1 + floor(pg_temp.rnd(i, 12) * array_length(ln.native, 1))::int AS li) k
  CROSS JOIN LATERAL (SELECT fn.ascii[k.fi] || '.' || ln.ascii[k.li] || (:contact_base + i) || '@' ||
							 pg_temp.pick(g.domains, i, 26) AS addr) a;
SELECT setval(pg_get_serial_sequence('crm.contact', 'contact_id'), (SELECT max(contact_id) FROM crm.contact));
SELECT setval(pg_get_serial_sequence('crm.company', 'company_id'), (SELECT max(company_id) FROM crm.company));

-- consents: most grant e-mail at sign-up, some revoke later; fewer grant sms
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until, source)
SELECT c.contact_id, ch.channel,
	   CASE WHEN pg_temp.rnd(c.contact_id, 30 + ch.n) < ch.p THEN 'granted' ELSE 'denied' END,
	   c.created_at,
	   CASE WHEN ch.channel = 'profiling' THEN c.created_at + interval '2 years' END,
	   c.lead_source
  FROM crm.contact c
 CROSS JOIN (VALUES (1, 'email', 0.75), (2, 'sms', 0.25), (3, 'profiling', 0.55), (4, 'phone', 0.3)) ch(n, channel, p)
 WHERE c.contact_id > :contact_base;
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, source)
SELECT c.contact_id, 'email', 'revoked', c.created_at + pg_temp.rnd(c.contact_id, 40) * (now() - c.created_at),
	   'unsubscribe link'
  FROM crm.contact c
 WHERE c.contact_id > :contact_base AND pg_temp.rnd(c.contact_id, 41) < 0.08;
UPDATE crm.contact SET do_not_contact = CASE WHEN pg_temp.rnd(contact_id, 43) < 0.5 THEN 'bounced' ELSE 'manual' END
 WHERE contact_id > :contact_base AND pg_temp.rnd(contact_id, 42) < 0.02;

-- activities: a heavy-tailed share per contact, recent days busier, office
-- hours busier, kinds weighted like a real funnel
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
SELECT cid, kind,
	   date_trunc('day', now() - interval '1 day' - power(pg_temp.rnd(g, 51), 1.6) * interval '365 days')
		 + (8 + 11 * pg_temp.rnd(g, 52) * pg_temp.rnd(g, 53) + 4 * pg_temp.rnd(g, 54)) * interval '1 hour',
	   CASE kind
		 WHEN 'page_view' THEN jsonb_build_object('url', pg_temp.pick('{/,/pricing,/blog/crm-in-postgres,/features,/demo,/careers,/docs}'::text[], g, 55))
		 WHEN 'email_open' THEN jsonb_build_object('campaign', pg_temp.pick('{spring_sale,newsletter_42,webinar_invite,mothers_day}'::text[], g, 56))
		 WHEN 'email_click' THEN jsonb_build_object('campaign', pg_temp.pick('{spring_sale,newsletter_42,webinar_invite,mothers_day}'::text[], g, 56),
													  'url', pg_temp.pick('{/pricing,/demo,/blog/crm-in-postgres}'::text[], g, 57))
		 WHEN 'form_submit' THEN jsonb_build_object('form', pg_temp.pick('{contact_us,demo_request,newsletter}'::text[], g, 58))
		 WHEN 'download' THEN jsonb_build_object('asset', pg_temp.pick('{whitepaper,case_study,price_list}'::text[], g, 59))
		 WHEN 'webinar' THEN jsonb_build_object('minutes', floor(5 + 55 * pg_temp.rnd(g, 60))::int)
		 WHEN 'purchase' THEN jsonb_build_object('amount', round((10 + 190 * pg_temp.rnd(g, 61))::numeric, 2))
		 ELSE '{}'::jsonb END
  FROM generate_series(1, :activities) g
 CROSS JOIN LATERAL (SELECT :contact_base + 1 + floor(power(pg_temp.rnd(g, 50), 2.0) * :contacts)::bigint AS cid,
							pg_temp.pick('{page_view,page_view,page_view,page_view,page_view,page_view,page_view,page_view,page_view,email_open,email_open,email_open,email_open,email_click,email_click,form_submit,download,webinar,call,meeting_booked}'::text[], g, 62) AS kind) x;

-- products
INSERT INTO crm.product (sku, name, category, price)
SELECT 'S' || :seed || '-P' || i,
	   pg_temp.pick('{Candle,Lamp,Vase,Mug,Notebook,Scarf,Tea,Soap}'::text[], i, 70) || ' ' || i,
	   pg_temp.pick('{home,gifts,kitchen,stationery,fashion}'::text[], i, 71),
	   round((3 + 60 * pg_temp.rnd(i, 72))::numeric, 2)
  FROM generate_series(1, 50) i
ON CONFLICT (sku) DO NOTHING;

-- orders: 15% of contacts buy, 1 to 12 times, spend log-normal
CREATE TEMP TABLE new_orders AS
SELECT c.contact_id, n,
	   c.created_at + pg_temp.rnd(c.contact_id * 100 + n, 80) * (now() - c.created_at) AS ordered_at,
	   1 + floor(pg_temp.rnd(c.contact_id * 100 + n, 81) * 3)::int AS lines
  FROM crm.contact c
 CROSS JOIN LATERAL generate_series(1, 1 + floor(power(pg_temp.rnd(c.contact_id, 82), 3) * 12)::int) n
 WHERE c.contact_id > :contact_base AND pg_temp.rnd(c.contact_id, 83) < 0.15;
WITH o AS (
	INSERT INTO crm."order" (contact_id, ordered_at, status, total, items)
	SELECT contact_id, ordered_at, 'paid', 0, lines FROM new_orders ORDER BY contact_id, ordered_at
	RETURNING contact_id, order_id, items)
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, quantity, unit_price)
SELECT o.contact_id, o.order_id, l, p.product_id, 1 + floor(pg_temp.rnd(o.order_id * 10 + l, 85) * 3)::int, p.price
  FROM o CROSS JOIN generate_series(1, o.items) l
  JOIN LATERAL (SELECT product_id, price FROM crm.product
				 ORDER BY product_id OFFSET floor(pg_temp.rnd(o.order_id * 10 + l, 84) * 50)::int LIMIT 1) p ON true;
UPDATE crm."order" o SET total = s.total
  FROM (SELECT contact_id, order_id, sum(quantity * unit_price) AS total FROM crm.order_line
		 GROUP BY 1, 2) s
 WHERE o.contact_id = s.contact_id AND o.order_id = s.order_id AND o.contact_id > :contact_base;

-- deals for 6% of contacts; closed ones are won or lost
INSERT INTO crm.deal (contact_id, company_id, title, pipeline_stage, amount, probability, expected_close,
					  status, created_at, closed_at)
SELECT c.contact_id, c.company_id, 'Deal for ' || coalesce(c.last_name, c.email::text),
	   st.stage, round((500 + 20000 * power(pg_temp.rnd(c.contact_id, 90), 2))::numeric, 2), st.p,
	   (now() + pg_temp.rnd(c.contact_id, 91) * interval '120 days')::date,
	   st.status, c.created_at + interval '7 days',
	   CASE WHEN st.status <> 'open' THEN c.created_at + interval '30 days' END
  FROM crm.contact c
 CROSS JOIN LATERAL (SELECT * FROM (VALUES
		(0.00, 'qualification', 0.10, 'open'), (0.30, 'proposal', 0.40, 'open'),
		(0.50, 'negotiation', 0.70, 'open'), (0.65, 'closed', 1.00, 'won'),
		(0.85, 'closed', 0.00, 'lost')) v(lo, stage, p, status)
	 WHERE v.lo <= pg_temp.rnd(c.contact_id, 92) ORDER BY v.lo DESC LIMIT 1) st
 WHERE c.contact_id > :contact_base AND pg_temp.rnd(c.contact_id, 93) < 0.06;

-- follow-up tasks on a third of the deals
INSERT INTO crm.task (contact_id, deal_id, title, due_at, done_at, owner)
SELECT d.contact_id, d.deal_id, 'Follow up: ' || d.title, d.created_at + interval '10 days',
	   CASE WHEN d.status <> 'open' THEN d.created_at + interval '9 days' END, d.owner
  FROM crm.deal d
 WHERE d.contact_id > :contact_base AND pg_temp.rnd(d.deal_id, 95) < 0.33;

COMMIT;
ANALYZE crm.contact, crm.activity, crm."order", crm.consent;
