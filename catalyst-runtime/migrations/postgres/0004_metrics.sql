CREATE TABLE server_metrics (
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL,
    cpu_percent DOUBLE PRECISION NOT NULL,
    memory_bytes BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    rx_bytes BIGINT NOT NULL,
    tx_bytes BIGINT NOT NULL,
    disk_bytes BIGINT NOT NULL,
    PRIMARY KEY (server_id, at)
);
CREATE INDEX server_metrics_at ON server_metrics(at);

CREATE TABLE metrics_rollups (
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    samples BIGINT NOT NULL,
    cpu_avg DOUBLE PRECISION NOT NULL,
    cpu_max DOUBLE PRECISION NOT NULL,
    memory_avg_bytes DOUBLE PRECISION NOT NULL,
    memory_max_bytes BIGINT NOT NULL,
    disk_max_bytes BIGINT NOT NULL,
    rx_bytes BIGINT NOT NULL,
    tx_bytes BIGINT NOT NULL,
    PRIMARY KEY (server_id, period, start)
);
CREATE INDEX metrics_rollups_start ON metrics_rollups(period, start);
