-- 0017_scheduler_loops: what the scheduler's loops read (docs/renewal.md).
--
-- A certificate is due for renewal at
--   not_after - least(renewal_window_days, (not_after - not_before) / 3)
-- of its newest version: a 90-day certificate with the default 30-day window
-- at day 60, a 6-day one at 2/3 of its life (day 4), a 3-minute one after
-- 2 minutes. managed_certificates.renew_at keeps that time, set by triggers
-- when a version is issued, when the certificate's policy changes and when a
-- policy's window changes, so the renewal scan and the expiry marking read
-- only the rows that are due through one index instead of every certificate.

CREATE FUNCTION cw_renew_at(p_not_before timestamptz, p_not_after timestamptz, p_window_days integer)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
	SELECT p_not_after - least(make_interval(days => p_window_days), (p_not_after - p_not_before) / 3)
$$;

ALTER TABLE managed_certificates ADD COLUMN renew_at timestamptz;

-- The certificate's renewal time from its newest version (NULL without one).
CREATE FUNCTION cw_certificate_renew_at(p_certificate_id text, p_window_days integer)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
	SELECT cw_renew_at(v.not_before, v.not_after, p_window_days) FROM certificate_versions v
	WHERE v.certificate_id = p_certificate_id ORDER BY v.not_after DESC, v.created_at DESC LIMIT 1
$$;

UPDATE managed_certificates m SET renew_at = cw_certificate_renew_at(m.id, p.renewal_window_days)
FROM renewal_policies p WHERE p.id = m.renewal_policy_id;

-- Leaves archived and revoked certificates out: they are never renewed.
CREATE INDEX managed_certificates_renew_at ON managed_certificates (renew_at)
	WHERE archived_at IS NULL AND revoked_at IS NULL;

-- a new version: the certificate's renewal time is the newest version's
CREATE FUNCTION cw_version_renew_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE managed_certificates m SET renew_at = cw_certificate_renew_at(m.id, p.renewal_window_days)
	FROM renewal_policies p
	WHERE m.id = NEW.certificate_id AND p.id = m.renewal_policy_id;
	RETURN NULL;
END
$$;
CREATE TRIGGER certificate_versions_renew_at AFTER INSERT ON certificate_versions
	FOR EACH ROW EXECUTE FUNCTION cw_version_renew_at();

-- another policy for the certificate
CREATE FUNCTION cw_certificate_policy_renew_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.renew_at := cw_certificate_renew_at(NEW.id, (SELECT renewal_window_days FROM renewal_policies
		WHERE id = NEW.renewal_policy_id));
	RETURN NEW;
END
$$;
CREATE TRIGGER managed_certificates_renew_at BEFORE UPDATE OF renewal_policy_id ON managed_certificates
	FOR EACH ROW WHEN (OLD.renewal_policy_id IS DISTINCT FROM NEW.renewal_policy_id)
	EXECUTE FUNCTION cw_certificate_policy_renew_at();

-- another window for every certificate of the policy
CREATE FUNCTION cw_policy_renew_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE managed_certificates m SET renew_at = cw_certificate_renew_at(m.id, NEW.renewal_window_days)
	WHERE m.renewal_policy_id = NEW.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER renewal_policies_renew_at AFTER UPDATE OF renewal_window_days ON renewal_policies
	FOR EACH ROW WHEN (OLD.renewal_window_days IS DISTINCT FROM NEW.renewal_window_days)
	EXECUTE FUNCTION cw_policy_renew_at();
