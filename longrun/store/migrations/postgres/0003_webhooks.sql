-- Webhooks: the callback of an operation (delivered once it ends) and each delivery attempt.
CREATE TABLE webhooks (
    operation_id    text PRIMARY KEY,
    url             text NOT NULL,
    secret          text,
    state           text NOT NULL DEFAULT 'PENDING',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_by      text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL
);

CREATE INDEX webhooks_due ON webhooks (state, next_attempt_at);

CREATE TABLE webhook_deliveries (
    id           text PRIMARY KEY,
    operation_id text NOT NULL,
    attempt      integer NOT NULL,
    time         timestamptz NOT NULL,
    url          text NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer NOT NULL,
    outcome      text NOT NULL
);

CREATE INDEX webhook_deliveries_operation ON webhook_deliveries (operation_id, attempt);
