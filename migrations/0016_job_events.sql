-- Events worth telling someone about (expiry ahead, a renewal that failed, an
-- approval waiting, ...). Whoever notices one (the scheduler's loops, the
-- job state changes) records it here with cw_notify(); certward-notifier
-- routes each event to the channels whose rules match it (a delivery per
-- channel, in notifications) and marks it routed. dedup_key makes an event
-- once-only: "expiry:<version id>:<days>" is recorded once per certificate
-- version and threshold, however often the loop that notices it runs.
CREATE TABLE notification_events (
	id text PRIMARY KEY DEFAULT cw_new_id('nev') CHECK (cw_valid_id(id)),
	type text NOT NULL CHECK (type IN ('ExpirationWarning', 'CertificateExpired', 'RenewalSuccess',
		'RenewalFailure', 'DeploymentSuccess', 'DeploymentFailure', 'PolicyViolation', 'Revocation',
		'ApprovalRequested', 'AgentOffline')),
	severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
	certificate_id text REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	job_id text REFERENCES jobs (id) ON DELETE RESTRICT,
	dedup_key text NOT NULL UNIQUE CHECK (char_length(dedup_key) BETWEEN 1 AND 512),
	subject text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 998),
	body text NOT NULL CHECK (char_length(body) <= 65536),
	details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
	routed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_events_unrouted ON notification_events (created_at, id) WHERE routed_at IS NULL;
CREATE INDEX notification_events_certificate_id ON notification_events (certificate_id);

-- Records an event; the new event's id, or NULL when an event with that
-- dedup_key exists already. Wakes the notifier (LISTEN cw_notification_events).
CREATE FUNCTION cw_notify(p_type text, p_severity text, p_certificate_id text, p_job_id text,
	p_dedup_key text, p_subject text, p_body text, p_details jsonb DEFAULT '{}')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	new_id text;
BEGIN
	INSERT INTO notification_events (type, severity, certificate_id, job_id, dedup_key, subject, body,
		details)
	VALUES (p_type, p_severity, p_certificate_id, p_job_id, p_dedup_key, left(p_subject, 998),
		left(p_body, 65536), coalesce(p_details, '{}'))
	ON CONFLICT (dedup_key) DO NOTHING
	RETURNING id INTO new_id;
	IF new_id IS NOT NULL THEN
		PERFORM pg_notify('cw_notification_events', new_id);
	END IF;
	RETURN new_id;
END
$$;

-- Who asked for a job: the actor of the API request that made it (as in
-- audit_events.actor: an API key's or an agent's id), or "scheduler" for
-- the renewals the scheduler starts by itself. The two-person rule of approvals compares it
-- with the approver.
ALTER TABLE jobs ADD COLUMN requested_by text CHECK (char_length(requested_by) BETWEEN 1 AND 255);

CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON notification_events
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
