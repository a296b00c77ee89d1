CREATE TABLE alert_rules (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    condition TEXT NOT NULL,
    severity TEXT NOT NULL,
    webhooks TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_by BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    version INTEGER NOT NULL
);

CREATE TABLE alerts (
    id BLOB PRIMARY KEY NOT NULL,
    rule_id BLOB REFERENCES alert_rules(id) ON DELETE SET NULL,
    server_id BLOB,
    node_id BLOB,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    resolved BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by BLOB
);
CREATE INDEX alerts_created ON alerts(created_at);
CREATE INDEX alerts_rule ON alerts(rule_id, created_at);
