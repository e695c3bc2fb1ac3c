-- HTTP-01 challenges answered on an agent's host: the scheduler hands the
-- challenge of a certificate that has a target with an ACME webroot
-- (deployment_targets.config.acme_webroot, or the agent's own acme_webroot
-- for that target) to the target's agent, which writes the key
-- authorization to <webroot>/.well-known/acme-challenge/<token> for the web
-- server there to serve, and says when it is in place (state ready) or why
-- it is not (failed). The CA is told to look only once it is ready.
ALTER TABLE acme_challenges ADD COLUMN agent_id text REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE acme_challenges ADD COLUMN target_id text REFERENCES deployment_targets (id) ON DELETE CASCADE;
ALTER TABLE acme_challenges ADD COLUMN state text NOT NULL DEFAULT 'ready'
	CHECK (state IN ('waiting', 'ready', 'failed'));
ALTER TABLE acme_challenges ADD COLUMN error text CHECK (char_length(error) <= 1024);
ALTER TABLE acme_challenges ADD CONSTRAINT acme_challenges_agent_target
	CHECK ((agent_id IS NULL) = (target_id IS NULL) AND (agent_id IS NOT NULL OR state = 'ready'));
CREATE INDEX acme_challenges_agent_id ON acme_challenges (agent_id) WHERE agent_id IS NOT NULL;
COMMENT ON COLUMN acme_challenges.agent_id IS
	'the agent that writes the key authorization into its target''s webroot; NULL: the api alone serves it';
COMMENT ON COLUMN acme_challenges.state IS
	'waiting: for the agent to write it; ready: the CA may look; failed: the agent could not (error)';
