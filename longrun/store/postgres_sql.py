"""The named SQL of the PostgreSQL engine (psycopg ``%(name)s`` parameters, every one cast)."""

from __future__ import annotations

__all__ = [
    "CHANGED_SINCE",
    "CHANNEL",
    "CLAIM",
    "DELETE_TO_TOMBSTONE",
    "EXPIRED_LEASES",
    "FINISH",
    "GET",
    "GET_FENCED",
    "GET_FOR_UPDATE",
    "GET_TOMBSTONE",
    "HEARTBEAT",
    "IDEMPOTENT_LOOKUP",
    "INSERT",
    "MARK_MISSED",
    "MIGRATION_LOCK",
    "OWN_INSERT",
    "PURGE",
    "PURGE_COMPARTMENT",
    "RENEW",
    "SELECT_OPERATIONS",
    "SET_STATUS",
]

CHANNEL = "longrun_changes"  # the NOTIFY channel of 0001_initial.sql's trigger
MIGRATION_LOCK = 0x6C6F6E6772756E  # "longrun": pg_advisory_xact_lock key of schema migrations

# Every read of an operation brings its children's ids along (one round trip, not two).
_CHILDREN = (
    "ARRAY(SELECT c.id FROM operations c WHERE c.parent_id = o.id ORDER BY c.id) AS children"
)
SELECT_OPERATIONS = f"SELECT o.*, {_CHILDREN} FROM operations o"
_RETURNING = f"RETURNING o.*, {_CHILDREN}"

INSERT = """
INSERT INTO operations (id, operation_type, compartment_id, status, input, percent_complete,
    progress, time_accepted, last_action_time, parent_id, attempt, max_attempts, not_before,
    deadline, idempotency_key, request_hash, lost_worker_policy, retry_backoff, timeout)
VALUES (%(id)s::text, %(operation_type)s::text, %(compartment_id)s::text, %(status)s::text,
    %(input)s::json, %(percent_complete)s::float8, %(progress)s::json,
    %(time_accepted)s::timestamptz, %(last_action_time)s::timestamptz, %(parent_id)s::text,
    %(attempt)s::int, %(max_attempts)s::int, %(not_before)s::timestamptz,
    %(deadline)s::timestamptz, %(idempotency_key)s::text, %(request_hash)s::text,
    %(lost_worker_policy)s::text, %(retry_backoff)s::float8, %(timeout)s::float8)
ON CONFLICT DO NOTHING
RETURNING id
"""

IDEMPOTENT_LOOKUP = (
    SELECT_OPERATIONS + " WHERE o.compartment_id = %(compartment_id)s::text"
    " AND o.idempotency_key = %(idempotency_key)s::text"
)

GET = SELECT_OPERATIONS + " WHERE o.id = %(id)s::text"
# Did an insert whose reply was lost commit after all? (ids are unique: the row would be ours.)
OWN_INSERT = "SELECT 1 AS found FROM operations WHERE id = %(id)s::text"
CHANGED_SINCE = (
    SELECT_OPERATIONS + " WHERE o.last_action_time >= %(since)s::timestamptz"
    " ORDER BY o.last_action_time, o.id LIMIT %(limit)s::int"
)
GET_FOR_UPDATE = "SELECT * FROM operations WHERE id = %(id)s::text FOR UPDATE"
GET_TOMBSTONE = "SELECT * FROM tombstones WHERE id = %(id)s::text"
GET_FENCED = (
    "SELECT status, attempt FROM operations"
    " WHERE id = %(id)s::text AND lease_id = %(lease_id)s::text FOR UPDATE"
)

# Times come from the clock of whoever writes (an API server, a worker); clocks disagree, so a
# start is never before the acceptance and an end never before the start (or the acceptance).
_FINISHED = """CASE WHEN %(time_finished)s::timestamptz IS NULL THEN {kept}
        ELSE greatest(%(time_finished)s::timestamptz, coalesce(o.time_started, o.time_accepted))
        END"""

# Oldest first among what may start now; SKIP LOCKED lets concurrent claimers pass each other.
CLAIM = f"""
WITH picked AS (
    SELECT id FROM operations
    WHERE status = 'ACCEPTED' AND operation_type = ANY(%(types)s::text[])
      AND (not_before IS NULL OR not_before <= %(now)s::timestamptz)
      AND (deadline IS NULL OR deadline > %(now)s::timestamptz)
    ORDER BY id LIMIT %(limit)s::int
    FOR UPDATE SKIP LOCKED)
UPDATE operations o SET status = 'IN_PROGRESS', worker_id = %(worker_id)s::text,
    lease_id = %(lease_id)s::text, lease_expires = %(lease_expires)s::timestamptz,
    time_started = greatest(%(now)s::timestamptz, o.time_accepted),
    last_action_time = %(now)s::timestamptz, percent_complete = 0,
    estimated_completion_time = NULL, version = o.version + 1
FROM picked WHERE o.id = picked.id
{_RETURNING}
"""

RENEW = """
UPDATE operations o SET lease_expires = %(lease_expires)s::timestamptz
WHERE o.id = %(id)s::text AND o.lease_id = %(lease_id)s::text
RETURNING o.id, o.status
"""


def _append(column: str) -> str:
    return (
        f"{column} = CASE WHEN %({column})s::jsonb IS NULL THEN o.{column} "
        f"ELSE o.{column} || %({column})s::jsonb END"
    )


_PERCENT = """percent_complete = CASE WHEN %(percent)s::float8 IS NULL THEN o.percent_complete
        ELSE greatest(o.percent_complete, %(percent)s::float8) END"""

