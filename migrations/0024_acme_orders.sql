-- Orders from an ACME issuer for a CSR given to the job itself: a
-- certificate created on an ACME issuer through the API, a renewal asked
-- for with a new CSR, or an agent's CSR for its job.
--
-- jobs.csr_pem: the CSR the job finalizes its order with, in place of the
-- one of the certificate's newest version. jobs.sealed_key: the key the
-- signer made for that CSR (server-side key generation), sealed; it becomes
-- the version's key (version_keys) when the job records the certificate
-- and is dropped from the job when the job ends.
ALTER TABLE jobs ADD COLUMN csr_pem text
	CHECK (char_length(csr_pem) <= 16384 AND starts_with(csr_pem, '-----BEGIN CERTIFICATE REQUEST-----'));
ALTER TABLE jobs ADD COLUMN sealed_key bytea
	CHECK (sealed_key IS NULL OR (octet_length(sealed_key) BETWEEN 45 AND 16384 AND csr_pem IS NOT NULL));
COMMENT ON COLUMN jobs.csr_pem IS
	'the CSR this Issuance or Renewal job is for (an ACME order), in place of the newest version''s';
COMMENT ON COLUMN jobs.sealed_key IS
	'the key certward-signer made for csr_pem, sealed; moved to version_keys with the certificate';

-- An agent's CSR for a job of an ACME issuer goes to the scheduler, which
-- orders the certificate: AwaitingCSR -> Pending.
CREATE OR REPLACE FUNCTION cw_job_transition_allowed(from_status text, to_status text) RETURNS boolean
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
		('AwaitingCSR', 'Pending'),        -- the agent's CSR, for the scheduler to order (ACME)
		('AwaitingCSR', 'Failed'),
		('AwaitingCSR', 'Cancelled'),
		('Running', 'Completed'),
		('Running', 'Failed'),
		('Running', 'Cancelled'),
		('Running', 'Pending'),            -- a retry
		('Running', 'AwaitingCSR'))        -- a retry of an agent's renewal
$$;

-- A job that ends keeps no sealed key: the certificate's version has it
-- (Completed), or no certificate will (Failed, Cancelled). An agent's job
-- back to AwaitingCSR for a retry waits for a new CSR. The trigger's name
-- sorts after jobs_transition, so it sees the status that one settled
-- (a Failed job with attempts left is Pending again and keeps both).
CREATE FUNCTION cw_job_drop_key() RETURNS trigger
	LANGUAGE plpgsql
AS $$
BEGIN
	IF NEW.status IN ('Completed', 'Failed', 'Cancelled') THEN
		NEW.sealed_key := NULL;
	ELSIF NEW.status = 'AwaitingCSR' THEN
		NEW.sealed_key := NULL;
		NEW.csr_pem := NULL;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER jobs_transition_key BEFORE UPDATE OF status ON jobs
	FOR EACH ROW EXECUTE FUNCTION cw_job_drop_key();
