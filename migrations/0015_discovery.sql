-- Certificate discovery (docs/agent.md, "Discovery"): what agents find in
-- the directories they scan, reported with POST
-- /api/v1/agents/{id}/discoveries (store operation discovery.report).
--
-- discovery_scans: one row per report, with its counts and the first of
-- its errors. discovered_certificates: one row per certificate, agent and
-- path (a certificate found in two places, or by two agents, is two rows);
-- a later report of the same one updates last_seen_at and the scan it was
-- last seen in, and keeps its triage status: Unmanaged until an operator
-- claims it for a managed certificate (Managed) or dismisses it.
-- discovery_uploads: the parts of a report too large for one store call,
-- held until the report's last call takes them (or for an hour).
--
-- The bounds are the api's (workers/api/discovery.c); these CHECKs are the
-- backstop.

-- A one-dimensional text[] without NULL elements, at most max_items of
-- 1 to max_len bytes each.
CREATE FUNCTION cw_is_bounded_text_list(a text[], max_items integer, max_len integer) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
	RETURN coalesce(array_ndims(a), 1) = 1 AND coalesce(cardinality(a), 0) <= max_items
		AND NOT EXISTS (SELECT 1 FROM unnest(a) AS e(v)
				 WHERE v IS NULL OR octet_length(v) NOT BETWEEN 1 AND max_len);
END
$$;

CREATE TABLE discovery_scans (
	id text PRIMARY KEY DEFAULT cw_new_id('dscan') CHECK (cw_valid_id(id)),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	directories text[] NOT NULL DEFAULT '{}' CHECK (cw_is_bounded_text_list(directories, 32, 1024)),
	certificates_found integer NOT NULL DEFAULT 0 CHECK (certificates_found BETWEEN 0 AND 5000),
	certificates_new integer NOT NULL DEFAULT 0 CHECK (certificates_new BETWEEN 0 AND certificates_found),
	errors_count integer NOT NULL DEFAULT 0 CHECK (errors_count BETWEEN 0 AND 1000),
	-- the first errors, as many as fit 16 KiB; errors_count counts them all
	errors text[] NOT NULL DEFAULT '{}' CHECK (cw_is_bounded_text_list(errors, 1000, 1024)
		AND cardinality(errors) <= errors_count),
	scan_duration_ms bigint NOT NULL DEFAULT 0 CHECK (scan_duration_ms BETWEEN 0 AND 604800000),
	started_at timestamptz NOT NULL,
	completed_at timestamptz NOT NULL,
	CHECK (completed_at >= started_at)
);
CREATE INDEX discovery_scans_agent ON discovery_scans (agent_id, started_at);
CREATE INDEX discovery_scans_started ON discovery_scans (started_at, id);

CREATE TABLE discovered_certificates (
	id text PRIMARY KEY DEFAULT cw_new_id('dcert') CHECK (cw_valid_id(id)),
	fingerprint_sha256 text NOT NULL CHECK (fingerprint_sha256 ~ '^[0-9a-f]{64}$'),
	common_name text NOT NULL DEFAULT '' CHECK (octet_length(common_name) <= 1024),
	sans text[] NOT NULL DEFAULT '{}' CHECK (cw_is_bounded_text_list(sans, 1000, 1024)),
	serial_number text CHECK (serial_number ~ '^[0-9a-f]{1,128}$'),
	issuer_dn text NOT NULL DEFAULT '' CHECK (octet_length(issuer_dn) <= 4096),
	subject_dn text NOT NULL DEFAULT '' CHECK (octet_length(subject_dn) <= 4096),
	not_before timestamptz,
	not_after timestamptz,
	key_algorithm text CHECK (key_algorithm IN ('RSA', 'ECDSA', 'Ed25519', 'Other')),
	key_size integer CHECK (key_size BETWEEN 0 AND 65536),
	is_ca boolean NOT NULL DEFAULT false,
	pem_data text NOT NULL CHECK (octet_length(pem_data) BETWEEN 1 AND 32768),
	-- at most 2048 bytes: the unique index's entry must stay below
	-- PostgreSQL's limit for one (2704 bytes)
	source_path text NOT NULL CHECK (octet_length(source_path) BETWEEN 2 AND 2048 AND source_path ~ '^/'),
	source_format text NOT NULL CHECK (source_format IN ('PEM', 'DER')),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	discovery_scan_id text REFERENCES discovery_scans (id) ON DELETE RESTRICT,
	managed_certificate_id text REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	status text NOT NULL DEFAULT 'Unmanaged' CHECK (status IN ('Unmanaged', 'Managed', 'Dismissed')),
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1,
	-- claimed: linked to exactly one managed certificate; otherwise none
	CHECK ((status = 'Managed') = (managed_certificate_id IS NOT NULL)),
	CHECK (last_seen_at >= first_seen_at),
	UNIQUE (fingerprint_sha256, agent_id, source_path)
);
-- the list filters of GET /api/v1/discovered-certificates, and its default order
CREATE INDEX discovered_certificates_agent ON discovered_certificates (agent_id, status);
CREATE INDEX discovered_certificates_status ON discovered_certificates (status);
CREATE INDEX discovered_certificates_scan ON discovered_certificates (discovery_scan_id);
CREATE INDEX discovered_certificates_managed ON discovered_certificates (managed_certificate_id)
	WHERE managed_certificate_id IS NOT NULL;
CREATE INDEX discovered_certificates_not_after ON discovered_certificates (not_after);

-- (parts go with their agent: they are nobody's record)
CREATE TABLE discovery_uploads (
	scan_id text NOT NULL CHECK (cw_valid_id(scan_id)),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	part integer NOT NULL CHECK (part BETWEEN 0 AND 5000),
	certificates jsonb NOT NULL CHECK (jsonb_typeof(certificates) = 'array'
		AND jsonb_array_length(certificates) BETWEEN 1 AND 5000),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scan_id, part)
);
CREATE INDEX discovery_uploads_created ON discovery_uploads (created_at);

CREATE TRIGGER discovered_certificates_touch BEFORE UPDATE ON discovered_certificates
	FOR EACH ROW EXECUTE FUNCTION cw_touch();

-- the store's read cache hears of their changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON discovery_scans
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON discovered_certificates
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON discovery_uploads
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
