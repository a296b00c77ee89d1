CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    rate_limit INTEGER,
    rate_window_secs INTEGER NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id, created_at);
