CREATE TABLE alert_rules (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    condition JSONB NOT NULL,
    severity TEXT NOT NULL,
    webhooks JSONB NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_by UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    version BIGINT NOT NULL
);

CREATE TABLE alerts (
    id UUID PRIMARY KEY NOT NULL,
    rule_id UUID REFERENCES alert_rules(id) ON DELETE SET NULL,
    server_id UUID,
    node_id UUID,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    resolved BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by UUID
);
CREATE INDEX alerts_created ON alerts(created_at);
CREATE INDEX alerts_rule ON alerts(rule_id, created_at);