HEARTBEAT = f"""
UPDATE operations o SET lease_expires = %(lease_expires)s::timestamptz,
    last_action_time = %(now)s::timestamptz, version = o.version + 1,
    {_PERCENT},
    progress = coalesce(%(progress)s::json, o.progress),
    estimated_completion_time = coalesce(%(eta)s::timestamptz, o.estimated_completion_time),
    resource_location = coalesce(%(resource_location)s::text, o.resource_location),
    {_append("logs")}, {_append("errors")}, {_append("resources")}
WHERE o.id = %(id)s::text AND o.lease_id = %(lease_id)s::text
RETURNING o.id, o.status
"""

FINISH = f"""
UPDATE operations o SET status = %(status)s::text, last_action_time = %(now)s::timestamptz,
    version = o.version + 1, time_finished = {_FINISHED.format(kept="NULL")},
    attempt = o.attempt + %(next_attempt)s::int,
    not_before = coalesce(%(not_before)s::timestamptz, o.not_before),
    {_PERCENT},
    progress = coalesce(%(progress)s::json, o.progress),
    estimated_completion_time = %(eta)s::timestamptz,
    resource_location = coalesce(%(resource_location)s::text, o.resource_location),
    result = coalesce(%(result)s::json, o.result),
    {_append("logs")}, {_append("errors")}, {_append("resources")},
    worker_id = CASE WHEN %(requeue)s::bool THEN NULL ELSE o.worker_id END,
    lease_id = NULL, lease_expires = NULL
WHERE o.id = %(id)s::text AND o.lease_id = %(lease_id)s::text
  AND (%(expected)s::text IS NULL OR o.status = %(expected)s::text)
{_RETURNING}
"""

# A transition made by the service or the reaper (no lease to fence; the status is checked).
SET_STATUS = f"""
UPDATE operations o SET status = %(status)s::text, last_action_time = %(now)s::timestamptz,
    version = o.version + 1,
    time_finished = {_FINISHED.format(kept="o.time_finished")},
    attempt = o.attempt + CASE WHEN %(requeue)s::bool THEN 1 ELSE 0 END,
    not_before = CASE WHEN %(requeue)s::bool THEN %(not_before)s::timestamptz
        ELSE o.not_before END,
    percent_complete = CASE WHEN %(requeue)s::bool THEN 0 ELSE o.percent_complete END,
    estimated_completion_time = CASE
        WHEN %(time_finished)s::timestamptz IS NULL AND NOT %(requeue)s::bool
        THEN o.estimated_completion_time END,
    {_append("logs")}, {_append("errors")},
    worker_id = CASE WHEN %(clear_lease)s::bool AND %(requeue)s::bool THEN NULL
        ELSE o.worker_id END,
    lease_id = CASE WHEN %(clear_lease)s::bool THEN NULL ELSE o.lease_id END,
    lease_expires = CASE WHEN %(clear_lease)s::bool THEN NULL ELSE o.lease_expires END
WHERE o.id = %(id)s::text AND o.status = %(expected)s::text
{_RETURNING}
"""

# Several reapers (one per worker process) pass each other by SKIP LOCKED.
EXPIRED_LEASES = """
SELECT id, status, attempt, max_attempts, lost_worker_policy, retry_backoff, worker_id
FROM operations
WHERE lease_expires IS NOT NULL AND lease_expires < %(now)s::timestamptz
  AND status IN ('IN_PROGRESS', 'CANCELING')
ORDER BY lease_expires LIMIT 500
FOR UPDATE SKIP LOCKED
"""

MARK_MISSED = """
UPDATE operations o SET status = 'MISSED',
    time_finished = greatest(%(now)s::timestamptz, o.time_accepted),
    last_action_time = %(now)s::timestamptz, version = o.version + 1,
    logs = o.logs || %(logs)s::jsonb
WHERE o.id IN (
    SELECT id FROM operations
    WHERE deadline IS NOT NULL AND deadline <= %(now)s::timestamptz
      AND status IN ('ACCEPTED', 'ON_HOLD')
    FOR UPDATE SKIP LOCKED)
RETURNING o.id
"""

_TOMBSTONE = """
INSERT INTO tombstones (id, compartment_id, operation_type, status, purged_at, reason)
SELECT id, compartment_id, operation_type, status, %(now)s::timestamptz, %(reason)s::text FROM gone
ON CONFLICT (id) DO UPDATE SET compartment_id = excluded.compartment_id,
    operation_type = excluded.operation_type, status = excluded.status,
    purged_at = excluded.purged_at, reason = excluded.reason
"""

DELETE_TO_TOMBSTONE = (
    """
WITH gone AS (DELETE FROM operations WHERE id = %(id)s::text
              RETURNING id, compartment_id, operation_type, status)"""
    + _TOMBSTONE
)


def _purge_sql(where: str, order: str) -> str:
    """Terminal operations matching ``where`` → tombstones, ``limit`` at a time."""
    return (
        f"""
WITH doomed AS (
    SELECT id FROM operations
    WHERE {where}
      AND status IN ('SUCCEEDED', 'SUCCEEDED_WITH_WARNINGS', 'FAILED', 'CANCELED', 'MISSED')
    ORDER BY {order} LIMIT %(limit)s::int
    FOR UPDATE SKIP LOCKED),
gone AS (DELETE FROM operations o USING doomed WHERE o.id = doomed.id
         RETURNING o.id, o.compartment_id, o.operation_type, o.status)"""
        + _TOMBSTONE
    )


PURGE = _purge_sql(
    "time_finished IS NOT NULL AND time_finished < %(cutoff)s::timestamptz", "time_finished"
)
PURGE_COMPARTMENT = (
    _purge_sql("compartment_id = %(compartment_id)s::text", "id")
    + "RETURNING id, compartment_id, operation_type, status, purged_at, reason"
)
