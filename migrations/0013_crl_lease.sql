-- One scheduler at a time per issuer's CRL (issue 5): certward nodes that
-- share the database each run the CRL loop; the first to take an issuer's
-- next CRL number holds a lease on it until it publishes (or gives up, or
-- ten minutes pass), and the others leave that issuer alone meanwhile.

ALTER TABLE crl_state ADD COLUMN lease_until timestamptz;
