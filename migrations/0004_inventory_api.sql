-- What the REST API of issue 4 needs beyond 0002: certward's own CA as an
-- issuer type, and agent group membership as a view.

-- certward's own CA (issue 5) is an issuer of type 'Local', next to the
-- reference's outside CA types (docs/api.md, "Where the reference is vague").
ALTER TABLE issuers DROP CONSTRAINT issuers_type_check;
ALTER TABLE issuers ADD CONSTRAINT issuers_type_check CHECK (type IN ('ACME', 'GenericCA', 'StepCA',
	'VaultPKI', 'DigiCert', 'Sectigo', 'GoogleCAS', 'AWSACMPCA', 'Entrust', 'GlobalSign', 'EJBCA',
	'Local'));

-- GET /api/v1/agent-groups/{id}/members: the agents not retired that are in
-- a group, either listed in agent_group_members or, for an enabled group
-- with at least one match_* criterion, matching every criterion it sets
-- (os, architecture and version exactly; the address inside the network).
CREATE VIEW agent_group_membership AS
SELECT g.id AS agent_group_id, a.*
  FROM agent_groups g
  JOIN agents a ON a.retired_at IS NULL AND (
	EXISTS (SELECT 1 FROM agent_group_members m
		 WHERE m.agent_group_id = g.id AND m.agent_id = a.id)
	OR (g.enabled
	    AND num_nonnulls(g.match_os, g.match_architecture, g.match_ip_cidr, g.match_version) > 0
	    AND (g.match_os IS NULL OR a.os = g.match_os)
	    AND (g.match_architecture IS NULL OR a.architecture = g.match_architecture)
	    AND (g.match_ip_cidr IS NULL OR a.ip_address <<= g.match_ip_cidr)
	    AND (g.match_version IS NULL OR a.version = g.match_version)));

-- At most one issuance or renewal under way per certificate: two renewal
-- requests at once make one job, the other gets 409.
CREATE UNIQUE INDEX jobs_one_issuance_under_way ON jobs (certificate_id)
	WHERE type IN ('Issuance', 'Renewal')
	  AND status IN ('Pending', 'AwaitingCSR', 'AwaitingApproval', 'Running');
