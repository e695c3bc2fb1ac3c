-- Revocations that an ACME CA must be told of (RFC 8555 7.6). Revoking a
-- certificate of an ACME issuer in the inventory (managed_certificates
-- revoked_at set) queues its newest version here; the scheduler sends
-- revokeCert with that certificate and the reason, signed by the issuer's
-- account key, and records the outcome. A revocation the CA refuses for
-- good (alreadyRevoked counts as done) stays failed with the CA's text.
CREATE TABLE acme_revocations (
	id bigserial PRIMARY KEY,
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE CASCADE,
	serial_number text NOT NULL CHECK (serial_number ~ '^[0-9A-Fa-f:]{1,128}$'),
	reason text NOT NULL DEFAULT 'unspecified' CHECK (char_length(reason) <= 64),
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	last_error text CHECK (char_length(last_error) <= 1024),
	claimed_at timestamptz,
	next_at timestamptz NOT NULL DEFAULT now(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (certificate_id, serial_number)
);
CREATE INDEX acme_revocations_due ON acme_revocations (status, next_at);
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acme_revocations
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
COMMENT ON TABLE acme_revocations IS
	'certificates of ACME issuers revoked in the inventory, to be revoked at the CA by the scheduler';

CREATE FUNCTION cw_acme_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO acme_revocations (certificate_id, issuer_id, serial_number, reason)
	SELECT NEW.id, i.id, v.serial_number, coalesce(NEW.revocation_reason, 'unspecified')
	FROM issuers i
	JOIN LATERAL (SELECT x.serial_number FROM certificate_versions x WHERE x.certificate_id = NEW.id
		ORDER BY x.created_at DESC, x.id DESC LIMIT 1) v ON true
	WHERE i.id = NEW.issuer_id AND i.type = 'ACME'
	ON CONFLICT (certificate_id, serial_number) DO NOTHING;
	RETURN NULL;
END $$;
CREATE TRIGGER acme_revocation AFTER UPDATE OF revoked_at ON managed_certificates
	FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
	EXECUTE FUNCTION cw_acme_revocation();
