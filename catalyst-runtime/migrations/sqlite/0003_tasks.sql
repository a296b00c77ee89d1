CREATE TABLE tasks (
    id BLOB PRIMARY KEY NOT NULL,
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    action TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    catch_up TEXT NOT NULL,
    created_by BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_run_at TEXT,
    next_run_at TEXT,
    run_count INTEGER NOT NULL,
    last_result TEXT,
    last_error TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX tasks_due ON tasks(enabled, next_run_at);
CREATE INDEX tasks_server ON tasks(server_id);
