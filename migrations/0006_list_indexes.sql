-- Indexes for the certificate lists people ask for most (bench/api.sh,
-- bench/RESULTS.md): filters on status and environment, a team's
-- certificates by expiry, and the name filters (exact match).
CREATE INDEX managed_certificates_status_env ON managed_certificates (status, environment, created_at, id);
CREATE INDEX managed_certificates_team_expiry ON managed_certificates (team_id, expires_at, id);
CREATE INDEX managed_certificates_name ON managed_certificates (name);
CREATE INDEX managed_certificates_common_name ON managed_certificates (common_name);
