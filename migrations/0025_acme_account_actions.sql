-- ACME account key rollover and account deactivation (RFC 8555 7.3.5,
-- 7.3.6), asked for through the API and carried out by the scheduler.
--
-- acme_account_actions: one row per request (POST
-- /api/v1/issuers/{id}/acme/key-rollover or /acme/deactivate). A scheduler
-- claims it (running, attempts + 1), runs it against the CA with the keys
-- its signer holds, and records the outcome: done; pending again after a
-- failure that may pass (next_at); or failed, with the CA's text. At most
-- one action of an issuer is open (pending or running) at a time: a second
-- request is refused while one is. old_thumbprint is the account key's when
-- the action was asked for: a rollover whose account key is another by the
-- time it runs has happened (a run that ended before it could say so).
CREATE TABLE acme_account_actions (
	id bigserial PRIMARY KEY,
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE CASCADE,
	action text NOT NULL CHECK (action IN ('keychange', 'deactivate')),
	new_algorithm text CHECK (new_algorithm IN ('ES256', 'ES384', 'RS256')),
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	error text CHECK (char_length(error) <= 1024),
	old_thumbprint text NOT NULL CHECK (old_thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
	new_thumbprint text CHECK (new_thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
	requested_by text NOT NULL CHECK (char_length(requested_by) BETWEEN 1 AND 255),
	claimed_at timestamptz,
	next_at timestamptz NOT NULL DEFAULT now(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((action = 'keychange') = (new_algorithm IS NOT NULL)),
	CHECK (new_thumbprint IS NULL OR (action = 'keychange' AND status = 'done'))
);
CREATE UNIQUE INDEX acme_account_actions_open ON acme_account_actions (issuer_id)
	WHERE status IN ('pending', 'running');
CREATE INDEX acme_account_actions_due ON acme_account_actions (status, next_at);
CREATE INDEX acme_account_actions_issuer ON acme_account_actions (issuer_id, id);
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acme_account_actions
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
COMMENT ON TABLE acme_account_actions IS
	'key rollovers and deactivations of ACME accounts asked for through the API, run by the scheduler';
COMMENT ON COLUMN acme_account_actions.new_algorithm IS
	'keychange: the JWS algorithm of the new account key (the issuer''s account_key_algorithm when not asked for)';
COMMENT ON COLUMN acme_account_actions.error IS 'why the last attempt failed: the CA''s problem type and detail where it gave one';
COMMENT ON COLUMN acme_account_actions.old_thumbprint IS 'RFC 7638 thumbprint of the account key when the action was asked for';
COMMENT ON COLUMN acme_account_actions.new_thumbprint IS 'keychange done: the thumbprint of the account key it made';
COMMENT ON COLUMN acme_account_actions.requested_by IS 'the API key that asked for it';

-- an acme_account_actions row as the API answers it
CREATE FUNCTION acme_account_action_json(x acme_account_actions) RETURNS json
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT json_build_object('id', x.id, 'issuer_id', x.issuer_id, 'action', x.action,
		'account_key_algorithm', x.new_algorithm, 'status', x.status, 'attempts', x.attempts,
		'error', x.error, 'old_thumbprint', x.old_thumbprint, 'new_thumbprint', x.new_thumbprint,
		'requested_by', x.requested_by, 'next_attempt_at', CASE WHEN x.status = 'pending' THEN x.next_at END,
		'created_at', x.created_at, 'updated_at', x.updated_at)
$$;
