-- Revocation as certward's own CA publishes it (issue 5): CRLs and OCSP.
--
-- Revoking a managed certificate (certificates.revoke, bulk_revoke) puts
-- the serial numbers its CA issued for it into revoked_serials, through the
-- trigger below, whatever path made the change (the API, psql). A
-- certificate valid for less than an hour is left out, as in the reference:
-- it carries no CRL or OCSP URL, and is gone before a CRL would be read.
-- Every revocation also counts in crl_state.revocations of its issuer: the
-- scheduler regenerates a CRL whose count is behind (and one close to its
-- nextUpdate), and each api empties its OCSP cache when the sum moves.

CREATE TABLE revoked_serials (
	issuer_id text NOT NULL,
	serial_number text NOT NULL,
	revoked_at timestamptz NOT NULL,
	-- RFC 5280 CRLReason: 0 unspecified .. 10 aACompromise, 7 unused
	reason smallint NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason <> 7),
	not_after timestamptz NOT NULL,
	PRIMARY KEY (issuer_id, serial_number),
	FOREIGN KEY (issuer_id, serial_number) REFERENCES issued_serials (issuer_id, serial_number)
		ON DELETE RESTRICT
);
-- a CRL is read in serial order, page after page (crl.revoked)
CREATE INDEX revoked_serials_crl ON revoked_serials (issuer_id, serial_number COLLATE "C");

-- One row per issuer that has revocations or CRLs. last_number: the
-- highest CRL number handed out (crl.begin); it only grows, across
-- restarts and across certward nodes sharing the database.
CREATE TABLE crl_state (
	issuer_id text PRIMARY KEY REFERENCES issuers (id) ON DELETE CASCADE,
	revocations bigint NOT NULL DEFAULT 0 CHECK (revocations >= 0),
	last_number bigint NOT NULL DEFAULT 0 CHECK (last_number >= 0)
);

-- The CRL served for each issuer, in parts of at most 45,000 bytes (what
-- one store call carries in base64). revocations: crl_state.revocations
-- when it was generated.
CREATE TABLE crls (
	issuer_id text PRIMARY KEY REFERENCES issuers (id) ON DELETE CASCADE,
	crl_number bigint NOT NULL CHECK (crl_number > 0),
	revocations bigint NOT NULL,
	entries integer NOT NULL CHECK (entries >= 0),
	this_update timestamptz NOT NULL,
	next_update timestamptz NOT NULL,
	der_size integer NOT NULL CHECK (der_size > 0),
	der_sha256 text NOT NULL CHECK (der_sha256 ~ '^[0-9a-f]{64}$'),
	parts integer NOT NULL CHECK (parts > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (next_update > this_update)
);
CREATE TABLE crl_parts (
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE CASCADE,
	crl_number bigint NOT NULL,
	part integer NOT NULL CHECK (part >= 0),
	data bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 45000),
	PRIMARY KEY (issuer_id, crl_number, part)
);

CREATE FUNCTION cw_certificate_revoked() RETURNS trigger
	LANGUAGE plpgsql
AS $$
DECLARE
	code smallint;
BEGIN
	code := CASE NEW.revocation_reason
		WHEN 'keyCompromise' THEN 1 WHEN 'caCompromise' THEN 2 WHEN 'affiliationChanged' THEN 3
		WHEN 'superseded' THEN 4 WHEN 'cessationOfOperation' THEN 5 WHEN 'certificateHold' THEN 6
		WHEN 'privilegeWithdrawn' THEN 9 ELSE 0 END;
	WITH r AS (
		INSERT INTO revoked_serials (issuer_id, serial_number, revoked_at, reason, not_after)
		SELECT s.issuer_id, s.serial_number, NEW.revoked_at, code, v.not_after
		FROM certificate_versions v JOIN issued_serials s ON s.certificate_version_id = v.id
		WHERE v.certificate_id = NEW.id AND v.not_after > NEW.revoked_at
		  AND v.not_after - v.not_before >= interval '1 hour'
		ON CONFLICT DO NOTHING
		RETURNING issuer_id)
	INSERT INTO crl_state AS c (issuer_id, revocations)
	SELECT issuer_id, count(*) FROM r GROUP BY issuer_id
	ON CONFLICT (issuer_id) DO UPDATE SET revocations = c.revocations + excluded.revocations;
	RETURN NULL;
END
$$;

CREATE TRIGGER managed_certificates_revoked AFTER UPDATE OF revoked_at ON managed_certificates
	FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
	EXECUTE FUNCTION cw_certificate_revoked();

-- the store's read cache hears of their changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON revoked_serials
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crl_state
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crls
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crl_parts
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
