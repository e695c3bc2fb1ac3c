-- The inventory behind /api/v1 (issue 4): teams, owners, issuers, certificate
-- profiles, renewal policies, managed certificates and their versions and
-- targets, agents, deployment targets, agent groups and their members,
-- compliance policies and their violations, jobs, notifications.
--
-- Conventions (docs/architecture.md, "Data model"):
--  * Column names are the JSON field names of the certctl-compatible API
--    (snake_case, same meaning); enums are CHECK constraints listing the
--    values exactly as the API spells them (case matters).
--  * Ids are text: human-readable slugs a client may choose ("mc-api-prod",
--    "t-platform"), checked by cw_valid_id(); where the server chooses, the
--    default is a type prefix, '-', and 32 random hex digits (cw_new_id).
--  * Mutable tables carry created_at, updated_at and row_version; the trigger
--    cw_touch() increments row_version and sets updated_at = now() on every
--    UPDATE, and keeps created_at, whatever the statement sets. Optimistic
--    concurrency: UPDATE ... WHERE id = $1 AND row_version = $2.
--  * Foreign keys are ON DELETE RESTRICT unless noted; certificates and agents
--    are never deleted but archived (archived_at) or retired (retired_at).
--  * Maps (tags) are jsonb objects of strings; lists of names are text[]
--    without NULL elements; type-specific settings are jsonb objects.

-- ---- helpers ----

-- A resource id: 1 to 128 characters of [A-Za-z0-9._-], starting with a
-- letter or digit (safe in a URL path segment and in a log line).
CREATE FUNCTION cw_valid_id(id text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'
$$;

-- A server-chosen id: prefix-<32 hex digits from gen_random_uuid()>.
CREATE FUNCTION cw_new_id(prefix text) RETURNS text
	LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
	SELECT prefix || '-' || replace(gen_random_uuid()::text, '-', '')
$$;

-- A jsonb object whose values are all strings ({"env": "prod"}).
CREATE FUNCTION cw_is_string_map(j jsonb) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN jsonb_typeof(j) = 'object'
		THEN NOT EXISTS (SELECT 1 FROM jsonb_each(j) AS e WHERE jsonb_typeof(e.value) <> 'string')
		ELSE false END
$$;

-- A one-dimensional text[] (or empty) without NULL elements.
CREATE FUNCTION cw_is_text_list(a text[]) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT coalesce(array_ndims(a), 1) = 1 AND array_position(a, NULL) IS NULL
$$;

-- CertificateProfile.allowed_key_algorithms: an array of KeyAlgorithmRule,
-- {"algorithm": "RSA"|"ECDSA"|"Ed25519", "min_size": integer >= 0 (optional)}
-- and no other member.
CREATE FUNCTION cw_is_key_rules(j jsonb) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN jsonb_typeof(j) = 'array'
		THEN NOT EXISTS (
			SELECT 1 FROM jsonb_array_elements(j) AS r(rule)
			 WHERE CASE WHEN jsonb_typeof(r.rule) <> 'object' THEN true
				ELSE NOT coalesce(r.rule->>'algorithm' IN ('RSA', 'ECDSA', 'Ed25519'), false)
				  OR (r.rule ? 'min_size' AND NOT (jsonb_typeof(r.rule->'min_size') = 'number'
					AND (r.rule->>'min_size') ~ '^[0-9]{1,6}$'))
				  OR EXISTS (SELECT 1 FROM jsonb_object_keys(r.rule) AS k(name)
					      WHERE k.name NOT IN ('algorithm', 'min_size')) END)
		ELSE false END
$$;

-- BEFORE UPDATE on every mutable table: the row's version and update time
-- move whatever the statement says; its creation time stays.
CREATE FUNCTION cw_touch() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	NEW.row_version := OLD.row_version + 1;
	NEW.updated_at := now();
	NEW.created_at := OLD.created_at;
	RETURN NEW;
END
$$;

-- ---- organisation ----

CREATE TABLE teams (
	id text PRIMARY KEY DEFAULT cw_new_id('t') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 4096),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);

