-- Jobs (docs/renewal.md "Jobs"): the state machine, enforced here for every
-- statement that changes a job, whoever runs it (the api's routes, an
-- agent's reports, the scheduler); retries with backoff; the outcome's
-- events.
--
-- claimed_by: the scheduler (node and process) that took the job to run
-- it, kept once the job ends (who ran it) and cleared when it waits again;
-- a job Running for longer than scheduler.job_timeout is failed by the
-- timeout loop, so a dead node's claims come back.
ALTER TABLE jobs ADD COLUMN claimed_by text CHECK (char_length(claimed_by) BETWEEN 1 AND 128);

-- what dispatch looks for: due Pending jobs
CREATE INDEX jobs_due ON jobs (scheduled_at, id) WHERE status = 'Pending';
-- what the timeout loop looks for
CREATE INDEX jobs_running ON jobs (status, started_at) WHERE status IN ('Running', 'AwaitingCSR');

-- The allowed status changes. A job keeps its status or moves along one of
-- these; Completed, Failed and Cancelled are final.
CREATE FUNCTION cw_job_transition_allowed(from_status text, to_status text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT from_status = to_status OR (from_status, to_status) IN (
		('Pending', 'Running'),            -- claimed by a scheduler (or handed to its agent)
		('Pending', 'AwaitingApproval'),   -- held for approval
		('Pending', 'Cancelled'),
		('AwaitingApproval', 'Pending'),   -- approved
		('AwaitingApproval', 'AwaitingCSR'), -- approved, for an agent to send a CSR
		('AwaitingApproval', 'Cancelled'), -- rejected
		('AwaitingCSR', 'Running'),        -- the agent's CSR is being signed
		('AwaitingCSR', 'Failed'),
		('AwaitingCSR', 'Cancelled'),
		('Running', 'Completed'),
		('Running', 'Failed'),
		('Running', 'Cancelled'),
		('Running', 'Pending'),            -- a retry
		('Running', 'AwaitingCSR'))        -- a retry of an agent's renewal
$$;

-- The delay before retry number n (n >= 1) of a job whose renewal policy
-- retries every base seconds: base * 2^(n-1), at most a day, then a random
-- +-25% so that jobs that failed together do not come back together.
CREATE FUNCTION cw_job_backoff(base integer, n integer) RETURNS interval
	LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
	SELECT make_interval(secs => least(greatest(base, 1)::double precision
		* power(2, least(greatest(n, 1) - 1, 20)), 86400) * (0.75 + 0.5 * random()))
$$;

-- What a certificate's expiry says its status is, once no renewal is under
-- way: Expired, Expiring (inside its policy's renewal window), Active, or
-- Failed when it has no certificate yet.
CREATE FUNCTION cw_certificate_status_by_expiry(expires_at timestamptz, window_days integer)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN expires_at IS NULL THEN 'Failed'
		WHEN expires_at <= now() THEN 'Expired'
		WHEN expires_at <= now() + make_interval(days => coalesce(window_days, 30)) THEN 'Expiring'
		ELSE 'Active' END
$$;

-- BEFORE INSERT: an issuance, renewal or deployment job gets its attempts
-- from the certificate's renewal policy (max_retries + 1).
CREATE FUNCTION cw_job_inserted() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	IF NEW.type IN ('Issuance', 'Renewal', 'Deployment') THEN
		SELECT least(greatest(p.max_retries + 1, 1), 100) INTO NEW.max_attempts
		  FROM managed_certificates m JOIN renewal_policies p ON p.id = m.renewal_policy_id
		 WHERE m.id = NEW.certificate_id;
		NEW.max_attempts := coalesce(NEW.max_attempts, 3);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER jobs_inserted BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION cw_job_inserted();

-- BEFORE UPDATE: refuses a status change the table above does not allow
-- (SQLSTATE 23514, like the status column's CHECK). A job set Failed with
-- attempts left is retried instead: back to Pending (or AwaitingCSR for an
-- agent's renewal) at now + backoff, its error kept in last_error. Final
-- statuses get completed_at; a job waiting again loses its claim.
CREATE FUNCTION cw_job_transition() RETURNS trigger
	LANGUAGE plpgsql
AS $$
DECLARE
	base integer;
BEGIN
	IF NEW.status = OLD.status THEN
		RETURN NEW;
	END IF;
	IF NOT cw_job_transition_allowed(OLD.status, NEW.status) THEN
		RAISE EXCEPTION 'job %: % -> % is not an allowed status change', OLD.id, OLD.status, NEW.status
			USING ERRCODE = 'check_violation';
	END IF;
	IF NEW.status = 'Failed' AND NEW.attempts < NEW.max_attempts THEN
		SELECT p.retry_interval_seconds INTO base
		  FROM managed_certificates m JOIN renewal_policies p ON p.id = m.renewal_policy_id
		 WHERE m.id = NEW.certificate_id;
		NEW.status := CASE WHEN NEW.agent_id IS NOT NULL AND NEW.type IN ('Issuance', 'Renewal')
			THEN 'AwaitingCSR' ELSE 'Pending' END;
		NEW.scheduled_at := now() + cw_job_backoff(coalesce(base, 3600), greatest(NEW.attempts, 1));
		NEW.completed_at := NULL;
	ELSIF NEW.status IN ('Completed', 'Failed', 'Cancelled') THEN
		NEW.completed_at := coalesce(NEW.completed_at, now());
	END IF;
	IF NEW.status IN ('Pending', 'AwaitingCSR', 'AwaitingApproval') THEN
		NEW.claimed_by := NULL;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER jobs_transition BEFORE UPDATE OF status ON jobs
	FOR EACH ROW EXECUTE FUNCTION cw_job_transition();

-- AFTER UPDATE: a job's end told to whoever should hear of it
-- (cw_notify: once per job), and a certificate whose renewal ended without
-- a new version (failed or cancelled) back to the status its expiry says.
CREATE FUNCTION cw_job_ended() RETURNS trigger
	LANGUAGE plpgsql
AS $$
DECLARE
	c record;
	renewal boolean := NEW.type IN ('Issuance', 'Renewal');
	what text := CASE WHEN NEW.type = 'Issuance' THEN 'issuance' WHEN NEW.type = 'Renewal' THEN 'renewal'
		ELSE lower(NEW.type) END;
BEGIN
	IF NEW.status = OLD.status OR NEW.status NOT IN ('Completed', 'Failed', 'Cancelled') THEN
		RETURN NULL;
	END IF;
	SELECT m.id, m.name, m.common_name, m.expires_at, m.status, p.renewal_window_days INTO c
	  FROM managed_certificates m JOIN renewal_policies p ON p.id = m.renewal_policy_id
	 WHERE m.id = NEW.certificate_id;
	IF renewal AND NEW.status <> 'Completed' AND c.status = 'RenewalInProgress' THEN
		UPDATE managed_certificates SET status = cw_certificate_status_by_expiry(c.expires_at,
			c.renewal_window_days) WHERE id = c.id AND status = 'RenewalInProgress';
	END IF;
	IF NEW.status = 'Completed' AND NEW.type IN ('Issuance', 'Renewal', 'Deployment') THEN
		PERFORM cw_notify(CASE WHEN renewal THEN 'RenewalSuccess' ELSE 'DeploymentSuccess' END, 'info',
			NEW.certificate_id, NEW.id, what || '-completed:' || NEW.id,
			format('%s of %s completed', initcap(what), c.common_name),
			format('The %s of certificate %s (%s) completed after %s attempt(s).', what, c.name, c.id,
				NEW.attempts),
			jsonb_strip_nulls(jsonb_build_object('job_type', NEW.type, 'attempts', NEW.attempts,
				'target_id', NEW.target_id, 'agent_id', NEW.agent_id, 'expires_at', c.expires_at)));
	ELSIF NEW.status = 'Failed' AND NEW.type IN ('Issuance', 'Renewal', 'Deployment') THEN
		PERFORM cw_notify(CASE WHEN renewal THEN 'RenewalFailure' ELSE 'DeploymentFailure' END,
			CASE WHEN renewal AND (c.expires_at IS NULL OR c.expires_at <= now() + interval '7 days')
				THEN 'critical' ELSE 'warning' END,
			NEW.certificate_id, NEW.id, what || '-failed:' || NEW.id,
			format('%s of %s failed', initcap(what), c.common_name),
			format('The %s of certificate %s (%s) failed after %s attempt(s): %s. %s', what, c.name, c.id,
				NEW.attempts, coalesce(NEW.last_error, 'no reason given'),
				CASE WHEN renewal THEN 'The current certificate stays in place' ||
					coalesce(' until ' || to_char(c.expires_at AT TIME ZONE 'UTC',
						'YYYY-MM-DD HH24:MI:SS "UTC"'), '') || '.' ELSE '' END),
			jsonb_strip_nulls(jsonb_build_object('job_type', NEW.type, 'attempts', NEW.attempts,
				'error', left(NEW.last_error, 512), 'target_id', NEW.target_id, 'agent_id', NEW.agent_id,
				'expires_at', c.expires_at)));
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_ended AFTER UPDATE OF status ON jobs
	FOR EACH ROW EXECUTE FUNCTION cw_job_ended();
