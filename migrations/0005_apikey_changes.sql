-- API key changes as every api process sees them (issue 4).
--
-- Each api process keeps the keys it has verified in memory and asks for
-- api_keys_version every 250 ms (apikeys.version); when the number moved,
-- it forgets them all. The number lives in a table, not a sequence, so it
-- moves when the change commits and never before: an api that sees the new
-- number reads the changed rows.

CREATE TABLE api_keys_version (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	version bigint NOT NULL
);
INSERT INTO api_keys_version (singleton, version) VALUES (true, 1);

CREATE FUNCTION api_keys_changed() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	UPDATE api_keys_version SET version = version + 1 WHERE singleton;
	RETURN NULL;
END
$$;

-- Per row, so that a statement that changes nothing (a refused create)
-- leaves every cache alone.
CREATE TRIGGER api_keys_changed AFTER INSERT OR DELETE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION api_keys_changed();
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION api_keys_changed();
-- An update that only records when a key was last used (apikeys.touch)
-- changes nothing an api caches, and must not empty every cache each minute.
CREATE TRIGGER api_keys_changed_update AFTER UPDATE ON api_keys
	FOR EACH ROW
	WHEN ((OLD.id, OLD.name, OLD.role, OLD.agent_id, OLD.salt, OLD.key_hash, OLD.key_prefix,
	       OLD.created_at, OLD.expires_at, OLD.revoked_at)
	      IS DISTINCT FROM
	      (NEW.id, NEW.name, NEW.role, NEW.agent_id, NEW.salt, NEW.key_hash, NEW.key_prefix,
	       NEW.created_at, NEW.expires_at, NEW.revoked_at))
	EXECUTE FUNCTION api_keys_changed();

-- A key as the API shows it: never its salt or hash.
CREATE FUNCTION api_key_json(k api_keys) RETURNS json
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT json_build_object('id', k.id, 'name', k.name, 'role', k.role, 'agent_id', k.agent_id,
		'key_prefix', k.key_prefix, 'created_at', k.created_at, 'expires_at', k.expires_at,
		'revoked_at', k.revoked_at, 'last_used_at', k.last_used_at)
$$;

-- Lists are ordered by creation.
CREATE INDEX api_keys_created_at ON api_keys (created_at, id);
