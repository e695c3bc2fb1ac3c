-- ACME Renewal Information (RFC 9773): the renewal window a CA suggests for
-- each of its certificates, and when the scheduler asks again.
--
-- One row per certificate of an ACME issuer that has a version. A new
-- version, or the certificate moving to another issuer, makes the row due at
-- once and forgets the window of the certificate before. The scheduler's
-- acme_ari loop claims due rows (SKIP LOCKED), asks the CA at
-- <renewalInfo>/<CertID> and records the answer (store ops acme_ari.*). While
-- the CA suggests a window, renew_at here is the time picked inside it and
-- managed_certificates.renew_at follows it instead of the renewal policy's
-- window; without one (no renewalInfo at the CA, a 404) the policy's time
-- applies again (docs/acme-client.md, "Renewal information (ARI)").
CREATE TABLE acme_renewal_info (
	certificate_id text PRIMARY KEY REFERENCES managed_certificates (id) ON DELETE CASCADE,
	serial_number text CHECK (serial_number ~ '^[0-9a-f]{1,64}$'), -- the version last asked about
	cert_id text CHECK (char_length(cert_id) <= 200),                -- its ARI CertID
	next_check timestamptz NOT NULL DEFAULT now(),
	checked_at timestamptz,
	window_start timestamptz,
	window_end timestamptz,
	renew_at timestamptz,
	explanation_url text CHECK (char_length(explanation_url) <= 2048),
	failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
	last_error text CHECK (char_length(last_error) <= 1024),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((window_start IS NULL) = (window_end IS NULL)),
	CHECK (window_end > window_start),
	CHECK (renew_at IS NULL OR window_start IS NOT NULL)
);
CREATE INDEX acme_renewal_info_due ON acme_renewal_info (next_check);
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acme_renewal_info
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
COMMENT ON TABLE acme_renewal_info IS
	'the renewal window each ACME CA suggests for its certificates (RFC 9773), asked for by the scheduler';

-- The row of a certificate (of issuer p_issuer_id) made due now (a new
-- version, another issuer), or dropped when the issuer is not ACME or the
-- certificate has no version.
CREATE FUNCTION cw_acme_ari_due(p_certificate_id text, p_issuer_id text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM issuers i WHERE i.id = p_issuer_id AND i.type = 'ACME')
	   AND EXISTS (SELECT 1 FROM certificate_versions v WHERE v.certificate_id = p_certificate_id) THEN
		INSERT INTO acme_renewal_info AS a (certificate_id) VALUES (p_certificate_id)
		ON CONFLICT (certificate_id) DO UPDATE SET serial_number = NULL, cert_id = NULL, next_check = now(),
			checked_at = NULL, window_start = NULL, window_end = NULL, renew_at = NULL,
			explanation_url = NULL, failures = 0, last_error = NULL, updated_at = now();
	ELSE
		DELETE FROM acme_renewal_info WHERE certificate_id = p_certificate_id;
	END IF;
END $$;

-- a new version: its window is asked for (the policy's trigger of 0017 has
-- set renew_at from it meanwhile)
CREATE FUNCTION cw_version_acme_ari() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM cw_acme_ari_due(m.id, m.issuer_id) FROM managed_certificates m WHERE m.id = NEW.certificate_id;
	RETURN NULL;
END $$;
CREATE TRIGGER certificate_versions_acme_ari AFTER INSERT ON certificate_versions
	FOR EACH ROW EXECUTE FUNCTION cw_version_acme_ari();

-- another issuer: the old CA's window no longer holds
CREATE FUNCTION cw_certificate_issuer_acme_ari() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT a.renew_at FROM acme_renewal_info a WHERE a.certificate_id = NEW.id) IS NOT NULL THEN
		NEW.renew_at := cw_certificate_renew_at(NEW.id, (SELECT renewal_window_days FROM renewal_policies
			WHERE id = NEW.renewal_policy_id));
	END IF;
	PERFORM cw_acme_ari_due(NEW.id, NEW.issuer_id);
	RETURN NEW;
END $$;
CREATE TRIGGER managed_certificates_acme_ari BEFORE UPDATE OF issuer_id ON managed_certificates
	FOR EACH ROW WHEN (OLD.issuer_id IS DISTINCT FROM NEW.issuer_id)
	EXECUTE FUNCTION cw_certificate_issuer_acme_ari();

-- an issuer that becomes ACME, or stops being one
CREATE FUNCTION cw_issuer_acme_ari() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE managed_certificates m SET renew_at = cw_certificate_renew_at(m.id, p.renewal_window_days)
	FROM renewal_policies p, acme_renewal_info a
	WHERE m.issuer_id = NEW.id AND p.id = m.renewal_policy_id AND a.certificate_id = m.id
	AND a.renew_at IS NOT NULL;
	PERFORM cw_acme_ari_due(m.id, m.issuer_id) FROM managed_certificates m WHERE m.issuer_id = NEW.id;
	RETURN NULL;
END $$;
CREATE TRIGGER issuers_acme_ari AFTER UPDATE OF type ON issuers
	FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type AND 'ACME' IN (OLD.type, NEW.type))
	EXECUTE FUNCTION cw_issuer_acme_ari();

-- The policy's triggers of 0017 keep a time the CA suggested: another
-- policy or window changes renew_at only where no ARI window holds.
CREATE OR REPLACE FUNCTION cw_certificate_policy_renew_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.renew_at := coalesce((SELECT a.renew_at FROM acme_renewal_info a WHERE a.certificate_id = NEW.id),
		cw_certificate_renew_at(NEW.id, (SELECT renewal_window_days FROM renewal_policies
			WHERE id = NEW.renewal_policy_id)));
	RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION cw_policy_renew_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE managed_certificates m SET renew_at = coalesce((SELECT a.renew_at FROM acme_renewal_info a
		WHERE a.certificate_id = m.id), cw_certificate_renew_at(m.id, NEW.renewal_window_days))
	WHERE m.renewal_policy_id = NEW.id;
	RETURN NULL;
END
$$;

-- the certificates of ACME issuers already in the inventory are asked about
-- at the loop's first run
INSERT INTO acme_renewal_info (certificate_id)
SELECT m.id FROM managed_certificates m JOIN issuers i ON i.id = m.issuer_id
WHERE i.type = 'ACME' AND EXISTS (SELECT 1 FROM certificate_versions v WHERE v.certificate_id = m.id);