CREATE TABLE owners (
	id text PRIMARY KEY DEFAULT cw_new_id('o') CHECK (cw_valid_id(id)),
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	email text CHECK (char_length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
	team_id text REFERENCES teams (id) ON DELETE RESTRICT,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE INDEX owners_team_id ON owners (team_id);

-- ---- issuance configuration ----

-- config holds the type-specific settings that may be shown (redacted by the
-- api where needed); secret_config holds the secrets (ACME EAB keys, API
-- tokens, ...) as one blob encrypted by the application before it reaches
-- the store (AEAD, key outside the database). The store and PostgreSQL never
-- decrypt it and the api never returns it.
CREATE TABLE issuers (
	id text PRIMARY KEY DEFAULT cw_new_id('iss') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	type text NOT NULL CHECK (type IN ('ACME', 'GenericCA', 'StepCA', 'VaultPKI', 'DigiCert',
		'Sectigo', 'GoogleCAS', 'AWSACMPCA', 'Entrust', 'GlobalSign', 'EJBCA')),
	config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
	secret_config bytea CHECK (octet_length(secret_config) <= 65536),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
COMMENT ON COLUMN issuers.secret_config IS
	'secrets encrypted at rest by the application; never decrypted by the store, never returned';

CREATE TABLE certificate_profiles (
	id text PRIMARY KEY DEFAULT cw_new_id('prof') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 4096),
	allowed_key_algorithms jsonb NOT NULL DEFAULT '[]' CHECK (cw_is_key_rules(allowed_key_algorithms)),
	max_ttl_seconds integer CHECK (max_ttl_seconds > 0),
	allowed_ekus text[] NOT NULL DEFAULT '{}' CHECK (cw_is_text_list(allowed_ekus) AND allowed_ekus
		<@ ARRAY['serverAuth', 'clientAuth', 'codeSigning', 'emailProtection', 'timeStamping']),
	required_san_patterns text[] NOT NULL DEFAULT '{}' CHECK (cw_is_text_list(required_san_patterns)),
	spiffe_uri_pattern text,
	allow_short_lived boolean NOT NULL DEFAULT false,
	requires_approval boolean NOT NULL DEFAULT false,
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);

-- Ranges and defaults as in RenewalPolicy / RenewalPolicyCreateRequest;
-- max_retries has no default (the reference: "0 is a valid operator choice").
CREATE TABLE renewal_policies (
	id text PRIMARY KEY DEFAULT cw_new_id('rp') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	renewal_window_days integer NOT NULL DEFAULT 30 CHECK (renewal_window_days BETWEEN 1 AND 365),
	auto_renew boolean NOT NULL DEFAULT true,
	max_retries integer NOT NULL CHECK (max_retries BETWEEN 0 AND 10),
	retry_interval_seconds integer NOT NULL DEFAULT 3600
		CHECK (retry_interval_seconds BETWEEN 60 AND 86400),
	alert_thresholds_days integer[] NOT NULL DEFAULT '{30,14,7,0}' CHECK (
		coalesce(array_ndims(alert_thresholds_days), 1) = 1
		AND array_position(alert_thresholds_days, NULL) IS NULL
		AND cardinality(alert_thresholds_days) <= 32
		AND 0 <= ALL (alert_thresholds_days) AND 365 >= ALL (alert_thresholds_days)),
	certificate_profile_id text REFERENCES certificate_profiles (id) ON DELETE RESTRICT,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);

-- ---- agents and where certificates go ----

-- Retiring is a soft delete: retired_at set (the row, its status and its
-- links stay); retired_reason only with a forced (cascading) retire. An
-- agent's name is unique among the agents not retired.
CREATE TABLE agents (
	id text PRIMARY KEY DEFAULT cw_new_id('agent') CHECK (cw_valid_id(id)),
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	hostname text CHECK (char_length(hostname) <= 255),
	status text NOT NULL DEFAULT 'Offline' CHECK (status IN ('Online', 'Offline', 'Degraded')),
	last_heartbeat_at timestamptz,
	registered_at timestamptz NOT NULL DEFAULT now(),
	os text CHECK (char_length(os) <= 64),
	architecture text CHECK (char_length(architecture) <= 64),
	ip_address inet,
	version text CHECK (char_length(version) <= 64),
	retired_at timestamptz,
	retired_reason text CHECK (char_length(retired_reason) BETWEEN 1 AND 1024),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1,
	CHECK (retired_reason IS NULL OR retired_at IS NOT NULL)
);
CREATE UNIQUE INDEX agents_name_active ON agents (name) WHERE retired_at IS NULL;
CREATE INDEX agents_active ON agents (created_at, id) WHERE retired_at IS NULL;
CREATE INDEX agents_retired ON agents (retired_at) WHERE retired_at IS NOT NULL;

-- A target is retired with its agent (forced retire); its name is unique per
-- agent among the targets not retired.
CREATE TABLE deployment_targets (
	id text PRIMARY KEY DEFAULT cw_new_id('tgt') CHECK (cw_valid_id(id)),
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	type text NOT NULL CHECK (type IN ('NGINX', 'Apache', 'HAProxy', 'Traefik', 'Caddy', 'Envoy',
		'Postfix', 'Dovecot', 'IIS', 'F5', 'SSH', 'WinCertStore', 'JavaKeystore', 'KubernetesSecrets')),
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
	enabled boolean NOT NULL DEFAULT true,
	retired_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE INDEX deployment_targets_agent_id ON deployment_targets (agent_id);
CREATE UNIQUE INDEX deployment_targets_name_active ON deployment_targets (agent_id, name)
	WHERE retired_at IS NULL;

-- Dynamic groups (match_* criteria) plus manually included members.
CREATE TABLE agent_groups (
	id text PRIMARY KEY DEFAULT cw_new_id('agrp') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 4096),
	match_os text CHECK (char_length(match_os) <= 64),
	match_architecture text CHECK (char_length(match_architecture) <= 64),
	match_ip_cidr cidr,
	match_version text CHECK (char_length(match_version) <= 64),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);

-- Deleting a group deletes its membership rows (they mean nothing without it).
CREATE TABLE agent_group_members (
	agent_group_id text NOT NULL REFERENCES agent_groups (id) ON DELETE CASCADE,
	agent_id text NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (agent_group_id, agent_id)
);
CREATE INDEX agent_group_members_agent_id ON agent_group_members (agent_id);

-- ---- certificates ----

-- Deleting a certificate archives it: status 'Archived' and archived_at set,
-- together (CHECK). revoked_at/revocation_reason stay once set.
CREATE TABLE managed_certificates (
	id text PRIMARY KEY DEFAULT cw_new_id('mc') CHECK (cw_valid_id(id)),
	name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
	common_name text NOT NULL CHECK (char_length(common_name) BETWEEN 1 AND 255),
	sans text[] NOT NULL DEFAULT '{}' CHECK (cw_is_text_list(sans) AND cardinality(sans) <= 1000),
	environment text CHECK (char_length(environment) BETWEEN 1 AND 64),
	owner_id text NOT NULL REFERENCES owners (id) ON DELETE RESTRICT,
	team_id text NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
	renewal_policy_id text NOT NULL REFERENCES renewal_policies (id) ON DELETE RESTRICT,
	certificate_profile_id text REFERENCES certificate_profiles (id) ON DELETE RESTRICT,
	status text NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'Active', 'Expiring',
		'Expired', 'RenewalInProgress', 'Failed', 'Revoked', 'Archived')),
	expires_at timestamptz,
	tags jsonb NOT NULL DEFAULT '{}' CHECK (cw_is_string_map(tags)),
	last_renewal_at timestamptz,
	last_deployment_at timestamptz,
	revoked_at timestamptz,
	revocation_reason text CHECK (revocation_reason IN ('unspecified', 'keyCompromise',
		'caCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation',
		'certificateHold', 'privilegeWithdrawn')),
	archived_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1,
	CHECK ((status = 'Archived') = (archived_at IS NOT NULL)),
	CHECK (status <> 'Revoked' OR revoked_at IS NOT NULL),
	CHECK (revocation_reason IS NULL OR revoked_at IS NOT NULL)
);
-- the list filters of GET /api/v1/certificates, and its default order
CREATE INDEX managed_certificates_status ON managed_certificates (status);
CREATE INDEX managed_certificates_environment ON managed_certificates (environment);
CREATE INDEX managed_certificates_owner_id ON managed_certificates (owner_id);
CREATE INDEX managed_certificates_team_id ON managed_certificates (team_id);
CREATE INDEX managed_certificates_issuer_id ON managed_certificates (issuer_id);
CREATE INDEX managed_certificates_renewal_policy_id ON managed_certificates (renewal_policy_id);
CREATE INDEX managed_certificates_profile_id ON managed_certificates (certificate_profile_id);
CREATE INDEX managed_certificates_expires_at ON managed_certificates (expires_at);
CREATE INDEX managed_certificates_created ON managed_certificates (created_at, id);

