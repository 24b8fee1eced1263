-- The change feed: operations in the order they last moved (the events hub reads it).
CREATE INDEX ix_operations_last_action ON operations (last_action_time, id);
