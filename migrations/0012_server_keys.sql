-- Server-side key generation (issue 5): off unless a certificate profile
-- allows it. A key the signer made is kept only sealed with the signer's
-- secrets key (lib/secretbox.h); the database never sees it in clear, and
-- the client gets it in clear once, in the answer that created it.

ALTER TABLE certificate_profiles ADD COLUMN server_keygen boolean NOT NULL DEFAULT false;

CREATE TABLE version_keys (
	certificate_version_id text PRIMARY KEY REFERENCES certificate_versions (id) ON DELETE RESTRICT,
	sealed bytea NOT NULL CHECK (octet_length(sealed) BETWEEN 45 AND 16384),
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN version_keys.sealed IS
	'the private key sealed by certward-signer; never decrypted by the store, never returned by the API';

-- the store's read cache hears of its changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON version_keys
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
