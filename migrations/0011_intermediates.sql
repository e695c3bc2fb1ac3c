-- Intermediate CAs made through the API (issue 5): POST
-- /api/v1/issuers/{id}/intermediates. The signer makes the key and the
-- certificate (below the root, or below another intermediate) and keeps
-- them in its key directory; this table is their record. An issuer of type
-- Local whose config names an intermediate_id has its certificates, CRL and
-- OCSP responses signed by that intermediate.
--
-- state: active -> retiring (signs nothing new) -> retired, the last step
-- only once no intermediate below it is still active or retiring.

CREATE TABLE intermediate_cas (
	id text PRIMARY KEY CHECK (cw_valid_id(id)),
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
	parent_ca_id text REFERENCES intermediate_cas (id) ON DELETE RESTRICT,
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	subject jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(subject) = 'object'),
	algorithm text NOT NULL,
	path_len_constraint integer CHECK (path_len_constraint >= 0),
	name_constraints jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(name_constraints) = 'array'),
	state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retiring', 'retired')),
	cert_pem text NOT NULL CHECK (char_length(cert_pem) BETWEEN 1 AND 65536),
	serial_number text NOT NULL CHECK (serial_number ~ '^[0-9a-f]{1,64}$'),
	not_before timestamptz NOT NULL,
	not_after timestamptz NOT NULL,
	ocsp_responder_url text CHECK (char_length(ocsp_responder_url) <= 1024),
	metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
	note text CHECK (char_length(note) <= 1024),
	created_at timestamptz NOT NULL DEFAULT now(),
	retired_at timestamptz,
	UNIQUE (issuer_id, name),
	CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);
CREATE INDEX intermediate_cas_parent ON intermediate_cas (parent_ca_id);

-- The CA an issuer signs with cannot change once it has issued: its
-- earlier certificates' CRL and OCSP answers must come from the same CA.
CREATE FUNCTION cw_issuer_ca_kept() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM issued_serials WHERE issuer_id = OLD.id) THEN
		RAISE EXCEPTION 'issuer % has issued certificates: its intermediate_id cannot change', OLD.id
			USING ERRCODE = 'restrict_violation';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER issuers_ca_kept BEFORE UPDATE ON issuers
	FOR EACH ROW WHEN ((OLD.config->>'intermediate_id') IS DISTINCT FROM (NEW.config->>'intermediate_id'))
	EXECUTE FUNCTION cw_issuer_ca_kept();

-- the store's read cache hears of its changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intermediate_cas
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
