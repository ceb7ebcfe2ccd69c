-- ---------------------------------------------------------------------------
-- Scaling out on Citus: crm.distribute(), called once on the coordinator.
-- Every table that holds a contact's rows (crm.contact, the tables that
-- crm.contact_references() finds, and the tables of schema crm whose primary
-- key starts with contact_id) is hash-distributed by its contact column and
-- co-located with crm.contact, so a contact's rows are on one shard; every
-- other table of schema crm (lookup, configuration, logs) becomes a reference
-- table, copied to every node.  It runs only where Citus is installed, on the
-- coordinator, with crm at the same version on every worker.
-- ---------------------------------------------------------------------------
CREATE FUNCTION crm.distribute(drop_email_uniqueness boolean DEFAULT false)
RETURNS TABLE (table_name regclass, distribution text, action text, detail text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	version text;
	bad text;
	per_contact regclass[];
	per_contact_col name[];
	reference regclass[];
	pending regclass[];
	quiet regclass[] := '{}';	-- tables whose triggers are off while their rows are copied
	rel regclass;
	col name;
	i int;
	progress boolean;
	changed int := 0;
	con record;
	-- the Citus settings this call needs, restored before it returns
	saved text[];
	knobs CONSTANT text[] := ARRAY['citus.enable_unsafe_triggers',
								   'citus.enable_local_reference_table_foreign_keys',
								   'citus.multi_shard_modify_mode'];
	part "char";
	repl "char";
	contact_group int;
	fn regprocedure;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'citus') THEN
		RAISE EXCEPTION 'crm.distribute() needs the citus extension in database "%"', current_database()
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Load Citus (shared_preload_libraries = ''citus''), run CREATE EXTENSION citus and CREATE EXTENSION crm '
					  || 'on the coordinator and on every worker, add the workers with citus_add_node(), '
					  || 'then call crm.distribute() on the coordinator.';
	END IF;
	IF NOT pg_catalog.citus_is_coordinator() THEN
		RAISE EXCEPTION 'crm.distribute() must be called on the Citus coordinator'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Connect to the coordinator (the node of group 0; register it with citus_set_coordinator_host()) and call it there.';
	END IF;

	-- every worker must have crm, at this version: the shards use its types,
	-- operators and trigger functions
	SELECT e.extversion INTO version FROM pg_extension e WHERE e.extname = 'crm';
	SELECT string_agg(format('%s:%s (%s)', w.nodename, w.nodeport,
							 CASE WHEN NOT w.success THEN 'unreachable: ' || w.result
								  WHEN w.result = '' THEN 'crm not installed'
								  ELSE 'crm ' || w.result END), ', ' ORDER BY w.nodename, w.nodeport)
	  INTO bad
	  FROM pg_catalog.run_command_on_workers(
			 $q$SELECT coalesce((SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'crm'), '')$q$) w
	 WHERE NOT w.success OR w.result IS DISTINCT FROM version;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'crm % is not installed on every worker: %', version, bad
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = format('Run CREATE EXTENSION crm VERSION %L (or ALTER EXTENSION crm UPDATE) in this database on each of them, then call crm.distribute() again.', version);
	END IF;

	-- Which tables hold a contact's rows, with their contact column
	SELECT array_agg(x.rel ORDER BY x.rel::text), array_agg(x.col ORDER BY x.rel::text)
	  INTO per_contact, per_contact_col
	  FROM (SELECT DISTINCT ON (r.table_name) r.table_name AS rel, r.contact_column AS col
			  FROM (SELECT 'crm.contact'::regclass AS table_name, 'contact_id'::name AS contact_column
					UNION ALL
					SELECT f.table_name, f.contact_column FROM crm.contact_references() f
					UNION ALL
					SELECT c.oid::regclass, a.attname
					  FROM pg_class c
					  JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
					  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
					 WHERE c.relnamespace = 'crm'::regnamespace AND a.attname = 'contact_id'
					   AND c.oid <> 'crm.erasure_log'::regclass) r
			 ORDER BY r.table_name, r.contact_column) x;
	-- the rest of schema crm: copied to every node.  crm.erasure_log keeps
	-- one row per erased contact id, keyed by erasure_id: a log, not the
	-- contact's data (which is gone).  The dump markers stay local: copying
	-- their rows to the shards would fire their triggers, which delete the
	-- built-in rows and turn derivation off as a restore does.
	SELECT array_agg(c.oid::regclass ORDER BY c.oid::regclass::text) INTO reference
	  FROM pg_class c
	 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
	   AND c.oid <> ALL (per_contact::oid[])
	   AND c.oid NOT IN ('crm._dump_begin'::regclass, 'crm.zz_dump_end'::regclass);

	-- Refuse, before anything changes, what cannot be distributed as it is.
	FOR i IN 1 .. cardinality(per_contact) LOOP
		rel := per_contact[i];
		col := per_contact_col[i];
		IF EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = rel AND p.partmethod = 'h') THEN
			CONTINUE;
		END IF;
		IF (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col) <> 'bigint'::regtype THEN
			RAISE EXCEPTION 'cannot distribute %: its contact column % is not bigint', rel, col
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'A table co-located with crm.contact must hold the contact id as bigint.';
		END IF;
		-- Citus enforces a unique constraint only on one shard: it must
		-- contain the distribution column
		FOR con IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def
					 FROM pg_constraint k
					WHERE k.conrelid = rel AND k.contype IN ('p', 'u', 'x')
					  AND NOT EXISTS (SELECT FROM pg_attribute a
									   WHERE a.attrelid = rel AND a.attname = col AND a.attnum = ANY (k.conkey))
		LOOP
			IF rel = 'crm.contact'::regclass AND con.conname = 'contact_email_key' AND drop_email_uniqueness THEN
				CONTINUE;
			END IF;
			RAISE EXCEPTION 'cannot distribute % by %: its constraint % (%) does not contain %',
							rel, col, con.conname, con.def, col
				USING ERRCODE = 'feature_not_supported',
					  DETAIL = 'Citus checks a UNIQUE, PRIMARY KEY or EXCLUDE constraint on one shard at a time; '
						  || 'one without the distribution column cannot be enforced across shards.',
					  HINT = CASE WHEN con.conname = 'contact_email_key'
								  THEN 'Call crm.distribute(drop_email_uniqueness => true) to drop it, accepting that the cluster no longer refuses a second contact with the same e-mail address (crm.find_duplicates() still finds them); or keep crm on one node.'
								  ELSE 'Add the contact column to the constraint, or drop it.' END;
		END LOOP;
	END LOOP;

	-- Settings this call needs, for this call only (set_config(..., true)
	-- lasts until the end of the transaction; the old values are put back
	-- before returning):
	--   enable_unsafe_triggers: Citus refuses to distribute a table with
	--     triggers unless it is on; crm's tables have them (the triggers are
	--     copied to every shard).  It is not needed afterwards.
	--   enable_local_reference_table_foreign_keys off: otherwise a local crm
	--     table that references a new reference table is turned into a Citus
	--     local table, which fails on the sequences and views crm owns.
	--   multi_shard_modify_mode sequential: the tables are created and filled
	--     one after another in one transaction, with foreign keys between them.
	saved := ARRAY(SELECT current_setting(k, true) FROM unnest(knobs) k);
	PERFORM set_config('citus.enable_unsafe_triggers', 'on', true),
			set_config('citus.enable_local_reference_table_foreign_keys', 'off', true),
			set_config('citus.multi_shard_modify_mode', 'sequential', true);

	-- crm's triggers are off while Citus copies the existing rows into the
	-- shards: the rows were derived from when they were written, and what
	-- they derived (ledger, history, marks) is copied with them.  Citus
	-- creates the shards' triggers in the state of the table's, and turns
	-- them back on with it below.
	FOREACH rel IN ARRAY reference || per_contact LOOP
		CONTINUE WHEN EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = rel
								AND NOT (p.partmethod = 'n' AND p.repmodel = 's'));
		EXECUTE format('ALTER TABLE %s DISABLE TRIGGER USER', rel);
		quiet := quiet || rel;
	END LOOP;

	-- Reference tables first (a distributed table may reference one), each
	-- after the crm tables it references.
	pending := reference;
	WHILE cardinality(pending) > 0 LOOP
		progress := false;
		FOREACH rel IN ARRAY pending LOOP
			CONTINUE WHEN EXISTS (SELECT FROM pg_constraint k
								   WHERE k.conrelid = rel AND k.contype = 'f' AND k.confrelid <> rel
									 AND k.confrelid = ANY (pending::oid[]));
			pending := array_remove(pending, rel);
			progress := true;
			table_name := rel;
			distribution := 'reference';
			SELECT p.partmethod, p.repmodel INTO part, repl FROM pg_dist_partition p WHERE p.logicalrelid = rel;
			IF part = 'n' AND repl = 't' THEN
				action := 'already a reference table';
				detail := NULL;
			ELSIF part IS NOT NULL AND NOT (part = 'n' AND repl = 's') THEN
				RAISE EXCEPTION 'cannot make % a reference table: it is already distributed (partition method %)', rel, part
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = format('Run SELECT undistribute_table(%L), then call crm.distribute() again.', rel::text);
			ELSE
				PERFORM pg_catalog.create_reference_table(rel);
				changed := changed + 1;
				action := 'made a reference table';
				detail := 'copied to every node';
			END IF;
			RETURN NEXT;
		END LOOP;
		IF NOT progress THEN
			RAISE EXCEPTION 'cannot order the reference tables: their foreign keys form a cycle (%)', pending
				USING ERRCODE = 'feature_not_supported';
		END IF;
	END LOOP;

	-- Then crm.contact, then the tables that point at it, each after the
	-- tables it references.
	pending := per_contact;
	WHILE cardinality(pending) > 0 LOOP
		progress := false;
		FOREACH rel IN ARRAY pending LOOP
			CONTINUE WHEN rel <> 'crm.contact'::regclass AND 'crm.contact'::regclass = ANY (pending);
			CONTINUE WHEN EXISTS (SELECT FROM pg_constraint k
								   WHERE k.conrelid = rel AND k.contype = 'f' AND k.confrelid <> rel
									 AND k.confrelid = ANY (pending::oid[]));
			pending := array_remove(pending, rel);
			progress := true;
			col := per_contact_col[array_position(per_contact, rel)];
			table_name := rel;
			distribution := format('by %s, co-located with crm.contact', col);
			SELECT p.colocationid INTO contact_group FROM pg_dist_partition p
			 WHERE p.logicalrelid = 'crm.contact'::regclass;
			IF EXISTS (SELECT FROM pg_dist_partition p
						WHERE p.logicalrelid = rel AND p.partmethod = 'h'
						  AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) = col
						  AND p.colocationid = contact_group) THEN
				action := 'already distributed';
				detail := NULL;
				RETURN NEXT;
				CONTINUE;
			ELSIF EXISTS (SELECT FROM pg_dist_partition p
						   WHERE p.logicalrelid = rel AND NOT (p.partmethod = 'n' AND p.repmodel = 's')) THEN
				RAISE EXCEPTION 'cannot distribute % by %: it is already distributed another way', rel, col
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = format('Run SELECT undistribute_table(%L), then call crm.distribute() again.', rel::text);
			END IF;
			IF rel = 'crm.contact'::regclass
			   AND EXISTS (SELECT FROM pg_constraint k
							WHERE k.conrelid = rel AND k.conname = 'contact_email_key') THEN
				-- only with drop_email_uniqueness (checked above)
				ALTER TABLE crm.contact DROP CONSTRAINT contact_email_key;
				action := 'dropped constraint contact_email_key';
				detail := 'UNIQUE (email) cannot be enforced across shards: a duplicate e-mail address is no longer refused';
				RETURN NEXT;
			END IF;
			IF rel = 'crm.contact'::regclass THEN
				PERFORM pg_catalog.create_distributed_table(rel, col::text);
			ELSE
				PERFORM pg_catalog.create_distributed_table(rel, col::text, colocate_with => 'crm.contact');
			END IF;
			changed := changed + 1;
			action := 'distributed';
			detail := format('%s shards', (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = rel));
			RETURN NEXT;
		END LOOP;
		IF NOT progress THEN
			RAISE EXCEPTION 'cannot order the per-contact tables: their foreign keys form a cycle (%)', pending
				USING ERRCODE = 'feature_not_supported';
		END IF;
	END LOOP;

	FOREACH rel IN ARRAY quiet LOOP
		EXECUTE format('ALTER TABLE %s ENABLE TRIGGER USER', rel);
	END LOOP;

	-- crm.set_stage runs on the node of its contact (Citus delegates the
	-- call): the guard and the log triggers on the shard learn of crm's own
	-- move (its reason, force and time) from the backend that runs the
	-- UPDATE, which must be theirs.  crm.redeem_points too: it locks and
	-- writes the contact's points where they are (src/loyalty.c).
	table_name := 'crm.contact'::regclass;
	distribution := 'by contact_id';
	FOREACH fn IN ARRAY ARRAY['crm.set_stage(bigint, crm.stage, text, boolean, timestamptz)',
							  'crm.redeem_points(bigint, bigint, bigint, text)']::regprocedure[] LOOP
		detail := NULL;
		IF EXISTS (SELECT FROM pg_dist_object o
					WHERE o.classid = 'pg_proc'::regclass AND o.objid = fn
					  AND o.distribution_argument_index IS NOT NULL) THEN
			action := 'already delegated ' || fn::regproc::text;
		ELSE
			PERFORM pg_catalog.create_distributed_function(fn, 'contact_id', colocate_with => 'crm.contact',
														   force_delegation => true);
			changed := changed + 1;
			action := 'delegated ' || fn::regproc::text;
			detail := 'calls run on the node of the contact';
		END IF;
		RETURN NEXT;
	END LOOP;

	-- Triggers on a worker's shards take ids (stage_history.history_id) from
	-- that worker's copy of the sequence, which crm created there like the
	-- coordinator's: give each node its own range, as Citus does for the
	-- sequences it propagates (the node's group id in the top 16 bits), so
	-- ids stay unique across nodes.  Idempotent: a sequence already in its
	-- range is left alone.
	SELECT string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') INTO bad
	  FROM pg_catalog.run_command_on_workers($q$DO $d$
		DECLARE
			start bigint := ((SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint << 48) + 1;
			seq regclass;
		BEGIN
			FOR seq IN SELECT s.oid::regclass FROM pg_catalog.pg_class s
						WHERE s.relkind = 'S' AND s.relnamespace = 'crm'::regnamespace LOOP
				IF (SELECT coalesce(q.last_value, 0) FROM pg_catalog.pg_sequences q
					 WHERE (q.schemaname || '.' || q.sequencename)::regclass = seq) < start THEN
					PERFORM pg_catalog.setval(seq, start, false);
				END IF;
			END LOOP;
		END $d$ $q$) w
	 WHERE NOT w.success;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'could not give the workers their sequence ranges: %', bad
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	FOREACH rel IN ARRAY ARRAY['crm._dump_begin', 'crm.zz_dump_end']::regclass[] LOOP
		table_name := rel;
		distribution := 'local';
		action := 'kept local';
		detail := 'dump marker, read only by pg_dump and pg_restore of this node';
		RETURN NEXT;
	END LOOP;

	FOR i IN 1 .. cardinality(knobs) LOOP
		PERFORM set_config(knobs[i], saved[i], true);
	END LOOP;
	IF changed = 0 THEN
		RAISE NOTICE 'crm is already distributed: nothing to do';
	END IF;
END $$;
COMMENT ON FUNCTION crm.distribute(boolean) IS
	'Citus, on the coordinator: distributes every crm table holding contacts'' rows by contact id (co-located with crm.contact) and makes the others reference tables; one row per table; a second call changes nothing; 0A000 without Citus, 55000 off the coordinator or when a worker lacks crm at this version; refuses UNIQUE (email) unless drop_email_uniqueness';
REVOKE ALL ON FUNCTION crm.distribute(boolean) FROM PUBLIC;