-- ManagedCertificate.target_ids. A certificate's rows go with it; a target
-- still listed by a certificate cannot be deleted.
CREATE TABLE certificate_targets (
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
	target_id text NOT NULL REFERENCES deployment_targets (id) ON DELETE RESTRICT,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (certificate_id, target_id)
);
CREATE INDEX certificate_targets_target_id ON certificate_targets (target_id);

-- One row per issuance: history, never updated (trigger below).
-- fingerprint_sha256: lowercase hex of the DER's SHA-256.
CREATE TABLE certificate_versions (
	id text PRIMARY KEY DEFAULT cw_new_id('cv') CHECK (cw_valid_id(id)),
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	serial_number text NOT NULL CHECK (serial_number ~ '^[0-9A-Fa-f:]{1,128}$'),
	not_before timestamptz NOT NULL,
	not_after timestamptz NOT NULL,
	fingerprint_sha256 text NOT NULL CHECK (fingerprint_sha256 ~ '^[0-9a-f]{64}$'),
	pem_chain text NOT NULL CHECK (char_length(pem_chain) BETWEEN 1 AND 1048576),
	csr_pem text CHECK (char_length(csr_pem) <= 262144),
	key_algorithm text CHECK (key_algorithm IN ('RSA', 'ECDSA', 'Ed25519')),
	key_size integer CHECK (key_size > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (not_after > not_before),
	UNIQUE (certificate_id, serial_number)
);
CREATE INDEX certificate_versions_certificate ON certificate_versions (certificate_id, created_at);
CREATE INDEX certificate_versions_fingerprint ON certificate_versions (fingerprint_sha256);

CREATE FUNCTION cw_refuse_update() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	RAISE EXCEPTION '% rows are read-only history', TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER certificate_versions_read_only BEFORE UPDATE ON certificate_versions
	FOR EACH STATEMENT EXECUTE FUNCTION cw_refuse_update();

-- ---- compliance policies ----

-- PolicyRule (GET /api/v1/policies, "pol-" ids).
CREATE TABLE policy_rules (
	id text PRIMARY KEY DEFAULT cw_new_id('pol') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	type text NOT NULL CHECK (type IN ('AllowedIssuers', 'AllowedDomains', 'RequiredMetadata',
		'AllowedEnvironments', 'RenewalLeadTime', 'CertificateLifetime')),
	config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
	enabled boolean NOT NULL DEFAULT true,
	severity text NOT NULL DEFAULT 'Warning' CHECK (severity IN ('Warning', 'Error', 'Critical')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);

-- Findings of a rule: deleting the rule (204 in the reference, no 409)
-- deletes its violations.
CREATE TABLE policy_violations (
	id text PRIMARY KEY DEFAULT cw_new_id('pv') CHECK (cw_valid_id(id)),
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	rule_id text NOT NULL REFERENCES policy_rules (id) ON DELETE CASCADE,
	message text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 4096),
	severity text NOT NULL CHECK (severity IN ('Warning', 'Error', 'Critical')),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policy_violations_rule ON policy_violations (rule_id, created_at);
CREATE INDEX policy_violations_certificate_id ON policy_violations (certificate_id);

-- ---- work ----

-- agent_id: the agent that runs the job (AgentDependencyCounts.pending_jobs
-- counts jobs by agent), when one does.
CREATE TABLE jobs (
	id text PRIMARY KEY DEFAULT cw_new_id('job') CHECK (cw_valid_id(id)),
	type text NOT NULL CHECK (type IN ('Issuance', 'Renewal', 'Deployment', 'Validation')),
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	target_id text REFERENCES deployment_targets (id) ON DELETE RESTRICT,
	agent_id text REFERENCES agents (id) ON DELETE RESTRICT,
	status text NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'AwaitingCSR',
		'AwaitingApproval', 'Running', 'Completed', 'Failed', 'Cancelled')),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
	last_error text CHECK (char_length(last_error) <= 4096),
	scheduled_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	completed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE INDEX jobs_status_scheduled ON jobs (status, scheduled_at);
CREATE INDEX jobs_type ON jobs (type);
CREATE INDEX jobs_certificate_id ON jobs (certificate_id);
CREATE INDEX jobs_target_id ON jobs (target_id) WHERE target_id IS NOT NULL;
CREATE INDEX jobs_agent_status ON jobs (agent_id, status) WHERE agent_id IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at, id);

