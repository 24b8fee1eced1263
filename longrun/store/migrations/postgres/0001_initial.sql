-- The operations table of the PostgreSQL engine: timestamptz times (µs, UTC), the caller's JSON
-- kept verbatim (json), the arrays that grow by appending as jsonb (||).
CREATE TABLE operations (
    id                        text PRIMARY KEY,
    operation_type            text NOT NULL,
    compartment_id            text NOT NULL,
    status                    text NOT NULL,
    input                     json NOT NULL DEFAULT '{}',
    percent_complete          double precision NOT NULL DEFAULT 0,
    progress                  json NOT NULL DEFAULT '{}',
    estimated_completion_time timestamptz,
    time_accepted             timestamptz NOT NULL,
    time_started              timestamptz,
    last_action_time          timestamptz NOT NULL,
    time_finished             timestamptz,
    resource_location         text,
    result                    json,
    errors                    jsonb NOT NULL DEFAULT '[]',
    logs                      jsonb NOT NULL DEFAULT '[]',
    resources                 jsonb NOT NULL DEFAULT '[]',
    parent_id                 text,
    attempt                   integer NOT NULL DEFAULT 1,
    max_attempts              integer NOT NULL DEFAULT 1,
    not_before                timestamptz,
    deadline                  timestamptz,
    idempotency_key           text,
    request_hash              text,
    lost_worker_policy        text NOT NULL DEFAULT 'retry',
    retry_backoff             double precision NOT NULL DEFAULT 1.0,
    timeout                   double precision,
    worker_id                 text,
    lease_id                  text,
    lease_expires             timestamptz,
    version                   bigint NOT NULL DEFAULT 1
);

-- Lists: newest or oldest first within a compartment, by status, by type.
CREATE INDEX ix_operations_compartment ON operations (compartment_id, id);
CREATE INDEX ix_operations_compartment_status ON operations (compartment_id, status, id);
CREATE INDEX ix_operations_compartment_type ON operations (compartment_id, operation_type, id);
CREATE INDEX ix_operations_status ON operations (status, id);
-- Claims: only the ACCEPTED rows, in id order (small, hot, and cheap to skip-lock through).
CREATE INDEX ix_operations_claimable ON operations (id) WHERE status = 'ACCEPTED';
CREATE INDEX ix_operations_parent ON operations (parent_id, id) WHERE parent_id IS NOT NULL;
-- The change feed: operations in the order they last moved (the events hub reads it).
CREATE INDEX ix_operations_last_action ON operations (last_action_time, id);
CREATE INDEX ix_operations_lease ON operations (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE INDEX ix_operations_deadline ON operations (deadline)
    WHERE deadline IS NOT NULL AND status IN ('ACCEPTED', 'ON_HOLD');
CREATE INDEX ix_operations_finished ON operations (time_finished) WHERE time_finished IS NOT NULL;
CREATE UNIQUE INDEX ux_operations_idempotency ON operations (compartment_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- What is left of a purged or deleted operation: its id answers 410, not 404.
CREATE TABLE tombstones (
    id             text PRIMARY KEY,
    compartment_id text NOT NULL,
    operation_type text NOT NULL,
    status         text NOT NULL,
    purged_at      timestamptz NOT NULL,
    reason         text NOT NULL
);

-- Every committed change wakes every listening store (idle workers, waiters) at once. The payload
-- is the operation id. A lease renewal alone does not bump the version, so it wakes nobody.
CREATE FUNCTION longrun_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('longrun_changes', OLD.id);
    ELSE
        PERFORM pg_notify('longrun_changes', NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER operations_inserted_or_deleted AFTER INSERT OR DELETE ON operations
    FOR EACH ROW EXECUTE FUNCTION longrun_notify_change();
CREATE TRIGGER operations_changed AFTER UPDATE ON operations
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION longrun_notify_change();
