-- Webhooks: the callback of an operation (delivered once it ends) and each delivery attempt.
CREATE TABLE webhooks (
    operation_id    TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT,
    state           TEXT NOT NULL DEFAULT 'PENDING',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE INDEX webhooks_due ON webhooks (state, next_attempt_at);

CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    url          TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    outcome      TEXT NOT NULL
);

CREATE INDEX webhook_deliveries_operation ON webhook_deliveries (operation_id, attempt);
