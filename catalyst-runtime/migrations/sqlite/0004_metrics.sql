CREATE TABLE server_metrics (
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    memory_bytes INTEGER NOT NULL,
    memory_limit_bytes INTEGER NOT NULL,
    rx_bytes INTEGER NOT NULL,
    tx_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    PRIMARY KEY (server_id, at)
);
CREATE INDEX server_metrics_at ON server_metrics(at);

CREATE TABLE metrics_rollups (
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    start TEXT NOT NULL,
    samples INTEGER NOT NULL,
    cpu_avg REAL NOT NULL,
    cpu_max REAL NOT NULL,
    memory_avg_bytes REAL NOT NULL,
    memory_max_bytes INTEGER NOT NULL,
    disk_max_bytes INTEGER NOT NULL,
    rx_bytes INTEGER NOT NULL,
    tx_bytes INTEGER NOT NULL,
    PRIMARY KEY (server_id, period, start)
);
CREATE INDEX metrics_rollups_start ON metrics_rollups(period, start);
