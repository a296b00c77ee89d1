//! `NodeStore` on SQL: locations, nodes and their credentials. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_nodes {
    ($store:ty) => {
            #[async_trait]
            impl NodeStore for $store {
                async fn create_location(&self, l: &Location) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO locations (id, name, description, created_at, version) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(l.id.0)
                    .bind(&l.name)
                    .bind(&l.description)
                    .bind(l.created_at)
                    .bind(l.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "location name is taken", (ErrorKind::NotFound, "")))?;
                    Ok(())
                }

                async fn get_location(&self, id: LocationId) -> Result<Location> {
                    let row = sqlx::query("SELECT * FROM locations WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("location"))?;
                    location_from(&row)
                }

                async fn list_locations(&self) -> Result<Vec<Location>> {
                    let rows = sqlx::query("SELECT * FROM locations ORDER BY name")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(location_from).collect()
                }

                async fn update_location(&self, l: &Location) -> Result<Location> {
                    let done = sqlx::query(
                        "UPDATE locations SET name = $1, description = $2, version = version + 1 \
                         WHERE id = $3 AND version = $4",
                    )
                    .bind(&l.name)
                    .bind(&l.description)
                    .bind(l.id.0)
                    .bind(l.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "location name is taken", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "locations", l.id.0, "location").await);
                    }
                    Ok(Location { version: l.version + 1, ..l.clone() })
                }

                async fn delete_location(&self, id: LocationId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM locations WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "nodes are still in this location")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("location")) } else { Ok(()) }
                }

                async fn create_node(&self, n: &Node) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO nodes (id, name, location_id, fqdn, memory_mb, disk_mb, overallocate_percent, \
                         deployment_token_hash, deployment_token_expires_at, credential_hash, last_seen_at, \
                         created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(n.id.0)
                    .bind(&n.name)
                    .bind(n.location_id.0)
                    .bind(&n.fqdn)
                    .bind(to_i64(n.memory_mb))
                    .bind(to_i64(n.disk_mb))
                    .bind(i64::from(n.overallocate_percent))
                    .bind(&n.deployment_token_hash)
                    .bind(n.deployment_token_expires_at)
                    .bind(&n.credential_hash)
                    .bind(n.last_seen_at)
                    .bind(n.created_at)
                    .bind(n.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "node name is taken", (ErrorKind::NotFound, "location not found")))?;
                    Ok(())
                }

                async fn get_node(&self, id: NodeId) -> Result<Node> {
                    let row = sqlx::query("SELECT * FROM nodes WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("node"))?;
                    node_from(&row)
                }

                async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
                    let (limit, offset) = limit_offset(page);
                    let rows = sqlx::query("SELECT * FROM nodes ORDER BY name LIMIT $1 OFFSET $2")
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM nodes")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(node_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn update_node(&self, n: &Node) -> Result<Node> {
                    let done = sqlx::query(
                        "UPDATE nodes SET name = $1, location_id = $2, fqdn = $3, memory_mb = $4, disk_mb = $5, \
                         overallocate_percent = $6, deployment_token_hash = $7, deployment_token_expires_at = $8, \
                         credential_hash = $9, last_seen_at = $10, version = version + 1 \
                         WHERE id = $11 AND version = $12",
                    )
                    .bind(&n.name)
                    .bind(n.location_id.0)
                    .bind(&n.fqdn)
                    .bind(to_i64(n.memory_mb))
                    .bind(to_i64(n.disk_mb))
                    .bind(i64::from(n.overallocate_percent))
                    .bind(&n.deployment_token_hash)
                    .bind(n.deployment_token_expires_at)
                    .bind(&n.credential_hash)
                    .bind(n.last_seen_at)
                    .bind(n.id.0)
                    .bind(n.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "node name is taken", (ErrorKind::NotFound, "location not found")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "nodes", n.id.0, "node").await);
                    }
                    Ok(Node { version: n.version + 1, ..n.clone() })
                }

                async fn delete_node(&self, id: NodeId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "servers are still on this node")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("node")) } else { Ok(()) }
                }
            }
    };
}
