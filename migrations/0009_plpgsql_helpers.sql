-- The helpers that CHECK constraints, column defaults and the audit chain's
-- trigger call on every row, as plpgsql instead of SQL functions (issue 5).
--
-- A LANGUAGE sql function that PostgreSQL cannot inline (and it never inlines
-- one called from a constraint or from plpgsql) is parsed and planned again
-- for each query that calls it. perf during bench/issue.sh showed
-- PostgreSQL's parser (base_yyparse, FuncnameGetCandidates) under
-- ExecConstraints and the audit trigger. plpgsql keeps each expression's
-- plan for the session. The bodies compute exactly what they did
-- (tests/integration/test_schema.py recomputes the audit chain).

CREATE OR REPLACE FUNCTION cw_valid_id(id text) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
END
$$;

CREATE OR REPLACE FUNCTION cw_new_id(prefix text) RETURNS text
	LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
	RETURN prefix || '-' || replace(gen_random_uuid()::text, '-', '');
END
$$;

CREATE OR REPLACE FUNCTION cw_is_string_map(j jsonb) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN CASE WHEN jsonb_typeof(j) = 'object'
		THEN NOT EXISTS (SELECT 1 FROM jsonb_each(j) AS e WHERE jsonb_typeof(e.value) <> 'string')
		ELSE false END;
END
$$;

CREATE OR REPLACE FUNCTION cw_is_text_list(a text[]) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN coalesce(array_ndims(a), 1) = 1 AND array_position(a, NULL) IS NULL;
END
$$;

CREATE OR REPLACE FUNCTION cw_is_key_rules(j jsonb) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN CASE WHEN jsonb_typeof(j) = 'array'
		THEN NOT EXISTS (
			SELECT 1 FROM jsonb_array_elements(j) AS r(rule)
			 WHERE CASE WHEN jsonb_typeof(r.rule) <> 'object' THEN true
				ELSE NOT coalesce(r.rule->>'algorithm' IN ('RSA', 'ECDSA', 'Ed25519'), false)
				  OR (r.rule ? 'min_size' AND NOT (jsonb_typeof(r.rule->'min_size') = 'number'
					AND (r.rule->>'min_size') ~ '^[0-9]{1,6}$'))
				  OR EXISTS (SELECT 1 FROM jsonb_object_keys(r.rule) AS k(name)
					      WHERE k.name NOT IN ('algorithm', 'min_size')) END)
		ELSE false END;
END
$$;

-- audit_field stays a SQL function: called inside the expression below it
-- is inlined.
CREATE OR REPLACE FUNCTION audit_event_hash(prev bytea, e audit_events) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN sha256(prev
		|| audit_field(int8send(e.id))
		|| audit_field(int8send(extract(epoch FROM date_trunc('second', e.occurred_at AT TIME ZONE 'UTC'))::bigint
			* 1000000 + extract(microseconds FROM e.occurred_at AT TIME ZONE 'UTC')::bigint % 1000000))
		|| audit_field(convert_to(e.actor, 'UTF8'))
		|| audit_field(convert_to(e.actor_type, 'UTF8'))
		|| audit_field(convert_to(e.actor_role, 'UTF8'))
		|| audit_field(convert_to(e.action, 'UTF8'))
		|| audit_field(convert_to(e.resource_type, 'UTF8'))
		|| audit_field(convert_to(e.resource_id, 'UTF8'))
		|| audit_field(convert_to(e.request_id, 'UTF8'))
		|| audit_field(substring(inet_send(e.source_address) FROM 5))
		|| audit_field(convert_to(e.outcome, 'UTF8'))
		|| audit_field(e.body_sha256)
		|| audit_field(convert_to(e.details::text, 'UTF8')));
END
$$;
