-- Tombstones expire after their own horizon: find the old ones without a scan.
CREATE INDEX IF NOT EXISTS ix_tombstones_purged_at ON tombstones (purged_at);
