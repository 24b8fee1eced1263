-- API keys (only the sha256 of each secret) and the audit trail of every mutation.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    role         TEXT NOT NULL,
    compartments TEXT NOT NULL DEFAULT '[]',
    name         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    time           INTEGER NOT NULL,
    caller         TEXT NOT NULL,
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    status         INTEGER NOT NULL,
    target         TEXT,
    compartment_id TEXT
);
