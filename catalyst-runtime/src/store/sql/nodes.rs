//! `NodeStore` on SQL: locations, nodes and their credentials. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_nodes {
    ($store:ty) => {
        #[async_trait]
        impl NodeStore for $store {
            async fn create_location(&self, l: &Location) -> Result<Location> {
                let done = sqlx::query(
                    "INSERT INTO locations (id, name, description, created_at, version) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(l.id.0)
                .bind(&l.name)
                .bind(&l.description)
                .bind(l.created_at)
                .bind(l.version)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("location name is taken", NO_REFERENCE))?;
                Ok(Location { number: number_of(&self.pool, "locations", l.id.0).await?, ..l.clone() })
            }

            async fn find_location(&self, number: u64) -> Result<Option<Location>> {
                let row = sqlx::query_as::<_, LocationRow>("SELECT * FROM locations WHERE number = $1")
                    .bind(to_i64(number))
                    .fetch_optional(&self.pool)
                    .await;
                maybe(row)
            }

            async fn find_node(&self, number: u64) -> Result<Option<Node>> {
                let row = sqlx::query_as::<_, NodeRow>("SELECT * FROM nodes WHERE number = $1")
                    .bind(to_i64(number))
                    .fetch_optional(&self.pool)
                    .await;
                maybe(row)
            }

            async fn get_location(&self, id: LocationId) -> Result<Location> {
                let row = sqlx::query_as::<_, LocationRow>("SELECT * FROM locations WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "location")
            }

            async fn list_locations(&self) -> Result<Vec<Location>> {
                let rows = sqlx::query_as::<_, LocationRow>("SELECT * FROM locations ORDER BY name")
                    .fetch_all(&self.pool)
                    .await;
                all(rows)
            }

            async fn update_location(&self, l: &Location) -> Result<Location> {
                let row = sqlx::query_as::<_, LocationRow>(
                    "UPDATE locations SET name = $1, description = $2, version = version + 1 \
                         WHERE id = $3 AND version = $4 RETURNING *",
                )
                .bind(&l.name)
                .bind(&l.description)
                .bind(l.id.0)
                .bind(l.version)
                .fetch_optional(&self.pool)
                .await
                .on_constraint("location name is taken", NO_REFERENCE);
                cas(&self.pool, row, "locations", l.id.0, "location").await?.try_into()
            }

            async fn delete_location(&self, id: LocationId) -> Result<()> {
                let done = sqlx::query("DELETE FROM locations WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done.on_constraint("", (ErrorKind::Conflict, "nodes are still in this location")), "location")
            }

            async fn create_node(&self, n: &Node) -> Result<Node> {
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("node name is taken", (ErrorKind::NotFound, "location not found")))?;
                Ok(Node { number: number_of(&self.pool, "nodes", n.id.0).await?, ..n.clone() })
            }

            async fn get_node(&self, id: NodeId) -> Result<Node> {
                let row = sqlx::query_as::<_, NodeRow>("SELECT * FROM nodes WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "node")
            }

            async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
                decoded(select_page::<NodeRow>(&self.pool, "nodes", everything, "name", page).await?)
            }

            async fn update_node(&self, n: &Node) -> Result<Node> {
                let row = sqlx::query_as::<_, NodeRow>(
                    "UPDATE nodes SET name = $1, location_id = $2, fqdn = $3, memory_mb = $4, disk_mb = $5, \
                         overallocate_percent = $6, deployment_token_hash = $7, deployment_token_expires_at = $8, \
                         credential_hash = $9, last_seen_at = $10, version = version + 1 \
                         WHERE id = $11 AND version = $12 RETURNING *",
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
                .fetch_optional(&self.pool)
                .await
                .on_constraint("node name is taken", (ErrorKind::NotFound, "location not found"));
                cas(&self.pool, row, "nodes", n.id.0, "node").await?.try_into()
            }

            async fn delete_node(&self, id: NodeId) -> Result<()> {
                let done = sqlx::query("DELETE FROM nodes WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done.on_constraint("", (ErrorKind::Conflict, "servers are still on this node")), "node")
            }
        }
    };
}
