-- The data model: constraints name the column and what is allowed
SET search_path = crm, public;
\set VERBOSITY default
SELECT c.relname, c.relkind FROM pg_class c
  JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crm'
 WHERE c.relkind IN ('r', 'v')
   AND c.relname IN ('company', 'contact', 'consent', 'consent_current', 'activity', 'deal', 'product',
					 'order', 'order_line', 'task', 'channel', 'lead_source')
 ORDER BY 1;
-- every user-data table is registered for pg_dump
SELECT t::regclass AS table, cond
  FROM unnest(ARRAY['crm.company', 'crm.contact', 'crm.consent', 'crm.activity', 'crm.deal', 'crm.product',
					'crm."order"', 'crm.order_line', 'crm.task', 'crm.channel', 'crm.lead_source']) t
  LEFT JOIN (SELECT unnest(extconfig) AS oid, unnest(extcondition) AS cond
			   FROM pg_extension WHERE extname = 'crm') e ON e.oid = t::regclass
 ORDER BY 1::text;

-- the e-mail address is the only mandatory field
\set VERBOSITY terse
INSERT INTO crm.contact (first_name) VALUES ('Nobody');
\set VERBOSITY default
INSERT INTO crm.contact (email) VALUES ('only@email.example') RETURNING email, stage, owner = current_user AS owned;
-- a duplicate in another case, or with a Unicode-equivalent domain, is refused
INSERT INTO crm.contact (email) VALUES ('ONLY@Email.Example');
INSERT INTO crm.contact (email) VALUES ('ana@bücher.example');
INSERT INTO crm.contact (email) VALUES ('Ana@BÜCHER.example');
INSERT INTO crm.contact (email) VALUES ('ana@xn--bcher-kva.example');
INSERT INTO crm.contact (email) VALUES ('not an email');
-- initial stage follows the lead source, unless given
INSERT INTO crm.contact (email, lead_source) VALUES
	('news@s.example', 'newsletter'), ('form@s.example', 'form'),
	('given@s.example', 'newsletter');
UPDATE crm.contact SET stage = 'mql' WHERE email = 'given@s.example';
SELECT email, lead_source, stage FROM crm.contact WHERE email::text LIKE '%@s.example' ORDER BY email;
INSERT INTO crm.contact (email, lead_source) VALUES ('x@s.example', 'carrier_pigeon');
INSERT INTO crm.contact (email, stage) VALUES ('stage@s.example', 'prospect');
-- other column rules (terse: the failing row holds timestamps)
\set VERBOSITY terse
INSERT INTO crm.contact (email, country) VALUES ('c@s.example', 'Spain');
INSERT INTO crm.contact (email, income_band) VALUES ('c@s.example', 'rich');
INSERT INTO crm.contact (email, birth_date) VALUES ('c@s.example', '1850-01-01');
INSERT INTO crm.contact (email, attrs) VALUES ('c@s.example', '[1,2]');
INSERT INTO crm.contact (email, phone) VALUES ('c@s.example', 'call me');
INSERT INTO crm.contact (email, do_not_contact) VALUES ('c@s.example', 'because');
INSERT INTO crm.company (name, employees) VALUES ('Acme', -1);
INSERT INTO crm.company (name, domain) VALUES ('Acme', 'Acme.COM');
-- orders: negative amount refused; missing contact refused
INSERT INTO crm."order" (contact_id, total) SELECT contact_id, -5 FROM crm.contact WHERE email = 'only@email.example';
INSERT INTO crm."order" (contact_id, total) VALUES (-1, 5);
INSERT INTO crm."order" (contact_id, total) SELECT contact_id, 'NaN' FROM crm.contact WHERE email = 'only@email.example';
INSERT INTO crm.activity (contact_id, kind) VALUES (-1, 'page_view');
INSERT INTO crm.activity (contact_id, kind) SELECT contact_id, 'Page View' FROM crm.contact WHERE email = 'only@email.example';
INSERT INTO crm.deal (contact_id, title, probability) SELECT contact_id, 'Big', 1.5 FROM crm.contact WHERE email = 'only@email.example';
INSERT INTO crm.deal (contact_id, title, status) SELECT contact_id, 'Big', 'won' FROM crm.contact WHERE email = 'only@email.example';
-- an order line must belong to an order of the same contact
INSERT INTO crm.product (sku, name, price) VALUES ('CANDLE-1', 'Candle', 9.5);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, unit_price)
	SELECT contact_id, 999999, 1, 1, 9.5 FROM crm.contact WHERE email = 'only@email.example';
\set VERBOSITY default
-- updated_at follows updates
UPDATE crm.contact SET first_name = 'Only' WHERE email = 'only@email.example'
	RETURNING updated_at >= created_at AS touched;
