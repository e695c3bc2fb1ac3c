-- Approvals (docs/renewal.md, "Approvals"): an issuance or a renewal of a
-- certificate whose profile or renewal policy requires approval waits, in
-- AwaitingApproval, until a principal other than the one who asked for it
-- approves (the job carries on where it would have started) or rejects it
-- (the job is cancelled). One approval request per such job, the
-- reference's ApprovalRequest; once decided it does not change again, and the
-- audit trail keeps who decided and why.

ALTER TABLE renewal_policies ADD COLUMN requires_approval boolean NOT NULL DEFAULT false;

CREATE TABLE approval_requests (
	id text PRIMARY KEY DEFAULT cw_new_id('ar') CHECK (cw_valid_id(id)),
	certificate_id text NOT NULL REFERENCES managed_certificates (id) ON DELETE RESTRICT,
	-- checked at commit: the request is recorded by the job's BEFORE INSERT
	-- trigger, before the job's row exists
	job_id text NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED,
	profile_id text REFERENCES certificate_profiles (id) ON DELETE SET NULL,
	requested_by text NOT NULL CHECK (char_length(requested_by) BETWEEN 1 AND 255),
	state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
	-- the status the job would have had without the approval (Pending, or
	-- AwaitingCSR for an agent's job); approval resumes it there
	resume_status text NOT NULL CHECK (resume_status IN ('Pending', 'AwaitingCSR')),
	decided_by text CHECK (char_length(decided_by) BETWEEN 1 AND 255),
	decided_at timestamptz,
	decision_note text CHECK (char_length(decision_note) <= 1024),
	metadata jsonb NOT NULL DEFAULT '{}' CHECK (cw_is_string_map(metadata)),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1,
	CHECK ((state = 'pending') = (decided_at IS NULL)),
	CHECK (state IN ('approved', 'rejected') = (decided_by IS NOT NULL)),
	-- the two-person rule, as a backstop of the api's check
	CHECK (decided_by IS DISTINCT FROM requested_by)
);
-- the list filters of GET /api/v1/approvals, and its default order
CREATE INDEX approval_requests_state ON approval_requests (state, created_at, id);
CREATE INDEX approval_requests_certificate_id ON approval_requests (certificate_id);
CREATE INDEX approval_requests_requested_by ON approval_requests (requested_by);
CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
CREATE TRIGGER approval_requests_touch BEFORE UPDATE ON approval_requests
	FOR EACH ROW EXECUTE FUNCTION cw_touch();
-- the store's read cache hears of its changes (0007_change_notify)
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval_requests
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();

-- A new Issuance or Renewal job of a certificate whose profile (its own, or
-- its renewal policy's) or renewal policy requires approval starts in
-- AwaitingApproval, with its approval request; whoever made the job
-- (the api with requested_by = its actor, the scheduler with 'scheduler')
-- needs to do nothing more.
CREATE FUNCTION cw_jobs_approval_gate() RETURNS trigger
	LANGUAGE plpgsql
AS $$
DECLARE
	c record;
BEGIN
	IF NEW.type NOT IN ('Issuance', 'Renewal') OR NEW.status NOT IN ('Pending', 'AwaitingCSR',
		'AwaitingApproval') THEN
		RETURN NEW;
	END IF;
	SELECT m.common_name, m.issuer_id, coalesce(m.certificate_profile_id, p.certificate_profile_id) AS profile_id,
		coalesce(f.requires_approval, false) AS by_profile, p.requires_approval AS by_policy
	INTO c
	FROM managed_certificates m
	JOIN renewal_policies p ON p.id = m.renewal_policy_id
	LEFT JOIN certificate_profiles f ON f.id = coalesce(m.certificate_profile_id, p.certificate_profile_id)
	WHERE m.id = NEW.certificate_id;
	IF NOT FOUND OR NOT (c.by_profile OR c.by_policy) THEN
		RETURN NEW;
	END IF;
	INSERT INTO approval_requests (certificate_id, job_id, profile_id, requested_by, resume_status, metadata)
	VALUES (NEW.certificate_id, NEW.id, c.profile_id, coalesce(NEW.requested_by, 'system'),
		CASE WHEN NEW.status = 'AwaitingCSR' THEN 'AwaitingCSR' ELSE 'Pending' END,
		jsonb_build_object('common_name', c.common_name, 'issuer_id', c.issuer_id, 'job_type', NEW.type,
			'required_by', CASE WHEN c.by_profile THEN 'profile' ELSE 'renewal_policy' END));
	NEW.status := 'AwaitingApproval';
	RETURN NEW;
END
$$;
CREATE TRIGGER jobs_approval_gate BEFORE INSERT ON jobs
	FOR EACH ROW EXECUTE FUNCTION cw_jobs_approval_gate();

-- The ApprovalRequested event, once the job's row exists (the event
-- references it).
CREATE FUNCTION cw_jobs_approval_requested() RETURNS trigger
	LANGUAGE plpgsql
AS $$
DECLARE
	a record;
BEGIN
	SELECT r.id, r.requested_by, r.metadata INTO a FROM approval_requests r WHERE r.job_id = NEW.id;
	IF FOUND THEN
		PERFORM cw_notify('ApprovalRequested', 'warning', NEW.certificate_id, NEW.id, 'approval:' || a.id,
			format('Approval needed: %s of %s', lower(NEW.type), a.metadata->>'common_name'),
			format('%s asked for a %s of certificate %s (%s). It waits for the approval of another '
				'principal: POST /api/v1/approvals/%s/approve or /reject.', a.requested_by,
				lower(NEW.type), NEW.certificate_id, a.metadata->>'common_name', a.id),
			jsonb_build_object('approval_id', a.id, 'requested_by', a.requested_by, 'job_type', NEW.type));
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_approval_requested AFTER INSERT ON jobs
	FOR EACH ROW WHEN (NEW.status = 'AwaitingApproval') EXECUTE FUNCTION cw_jobs_approval_requested();

-- A job that leaves AwaitingApproval without a decision (cancelled, its
-- agent retired) takes its pending request with it: expired.
CREATE FUNCTION cw_jobs_approval_expire() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	UPDATE approval_requests SET state = 'expired', decided_at = now()
	WHERE job_id = NEW.id AND state = 'pending';
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_approval_expire AFTER UPDATE OF status ON jobs
	FOR EACH ROW WHEN (OLD.status = 'AwaitingApproval' AND NEW.status <> 'AwaitingApproval')
	EXECUTE FUNCTION cw_jobs_approval_expire();
