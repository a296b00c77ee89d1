-- Integer ids beside the UUIDs (what Pterodactyl clients address objects by), billing
-- fields, and allocation pools: `allocations` now holds every ip:port a node may hand out,
-- free (server_id NULL) or held by one server. Keep in step with ../postgres/0009_numbers_and_pools.sql.
-- SQLite has no sequences: `serials` keeps the last number per table, and a trigger numbers
-- each new row from it, so a number is never reused after a delete (as in PostgreSQL).

CREATE TABLE serials (
    kind TEXT PRIMARY KEY NOT NULL,
    last INTEGER NOT NULL
);

ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id);
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE servers ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX servers_external_id ON servers(external_id);

CREATE TABLE allocations_pool (
    node_id BLOB NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    server_id BLOB REFERENCES servers(id) ON DELETE SET NULL,
    alias TEXT,
    notes TEXT,
    PRIMARY KEY (node_id, ip, port)
);
INSERT INTO allocations_pool (node_id, ip, port, server_id) SELECT node_id, ip, port, server_id FROM allocations;
DROP TABLE allocations;
ALTER TABLE allocations_pool RENAME TO allocations;
CREATE INDEX allocations_server ON allocations(server_id);

ALTER TABLE users ADD COLUMN number INTEGER;
UPDATE users SET number = (SELECT COUNT(*) FROM users AS earlier WHERE earlier.rowid <= users.rowid);
CREATE UNIQUE INDEX users_number ON users(number);
INSERT INTO serials (kind, last) SELECT 'users', COALESCE(MAX(number), 0) FROM users;
CREATE TRIGGER users_number AFTER INSERT ON users WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'users';
    UPDATE users SET number = (SELECT last FROM serials WHERE kind = 'users') WHERE rowid = NEW.rowid;
END;

ALTER TABLE locations ADD COLUMN number INTEGER;
UPDATE locations SET number = (SELECT COUNT(*) FROM locations AS earlier WHERE earlier.rowid <= locations.rowid);
CREATE UNIQUE INDEX locations_number ON locations(number);
INSERT INTO serials (kind, last) SELECT 'locations', COALESCE(MAX(number), 0) FROM locations;
CREATE TRIGGER locations_number AFTER INSERT ON locations WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'locations';
    UPDATE locations SET number = (SELECT last FROM serials WHERE kind = 'locations') WHERE rowid = NEW.rowid;
END;

ALTER TABLE nodes ADD COLUMN number INTEGER;
UPDATE nodes SET number = (SELECT COUNT(*) FROM nodes AS earlier WHERE earlier.rowid <= nodes.rowid);
CREATE UNIQUE INDEX nodes_number ON nodes(number);
INSERT INTO serials (kind, last) SELECT 'nodes', COALESCE(MAX(number), 0) FROM nodes;
CREATE TRIGGER nodes_number AFTER INSERT ON nodes WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'nodes';
    UPDATE nodes SET number = (SELECT last FROM serials WHERE kind = 'nodes') WHERE rowid = NEW.rowid;
END;

ALTER TABLE templates ADD COLUMN number INTEGER;
UPDATE templates SET number = (SELECT COUNT(*) FROM templates AS earlier WHERE earlier.rowid <= templates.rowid);
CREATE UNIQUE INDEX templates_number ON templates(number);
INSERT INTO serials (kind, last) SELECT 'templates', COALESCE(MAX(number), 0) FROM templates;
CREATE TRIGGER templates_number AFTER INSERT ON templates WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'templates';
    UPDATE templates SET number = (SELECT last FROM serials WHERE kind = 'templates') WHERE rowid = NEW.rowid;
END;

ALTER TABLE servers ADD COLUMN number INTEGER;
UPDATE servers SET number = (SELECT COUNT(*) FROM servers AS earlier WHERE earlier.rowid <= servers.rowid);
CREATE UNIQUE INDEX servers_number ON servers(number);
INSERT INTO serials (kind, last) SELECT 'servers', COALESCE(MAX(number), 0) FROM servers;
CREATE TRIGGER servers_number AFTER INSERT ON servers WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'servers';
    UPDATE servers SET number = (SELECT last FROM serials WHERE kind = 'servers') WHERE rowid = NEW.rowid;
END;

ALTER TABLE allocations ADD COLUMN number INTEGER;
UPDATE allocations SET number = (SELECT COUNT(*) FROM allocations AS earlier WHERE earlier.rowid <= allocations.rowid);
CREATE UNIQUE INDEX allocations_number ON allocations(number);
INSERT INTO serials (kind, last) SELECT 'allocations', COALESCE(MAX(number), 0) FROM allocations;
CREATE TRIGGER allocations_number AFTER INSERT ON allocations WHEN NEW.number IS NULL BEGIN
    UPDATE serials SET last = last + 1 WHERE kind = 'allocations';
    UPDATE allocations SET number = (SELECT last FROM serials WHERE kind = 'allocations') WHERE rowid = NEW.rowid;
END;
