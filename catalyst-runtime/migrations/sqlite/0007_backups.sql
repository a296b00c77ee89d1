CREATE TABLE backups (
    id BLOB PRIMARY KEY NOT NULL,
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    node_id BLOB NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    storage TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    checksum TEXT,
    locked BOOLEAN NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX backups_server ON backups(server_id, created_at);
