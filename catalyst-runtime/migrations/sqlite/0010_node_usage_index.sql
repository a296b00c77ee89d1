-- Placement sums every node's servers' memory and disk at once: an index that holds those
-- columns answers it without reading the rows (and their JSON bodies). It also serves every
-- look-up by node, so it replaces `servers_node`. Keep in step with ../postgres/0010_node_usage_index.sql.
CREATE INDEX servers_node_usage ON servers(node_id, memory_mb, disk_mb);
DROP INDEX servers_node;
