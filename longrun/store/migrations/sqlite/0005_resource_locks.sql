-- Resource locks: a key (e.g. "path:/srv/data") held by a running operation under one lease.
-- A row is live only while its holder is IN_PROGRESS or CANCELING under that same lease.
CREATE TABLE resource_locks (
    key          TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL,
    lease_id     TEXT NOT NULL,
    acquired_at  INTEGER NOT NULL
);

CREATE INDEX ix_resource_locks_operation ON resource_locks (operation_id);
