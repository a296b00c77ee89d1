-- Catalyst schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql.
-- Ids are 16-byte BLOBs, times RFC 3339 TEXT (UTC, so text order is time order), nested
-- structures JSON TEXT. Keys, uniqueness and references are real columns and constraints.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE roles (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE user_roles (
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id BLOB NOT NULL REFERENCES roles(id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles(role_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked BOOLEAN NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE locations (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE nodes (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    location_id BLOB NOT NULL REFERENCES locations(id) ON DELETE RESTRICT,
    fqdn TEXT NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_mb INTEGER NOT NULL,
    overallocate_percent INTEGER NOT NULL,
    deployment_token_hash TEXT,
    deployment_token_expires_at TEXT,
    credential_hash TEXT,
    last_seen_at TEXT,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX nodes_location ON nodes(location_id);

CREATE TABLE templates (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE servers (
    id BLOB PRIMARY KEY NOT NULL,
    owner_id BLOB NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    node_id BLOB NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT,
    template_id BLOB NOT NULL REFERENCES templates(id) ON DELETE RESTRICT,
    state TEXT NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_mb INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX servers_owner ON servers(owner_id);
CREATE INDEX servers_node ON servers(node_id);
CREATE INDEX servers_template ON servers(template_id);
CREATE INDEX servers_created ON servers(created_at, id);

CREATE TABLE allocations (
    node_id BLOB NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (node_id, ip, port)
);
CREATE INDEX allocations_server ON allocations(server_id);

CREATE TABLE server_access (
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (server_id, user_id)
);
CREATE INDEX server_access_user ON server_access(user_id);

CREATE TABLE server_logs (
    server_id BLOB NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (server_id, seq)
) WITHOUT ROWID;
CREATE INDEX server_logs_at ON server_logs(at);

-- Audit rows outlive the users they mention: no foreign keys here.
CREATE TABLE audit_logs (
    id BLOB PRIMARY KEY NOT NULL,
    actor TEXT NOT NULL,
    user_id BLOB,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    success BOOLEAN NOT NULL,
    details TEXT NOT NULL,
    ip TEXT,
    at TEXT NOT NULL
);
CREATE INDEX audit_logs_at ON audit_logs(at, id);
CREATE INDEX audit_logs_user ON audit_logs(user_id, at);
CREATE INDEX audit_logs_action ON audit_logs(action, at);
