-- Where notifications go, and which events go where.

-- A channel comes from certward.yml (source 'config': certward-notifier keeps
-- these rows in step with its configuration at start, and the API does not
-- change them) or from the API (source 'api'). config holds what may be
-- shown (SMTP host and port, TLS mode, sender, recipients, a URL's host);
-- sealed_secrets the rest (SMTP password, webhook URLs and HMAC keys, Slack
-- and Teams webhook URLs, PagerDuty routing keys, OpsGenie API keys) as one
-- JSON object sealed to the notifier's public key (notifier_keys): the api
-- can seal but never open them, the store and PostgreSQL only keep bytes.
CREATE TABLE notification_channels (
	id text PRIMARY KEY DEFAULT cw_new_id('nch') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	type text NOT NULL CHECK (type IN ('Email', 'Webhook', 'Slack', 'Teams', 'PagerDuty', 'OpsGenie')),
	source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'config')),
	config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
	sealed_secrets bytea CHECK (octet_length(sealed_secrets) <= 65536),
	secrets_key_id text CHECK (char_length(secrets_key_id) <= 128),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1,
	CHECK ((sealed_secrets IS NULL) = (secrets_key_id IS NULL))
);
CREATE TRIGGER notification_channels_touch BEFORE UPDATE ON notification_channels
	FOR EACH ROW EXECUTE FUNCTION cw_touch();

-- The notifier's public keys (X25519, for HPKE), published by
-- certward-notifier at start; id is the SHA-256 of the key (hex). The api
-- seals channel secrets to the newest.
CREATE TABLE notifier_keys (
	id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
	public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Routing: an event goes to a rule's channel when the event's type is in
-- event_types (empty: every type), its severity is at least min_severity,
-- and its certificate matches every scope given (renewal policy, team,
-- owner). to_owner sends an Email channel's message to the certificate
-- owner's address instead of the channel's recipients. digest holds the
-- matching events for the channel's daily digest instead of sending each.
CREATE TABLE notification_rules (
	id text PRIMARY KEY DEFAULT cw_new_id('nrl') CHECK (cw_valid_id(id)),
	name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
	channel_id text NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
	event_types text[] NOT NULL DEFAULT '{}' CHECK (cw_is_text_list(event_types) AND event_types <@ ARRAY[
		'ExpirationWarning', 'CertificateExpired', 'RenewalSuccess', 'RenewalFailure',
		'DeploymentSuccess', 'DeploymentFailure', 'PolicyViolation', 'Revocation',
		'ApprovalRequested', 'AgentOffline']),
	min_severity text NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
	renewal_policy_id text REFERENCES renewal_policies (id) ON DELETE CASCADE,
	team_id text REFERENCES teams (id) ON DELETE CASCADE,
	owner_id text REFERENCES owners (id) ON DELETE CASCADE,
	to_owner boolean NOT NULL DEFAULT false,
	digest boolean NOT NULL DEFAULT false,
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE INDEX notification_rules_channel_id ON notification_rules (channel_id);
CREATE TRIGGER notification_rules_touch BEFORE UPDATE ON notification_rules
	FOR EACH ROW EXECUTE FUNCTION cw_touch();

-- A delivery: one event (or one digest) to one channel and recipient. The
-- reference's columns stay; channel widens to the six channel types.
ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
	CHECK (channel IN ('Email', 'Webhook', 'Slack', 'Teams', 'PagerDuty', 'OpsGenie'));
ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check CHECK (type IN ('ExpirationWarning',
	'CertificateExpired', 'RenewalSuccess', 'RenewalFailure', 'DeploymentSuccess', 'DeploymentFailure',
	'PolicyViolation', 'Revocation', 'ApprovalRequested', 'AgentOffline', 'Digest'));
ALTER TABLE notifications
	ADD COLUMN channel_id text REFERENCES notification_channels (id) ON DELETE SET NULL,
	ADD COLUMN event_id text REFERENCES notification_events (id) ON DELETE RESTRICT,
	ADD COLUMN severity text NOT NULL DEFAULT 'info' CHECK (severity IN ('info', 'warning', 'critical')),
	ADD COLUMN subject text CHECK (char_length(subject) <= 998),
	ADD COLUMN digest boolean NOT NULL DEFAULT false;
-- an event reaches a channel's recipient once
CREATE UNIQUE INDEX notifications_event_channel ON notifications (event_id, channel_id, recipient)
	WHERE event_id IS NOT NULL;
CREATE INDEX notifications_channel_due ON notifications (channel_id, next_retry_at)
	WHERE status IN ('pending', 'failed');

CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON notification_channels
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON notifier_keys
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON notification_rules
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
