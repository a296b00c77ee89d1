CREATE TABLE tasks (
    id UUID PRIMARY KEY NOT NULL,
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    action JSONB NOT NULL,
    enabled BOOLEAN NOT NULL,
    catch_up JSONB NOT NULL,
    created_by UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_run_at TIMESTAMPTZ,
    next_run_at TIMESTAMPTZ,
    run_count BIGINT NOT NULL,
    last_result TEXT,
    last_error TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX tasks_due ON tasks(enabled, next_run_at);
CREATE INDEX tasks_server ON tasks(server_id);
