-- Resource locks: a key (e.g. "path:/srv/data") held by a running operation under one lease.
-- A row is live only while its holder is IN_PROGRESS or CANCELING under that same lease.
CREATE TABLE resource_locks (
    key          text PRIMARY KEY,
    operation_id text NOT NULL,
    lease_id     text NOT NULL,
    acquired_at  timestamptz NOT NULL
);

CREATE INDEX ix_resource_locks_operation ON resource_locks (operation_id);
