-- API keys (only the sha256 of each secret) and the audit trail of every mutation.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    secret_hash  text NOT NULL,
    role         text NOT NULL,
    compartments jsonb NOT NULL DEFAULT '[]',
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

CREATE TABLE audit_log (
    id             text PRIMARY KEY,
    time           timestamptz NOT NULL,
    caller         text NOT NULL,
    action         text NOT NULL,
    outcome        text NOT NULL,
    status         integer NOT NULL,
    target         text,
    compartment_id text
);
