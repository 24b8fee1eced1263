-- The operations table: indexed columns for filters and leases, JSON text for the rest.
-- Times are integer microseconds since the epoch (UTC).
CREATE TABLE operations (
    id                        TEXT PRIMARY KEY,
    operation_type            TEXT NOT NULL,
    compartment_id            TEXT NOT NULL,
    status                    TEXT NOT NULL,
    input                     TEXT NOT NULL DEFAULT '{}',
    percent_complete          REAL NOT NULL DEFAULT 0,
    progress                  TEXT NOT NULL DEFAULT '{}',
    estimated_completion_time INTEGER,
    time_accepted             INTEGER NOT NULL,
    time_started              INTEGER,
    last_action_time          INTEGER NOT NULL,
    time_finished             INTEGER,
    resource_location         TEXT,
    result                    TEXT,
    errors                    TEXT NOT NULL DEFAULT '[]',
    logs                      TEXT NOT NULL DEFAULT '[]',
    resources                 TEXT NOT NULL DEFAULT '[]',
    parent_id                 TEXT,
    attempt                   INTEGER NOT NULL DEFAULT 1,
    max_attempts              INTEGER NOT NULL DEFAULT 1,
    not_before                INTEGER,
    deadline                  INTEGER,
    idempotency_key           TEXT,
    request_hash              TEXT,
    lost_worker_policy        TEXT NOT NULL DEFAULT 'retry',
    retry_backoff             REAL NOT NULL DEFAULT 1.0,
    timeout                   REAL,
    worker_id                 TEXT,
    lease_id                  TEXT,
    lease_expires             INTEGER,
    version                   INTEGER NOT NULL DEFAULT 1
);

-- Lists: newest or oldest first within a compartment, by status, by type.
CREATE INDEX ix_operations_compartment ON operations (compartment_id, id);
CREATE INDEX ix_operations_compartment_status ON operations (compartment_id, status, id);
CREATE INDEX ix_operations_compartment_type ON operations (compartment_id, operation_type, id);
-- Claims (status = 'ACCEPTED' in id order) and lists by status across compartments.
CREATE INDEX ix_operations_status ON operations (status, id);
CREATE INDEX ix_operations_parent ON operations (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX ix_operations_lease ON operations (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE INDEX ix_operations_deadline ON operations (deadline)
    WHERE deadline IS NOT NULL AND status IN ('ACCEPTED', 'ON_HOLD');
CREATE INDEX ix_operations_finished ON operations (time_finished) WHERE time_finished IS NOT NULL;
CREATE UNIQUE INDEX ux_operations_idempotency ON operations (compartment_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- What is left of a purged or deleted operation: its id answers 410, not 404.
CREATE TABLE tombstones (
    id             TEXT PRIMARY KEY,
    compartment_id TEXT NOT NULL,
    operation_type TEXT NOT NULL,
    status         TEXT NOT NULL,
    purged_at      INTEGER NOT NULL,
    reason         TEXT NOT NULL
);
