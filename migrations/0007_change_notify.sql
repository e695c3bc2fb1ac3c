-- Changes to any table, announced to the store's cache (workers/store/cache.h).
--
-- The store answers the REST reads it has answered before (a record, a
-- list's total) from memory until a table they come from changes. Its own
-- writes tell it at once; this trigger tells it about every other one (psql,
-- another certward sharing the database, cascades): after each statement that
-- may have changed a table, NOTIFY certward_changes with the table's name.
-- PostgreSQL delivers it when the transaction commits (never for one rolled
-- back) and sends one notification per table and transaction.
--
-- Every table gets the trigger; a table created by a later migration must
-- get it too (tests/integration/test_schema.py checks).

CREATE FUNCTION cw_table_changed() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM pg_notify('certward_changes', TG_TABLE_NAME);
	RETURN NULL;
END
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
		  WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		  ORDER BY 1
	LOOP
		EXECUTE format('CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE '
			       'ON %I FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed()', t);
	END LOOP;
END
$$;
