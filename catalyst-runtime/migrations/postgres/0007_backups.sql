CREATE TABLE backups (
    id UUID PRIMARY KEY NOT NULL,
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    node_id UUID NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    storage TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    checksum TEXT,
    locked BOOLEAN NOT NULL,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ
);
CREATE INDEX backups_server ON backups(server_id, created_at);
