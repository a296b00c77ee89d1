CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY NOT NULL,
    alert_id UUID REFERENCES alerts(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    delivered BOOLEAN NOT NULL,
    attempts BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries(at);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries(alert_id);
