-- Wake-ups without a payload (nothing reads it): PostgreSQL folds identical notifications of one
-- transaction into one, so a multi-row statement (a group-committed submit or finish, a claim of
-- many) wakes each listener once instead of once per row.
CREATE OR REPLACE FUNCTION longrun_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('longrun_changes', '');
    RETURN NULL;
END;
$$;
