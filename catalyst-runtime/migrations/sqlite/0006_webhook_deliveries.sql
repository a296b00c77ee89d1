CREATE TABLE webhook_deliveries (
    id BLOB PRIMARY KEY NOT NULL,
    alert_id BLOB REFERENCES alerts(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    delivered BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries(at);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries(alert_id);
