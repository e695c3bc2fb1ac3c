-- API keys with roles, and the tamper-evident audit trail (issue 4).

-- ---- API keys ----

-- A key is presented as <key_prefix><secret>. Only key_hash = SHA-256(salt ||
-- secret) is stored, computed by the api (never the secret, never by the
-- store); the api finds the row by key_prefix and compares the hash in
-- constant time. An 'agent' key belongs to exactly one agent; other roles to
-- none. Revoking sets revoked_at (rows stay, for the audit trail).
CREATE TABLE api_keys (
	id text PRIMARY KEY DEFAULT cw_new_id('key') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'agent')),
	agent_id text REFERENCES agents (id) ON DELETE RESTRICT,
	salt bytea NOT NULL CHECK (octet_length(salt) BETWEEN 16 AND 64),
	key_hash bytea NOT NULL CHECK (octet_length(key_hash) = 32),
	key_prefix text NOT NULL UNIQUE CHECK (key_prefix ~ '^[A-Za-z0-9_-]{4,32}$'),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz,
	revoked_at timestamptz,
	last_used_at timestamptz,
	CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
CREATE INDEX api_keys_agent_id ON api_keys (agent_id) WHERE agent_id IS NOT NULL;

-- ---- audit trail ----

-- Append-only and hash-chained. Each row's hash is
--
--   hash = SHA-256(prev_hash || F(id) || F(occurred_at) || F(actor) ||
--                  F(actor_type) || F(actor_role) || F(action) ||
--                  F(resource_type) || F(resource_id) || F(request_id) ||
--                  F(source_address) || F(outcome) || F(body_sha256) ||
--                  F(details))
--
-- where prev_hash is the previous event's hash (32 zero bytes for the first
-- event) and F encodes one field:
--
--   F(NULL) = 0x00
--   F(v)    = 0x01 || uint32 big-endian byte length of B(v) || B(v)
--
-- and B(v), the bytes of a value, is by column:
--
--   id              int64 big-endian (8 bytes)
--   occurred_at     microseconds since 1970-01-01T00:00:00Z, int64 big-endian
--   text columns    their UTF-8 bytes (actor, actor_type, actor_role, action,
--                   resource_type, resource_id, request_id, outcome)
--   source_address  the raw address: 4 bytes (IPv4) or 16 bytes (IPv6),
--                   network order (only host addresses are stored)
--   body_sha256     its 32 bytes
--   details         UTF-8 bytes of PostgreSQL's text output of the jsonb
--                   value (details::text; what libpq returns in text format)
--
-- Fields are always present in this order, so the encoding is unambiguous.
-- audit_event_hash(prev_hash, row) computes it in SQL; `certward audit
-- verify` recomputes it in C. The BEFORE INSERT trigger takes the row lock on
-- the one-row audit_chain_head (so concurrent inserts are serialized until
-- commit), assigns id = the head's last_id + 1 (ids are contiguous in chain
-- order, whatever identity value was drawn), sets prev_hash and hash
-- (ignoring whatever the inserter supplied), and advances the head.

CREATE TABLE audit_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	occurred_at timestamptz NOT NULL DEFAULT now() CHECK (isfinite(occurred_at)),
	actor text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 255),
	actor_type text NOT NULL CHECK (actor_type IN ('User', 'System', 'Agent')),
	actor_role text CHECK (actor_role IN ('admin', 'operator', 'viewer', 'agent')),
	action text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 128),
	resource_type text NOT NULL CHECK (char_length(resource_type) BETWEEN 1 AND 64),
	resource_id text CHECK (char_length(resource_id) <= 255),
	request_id text CHECK (char_length(request_id) <= 128),
	source_address inet CHECK (masklen(source_address) = CASE family(source_address)
		WHEN 4 THEN 32 ELSE 128 END),
	outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
	body_sha256 bytea CHECK (octet_length(body_sha256) = 32),
	details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
	prev_hash bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
	hash bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id);
CREATE INDEX audit_events_actor ON audit_events (actor);

-- The end of the chain: the last event's id and hash.
CREATE TABLE audit_chain_head (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	last_id bigint NOT NULL,
	last_hash bytea NOT NULL CHECK (octet_length(last_hash) = 32)
);
INSERT INTO audit_chain_head (singleton, last_id, last_hash)
	VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_field(v bytea) RETURNS bytea
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v IS NULL THEN '\x00'::bytea
		ELSE '\x01'::bytea || int4send(octet_length(v)) || v END
$$;

CREATE FUNCTION audit_event_hash(prev bytea, e audit_events) RETURNS bytea
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT sha256(prev
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
		|| audit_field(convert_to(e.details::text, 'UTF8')))
$$;

CREATE FUNCTION audit_events_chain() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path FROM CURRENT
AS $$
DECLARE
	head audit_chain_head%ROWTYPE;
BEGIN
	SELECT * INTO head FROM audit_chain_head WHERE singleton FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'audit_chain_head has no row: the audit chain cannot be extended';
	END IF;
	NEW.id := head.last_id + 1;
	NEW.prev_hash := head.last_hash;
	NEW.hash := audit_event_hash(NEW.prev_hash, NEW);
	UPDATE audit_chain_head SET last_id = NEW.id, last_hash = NEW.hash WHERE singleton;
	RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

-- Append-only, for every role including the owner: statement-level, so even
-- an UPDATE or DELETE that matches no row is refused.
CREATE FUNCTION audit_refuse_change() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	RAISE EXCEPTION '% on % refused: the audit trail is append-only', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_head_keep BEFORE DELETE OR TRUNCATE ON audit_chain_head
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- The head moves only from the chain trigger (trigger depth 2: this trigger
-- inside audit_events_chain), never by a direct UPDATE.
CREATE FUNCTION audit_chain_head_guard() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	IF pg_trigger_depth() < 2 THEN
		RAISE EXCEPTION 'audit_chain_head moves only when an audit event is inserted'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER audit_chain_head_guard BEFORE UPDATE ON audit_chain_head
	FOR EACH ROW EXECUTE FUNCTION audit_chain_head_guard();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_chain_head FROM PUBLIC;

COMMENT ON TABLE audit_events IS
	'append-only, hash-chained audit trail; encoding in migrations/0003_auth_audit.sql';
COMMENT ON COLUMN api_keys.key_hash IS 'SHA-256(salt || secret), computed by the api; the secret is never stored';
