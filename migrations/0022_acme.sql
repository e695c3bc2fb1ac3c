-- What an ACME issuer (issuers.type 'ACME', RFC 8555) keeps in the database.
--
-- acme_challenges: the HTTP-01 challenges being validated. The scheduler
-- puts one before it tells the CA to validate and deletes it once the
-- authorization is decided; the api answers
-- GET /.well-known/acme-challenge/<token> with its key authorization while
-- it has not expired. Rows past expires_at are never served and are
-- removed by the next put (acme_challenges.put), or with their issuer.
CREATE TABLE acme_challenges (
	token text PRIMARY KEY CHECK (token ~ '^[A-Za-z0-9_-]{1,128}$'),
	key_authorization text NOT NULL
		CHECK (key_authorization ~ '^[A-Za-z0-9_-]{1,128}\.[A-Za-z0-9_-]{43}$'),
	issuer_id text NOT NULL REFERENCES issuers (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	CHECK (starts_with(key_authorization, token || '.')),
	CHECK (expires_at > created_at AND expires_at <= created_at + interval '7 days')
);
CREATE INDEX acme_challenges_expires_at ON acme_challenges (expires_at);
CREATE INDEX acme_challenges_issuer_id ON acme_challenges (issuer_id);
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acme_challenges
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
COMMENT ON TABLE acme_challenges IS
	'HTTP-01 challenges of ACME issuers, served by the api at /.well-known/acme-challenge/<token> until expires_at';
COMMENT ON COLUMN acme_challenges.token IS 'the challenge token the CA chose (base64url)';
COMMENT ON COLUMN acme_challenges.key_authorization IS
	'<token>.<base64url SHA-256 JWK thumbprint of the account key> (RFC 8555 8.1): the whole response body';

-- acme_accounts: the account each ACME issuer holds at its CA, as the
-- scheduler last saw it. The account key itself is the signer's
-- (<key_dir>/acme/<issuer_id>.key); key_thumbprint names it (RFC 7638).
CREATE TABLE acme_accounts (
	issuer_id text PRIMARY KEY REFERENCES issuers (id) ON DELETE CASCADE,
	account_url text NOT NULL
		CHECK (char_length(account_url) <= 2048 AND account_url ~ '^https://[^[:space:][:cntrl:]]+$'),
	key_thumbprint text NOT NULL CHECK (key_thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
	status text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'deactivated', 'revoked')),
	contact text[] NOT NULL DEFAULT '{}'
		CHECK (cw_is_text_list(contact) AND cardinality(contact) <= 16 AND char_length(array_to_string(contact, ' ')) <= 4096),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	row_version integer NOT NULL DEFAULT 1
);
CREATE TRIGGER acme_accounts_touch BEFORE UPDATE ON acme_accounts FOR EACH ROW EXECUTE FUNCTION cw_touch();
CREATE TRIGGER cw_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acme_accounts
	FOR EACH STATEMENT EXECUTE FUNCTION cw_table_changed();
COMMENT ON TABLE acme_accounts IS 'the account of each ACME issuer at its CA (RFC 8555 7.3), kept by the scheduler';
COMMENT ON COLUMN acme_accounts.account_url IS 'the account URL (the kid of its JWS requests)';
COMMENT ON COLUMN acme_accounts.key_thumbprint IS
	'base64url SHA-256 JWK thumbprint (RFC 7638) of the account key, which the signer holds';
COMMENT ON COLUMN acme_accounts.status IS 'the account status the CA last gave (RFC 8555 7.1.2)';
COMMENT ON COLUMN acme_accounts.contact IS 'the contact URLs registered with the account (mailto:...)';

-- an acme_accounts row as the store's operations answer it
CREATE FUNCTION acme_account_json(a acme_accounts) RETURNS json
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT json_build_object('issuer_id', a.issuer_id, 'account_url', a.account_url,
		'key_thumbprint', a.key_thumbprint, 'status', a.status, 'contact', to_json(a.contact),
		'created_at', a.created_at, 'updated_at', a.updated_at, 'row_version', a.row_version)
$$;
