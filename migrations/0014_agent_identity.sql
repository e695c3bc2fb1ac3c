-- Agent enrolment and identities (docs/agent.md).
--
-- agent_tokens: one-time bootstrap tokens. The token's secret is never
-- stored: like an API key, only a salt and SHA-256(salt || secret) are, and
-- the api compares in constant time; the store never sees the secret. A
-- token names its agent (made with the token when no active agent has the
-- name), is redeemed at most once (used_at) and only before expires_at.
--
-- agent_identities: the client certificates of the agent identity CA that
-- the api accepts, by SHA-256 fingerprint of the DER. Only a certificate
-- recorded here, not revoked, not expired, of an agent not retired reaches
-- the agent routes; a certificate the signer signed but that was never
-- recorded (a lost race for the token) reaches nothing.

CREATE TABLE agent_tokens (
	id text PRIMARY KEY DEFAULT cw_new_id('atok') CHECK (cw_valid_id(id)),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	token_prefix text NOT NULL UNIQUE CHECK (token_prefix ~ '^cw_[0-9a-f]{12}$'),
	salt bytea NOT NULL CHECK (octet_length(salt) = 16),
	token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	used_from inet,
	created_by text NOT NULL CHECK (char_length(created_by) BETWEEN 1 AND 255),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (expires_at > created_at),
	CHECK (used_from IS NULL OR used_at IS NOT NULL)
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id, created_at);
CREATE INDEX agent_tokens_created ON agent_tokens (created_at, id);

CREATE TABLE agent_identities (
	id text PRIMARY KEY DEFAULT cw_new_id('aid') CHECK (cw_valid_id(id)),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	fingerprint_sha256 text NOT NULL UNIQUE CHECK (fingerprint_sha256 ~ '^[0-9a-f]{64}$'),
	serial_number text NOT NULL CHECK (serial_number ~ '^[0-9a-f]{1,64}$'),
	not_before timestamptz NOT NULL,
	not_after timestamptz NOT NULL,
	token_id text REFERENCES agent_tokens (id) ON DELETE RESTRICT,
	revoked_at timestamptz,
	revocation_reason text CHECK (char_length(revocation_reason) BETWEEN 1 AND 255),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (not_after > not_before),
	CHECK (revocation_reason IS NULL OR revoked_at IS NOT NULL)
);
CREATE INDEX agent_identities_agent ON agent_identities (agent_id, created_at);

-- The heartbeat's addresses (an agent has several); ip_address stays the first.
ALTER TABLE agents ADD COLUMN ip_addresses inet[] NOT NULL DEFAULT '{}'
	CHECK (cardinality(ip_addresses) <= 32 AND array_position(ip_addresses, NULL) IS NULL);

-- The group membership view (0004) lists the agents' columns as they were:
-- made again so it has ip_addresses too.
CREATE OR REPLACE VIEW agent_group_membership AS
SELECT g.id AS agent_group_id, a.*
  FROM agent_groups g
  JOIN agents a ON a.retired_at IS NULL AND (
	EXISTS (SELECT 1 FROM agent_group_members m
		 WHERE m.agent_group_id = g.id AND m.agent_id = a.id)
	OR (g.enabled
	    AND num_nonnulls(g.match_os, g.match_architecture, g.match_ip_cidr, g.match_version) > 0
	    AND (g.match_os IS NULL OR a.os = g.match_os)
	    AND (g.match_architecture IS NULL OR a.architecture = g.match_architecture)
	    AND (g.match_ip_cidr IS NULL OR a.ip_address <<= g.match_ip_cidr)
	    AND (g.match_version IS NULL OR a.version = g.match_version)));

-- What an agent reported for a job: the serial it deployed.
ALTER TABLE jobs ADD COLUMN deployed_serial text CHECK (deployed_serial ~ '^[0-9a-f]{1,64}$');

-- the store's read cache hears of their changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent_tokens
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent_identities
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
