-- certward's own settings: small key/value pairs kept in the database so that
-- every node sharing it sees the same values (store operations settings.*).
CREATE TABLE settings (
	key text PRIMARY KEY CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
	value text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE settings IS 'certward settings shared by all nodes (store operations settings.*)';
