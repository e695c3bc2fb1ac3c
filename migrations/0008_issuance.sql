-- Certificates signed by certward's own CA (issue 5): each serial number
-- once per issuer. The signer draws 128 random bits; this is where a
-- collision would be caught (certificates.issued fails with 23505 and
-- records nothing).

CREATE TABLE issued_serials (
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
	serial_number text NOT NULL CHECK (serial_number ~ '^[0-9a-f]{1,64}$'),
	certificate_version_id text NOT NULL UNIQUE REFERENCES certificate_versions (id) ON DELETE RESTRICT,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (issuer_id, serial_number)
);

-- the store's read cache hears of its changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON issued_serials
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