-- NotificationEvent.
CREATE TABLE notifications (
	id text PRIMARY KEY DEFAULT cw_new_id('notif') CHECK (cw_valid_id(id)),
	type text NOT NULL CHECK (type IN ('ExpirationWarning', 'RenewalSuccess', 'RenewalFailure',
		'DeploymentSuccess', 'DeploymentFailure', 'PolicyViolation', 'Revocation')),
	certificate_id text REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	channel text NOT NULL CHECK (channel IN ('Email', 'Webhook', 'Slack')),
	recipient text NOT NULL CHECK (char_length(recipient) BETWEEN 1 AND 2048),
	message text NOT NULL CHECK (char_length(message) <= 65536),
	sent_at timestamptz,
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'sent', 'failed', 'dead', 'read')),
	error text CHECK (char_length(error) <= 4096),
	retry_count integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
	next_retry_at timestamptz,
	last_error text CHECK (char_length(last_error) <= 4096),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE INDEX notifications_status ON notifications (status, created_at);
CREATE INDEX notifications_certificate_id ON notifications (certificate_id);
CREATE INDEX notifications_retry ON notifications (next_retry_at)
	WHERE status IN ('pending', 'failed');

-- ---- row versions ----

CREATE TRIGGER teams_touch BEFORE UPDATE ON teams FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER owners_touch BEFORE UPDATE ON owners FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER issuers_touch BEFORE UPDATE ON issuers FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER certificate_profiles_touch BEFORE UPDATE ON certificate_profiles
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER renewal_policies_touch BEFORE UPDATE ON renewal_policies
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER agents_touch BEFORE UPDATE ON agents FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER deployment_targets_touch BEFORE UPDATE ON deployment_targets
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER agent_groups_touch BEFORE UPDATE ON agent_groups
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER managed_certificates_touch BEFORE UPDATE ON managed_certificates
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER policy_rules_touch BEFORE UPDATE ON policy_rules
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER notifications_touch BEFORE UPDATE ON notifications
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
