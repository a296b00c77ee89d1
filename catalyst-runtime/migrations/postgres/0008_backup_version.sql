-- Backups are updated by compare-and-swap like every other record.
ALTER TABLE backups ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
