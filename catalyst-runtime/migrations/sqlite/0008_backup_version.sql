-- Backups are updated by compare-and-swap like every other record.
ALTER TABLE backups ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
