-- Catalyst schema, PostgreSQL dialect. Keep in step with ../sqlite/0001_init.sql.
-- Ids are UUID, times TIMESTAMPTZ, nested structures JSONB. Keys, uniqueness and
-- references are real columns and constraints.

CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE roles (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    permissions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id UUID NOT NULL REFERENCES roles(id) ON DELETE RESTRICT,
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles(role_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked BOOLEAN NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE locations (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE nodes (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    location_id UUID NOT NULL REFERENCES locations(id) ON DELETE RESTRICT,
    fqdn TEXT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_mb BIGINT NOT NULL,
    overallocate_percent BIGINT NOT NULL,
    deployment_token_hash TEXT,
    deployment_token_expires_at TIMESTAMPTZ,
    credential_hash TEXT,
    last_seen_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX nodes_location ON nodes(location_id);

CREATE TABLE templates (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE servers (
    id UUID PRIMARY KEY NOT NULL,
    owner_id UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    node_id UUID NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT,
    template_id UUID NOT NULL REFERENCES templates(id) ON DELETE RESTRICT,
    state TEXT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_mb BIGINT NOT NULL,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX servers_owner ON servers(owner_id);
CREATE INDEX servers_node ON servers(node_id);
CREATE INDEX servers_template ON servers(template_id);
CREATE INDEX servers_created ON servers(created_at, id);

CREATE TABLE allocations (
    node_id UUID NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT,
    ip TEXT NOT NULL,
    port BIGINT NOT NULL,
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (node_id, ip, port)
);
CREATE INDEX allocations_server ON allocations(server_id);

CREATE TABLE server_access (
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permissions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (server_id, user_id)
);
CREATE INDEX server_access_user ON server_access(user_id);

CREATE TABLE server_logs (
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (server_id, seq)
);
CREATE INDEX server_logs_at ON server_logs(at);

-- Audit rows outlive the users they mention: no foreign keys here.
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY NOT NULL,
    actor JSONB NOT NULL,
    user_id UUID,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    success BOOLEAN NOT NULL,
    details JSONB NOT NULL,
    ip TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_logs_at ON audit_logs(at, id);
CREATE INDEX audit_logs_user ON audit_logs(user_id, at);
CREATE INDEX audit_logs_action ON audit_logs(action, at);
