"""The named SQL of the SQLite engine (times in µs; JSON arrays appended as text)."""

from __future__ import annotations

from longrun.store.rows import INSERT_COLUMNS, append_sql

__all__ = [
    "CHILDREN",
    "CLAIM",
    "DELETE",
    "EXPIRED_LEASES",
    "FINISH",
    "GET",
    "GET_FENCED",
    "GET_TOMBSTONE",
    "HEARTBEAT",
    "IDEMPOTENT_LOOKUP",
    "INSERT",
    "INSERT_TOMBSTONE",
    "MARK_MISSED",
    "PURGE_CANDIDATES",
    "RENEW",
    "SET_STATUS",
]

INSERT = (
    f"INSERT INTO operations ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in INSERT_COLUMNS)})"
)

IDEMPOTENT_LOOKUP = (
    "SELECT * FROM operations WHERE compartment_id = :compartment_id "
    "AND idempotency_key = :idempotency_key"
)

GET = "SELECT * FROM operations WHERE id = ?"
CHILDREN = "SELECT id FROM operations WHERE parent_id = ? ORDER BY id"
GET_TOMBSTONE = "SELECT * FROM tombstones WHERE id = ?"
GET_FENCED = "SELECT status, attempt FROM operations WHERE id = :id AND lease_id = :lease_id"

# Oldest first among what may start now; the write lock of BEGIN IMMEDIATE makes it exclusive.
CLAIM_TEMPLATE = """
UPDATE operations SET status = 'IN_PROGRESS', worker_id = :worker_id, lease_id = :lease_id,
    lease_expires = :lease_expires, time_started = :now, last_action_time = :now,
    percent_complete = 0, estimated_completion_time = NULL, version = version + 1
WHERE id IN (
    SELECT id FROM operations
    WHERE status = 'ACCEPTED' AND operation_type IN ({types})
      AND (not_before IS NULL OR not_before <= :now)
      AND (deadline IS NULL OR deadline > :now)
    ORDER BY id LIMIT :limit)
RETURNING *
"""
CLAIM = CLAIM_TEMPLATE  # formatted with one placeholder per operation type

RENEW = (
    "UPDATE operations SET lease_expires = :lease_expires WHERE id = :id AND lease_id = :lease_id"
)

HEARTBEAT = f"""
UPDATE operations SET lease_expires = :lease_expires, last_action_time = :now,
    version = version + 1,
    percent_complete = CASE WHEN :percent IS NULL THEN percent_complete
                            ELSE max(percent_complete, :percent) END,
    progress = coalesce(:progress, progress),
    estimated_completion_time = coalesce(:eta, estimated_completion_time),
    resource_location = coalesce(:resource_location, resource_location),
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    resources = {append_sql("resources", "resources")}
WHERE id = :id AND lease_id = :lease_id
RETURNING status
"""

FINISH = f"""
UPDATE operations SET status = :status, last_action_time = :now, version = version + 1,
    time_finished = :time_finished,
    attempt = attempt + :next_attempt, not_before = coalesce(:not_before, not_before),
    percent_complete = CASE WHEN :percent IS NULL THEN percent_complete
                            ELSE max(percent_complete, :percent) END,
    progress = coalesce(:progress, progress),
    estimated_completion_time = :eta,
    resource_location = coalesce(:resource_location, resource_location),
    result = coalesce(:result, result),
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    resources = {append_sql("resources", "resources")},
    worker_id = CASE WHEN :requeue = 1 THEN NULL ELSE worker_id END,
    lease_id = NULL, lease_expires = NULL
WHERE id = :id AND lease_id = :lease_id
RETURNING *
"""

# A transition made by the service or the reaper (no lease to fence; the status is checked).
SET_STATUS = f"""
UPDATE operations SET status = :status, last_action_time = :now, version = version + 1,
    time_finished = coalesce(:time_finished, time_finished),
    attempt = attempt + :next_attempt, not_before = CASE WHEN :next_attempt = 1
        THEN :not_before ELSE not_before END,
    percent_complete = CASE WHEN :next_attempt = 1 THEN 0 ELSE percent_complete END,
    estimated_completion_time = CASE WHEN :time_finished IS NULL AND :next_attempt = 0
        THEN estimated_completion_time ELSE NULL END,
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    worker_id = CASE WHEN :clear_lease = 1 AND :next_attempt = 1 THEN NULL ELSE worker_id END,
    lease_id = CASE WHEN :clear_lease = 1 THEN NULL ELSE lease_id END,
    lease_expires = CASE WHEN :clear_lease = 1 THEN NULL ELSE lease_expires END
WHERE id = :id AND status = :expected
RETURNING *
"""

EXPIRED_LEASES = """
SELECT id, status, attempt, max_attempts, lost_worker_policy, retry_backoff, worker_id
FROM operations
WHERE lease_expires IS NOT NULL AND lease_expires < :now AND status IN ('IN_PROGRESS', 'CANCELING')
ORDER BY lease_expires LIMIT 500
"""

MARK_MISSED = f"""
UPDATE operations SET status = 'MISSED', time_finished = :now, last_action_time = :now,
    version = version + 1, logs = {append_sql("logs", "logs")}
WHERE deadline IS NOT NULL AND deadline <= :now AND status IN ('ACCEPTED', 'ON_HOLD')
RETURNING id
"""

PURGE_CANDIDATES = """
SELECT id, compartment_id, operation_type, status FROM operations
WHERE time_finished IS NOT NULL AND time_finished < :cutoff
  AND status IN ('SUCCEEDED', 'SUCCEEDED_WITH_WARNINGS', 'FAILED', 'CANCELED', 'MISSED')
ORDER BY time_finished LIMIT :limit
"""

INSERT_TOMBSTONE = """
INSERT OR REPLACE INTO tombstones (id, compartment_id, operation_type, status, purged_at, reason)
VALUES (:id, :compartment_id, :operation_type, :status, :purged_at, :reason)
"""

DELETE = "DELETE FROM operations WHERE id = ?"
