//! `AllocationStore` on SQL: nodes' pools of `ip:port`. Servers claim rows in
//! `write_allocations` (servers.rs). Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_allocations {
    ($store:ty) => {
        /// Rows per multi-row insert: 4 binds each, far under SQLite's 32 766.
        const POOL_CHUNK: usize = 1000;

        fn allocation_filter(q: &mut Builder, f: AllocationFilter) {
            filter(q, "node_id = ", f.node_id.map(|x| x.0));
            filter(q, "server_id = ", f.server_id.map(|x| x.0));
        }

        #[async_trait]
        impl AllocationStore for $store {
            async fn add_allocations(&self, node: NodeId, entries: &[PoolEntry]) -> Result<u64> {
                let mut tx = self.write_tx().await?;
                if !exists(&mut *tx, "nodes", node.0).await? {
                    return Err(Error::not_found("node"));
                }
                let mut added = 0;
                for chunk in entries.chunks(POOL_CHUNK) {
                    let mut q = Builder::new("INSERT INTO allocations (node_id, ip, port, alias, notes) ");
                    q.push_values(chunk, |mut row, e| {
                        row.push_bind(node.0)
                            .push_bind(e.ip.clone())
                            .push_bind(i64::from(e.port))
                            .push_bind(e.alias.clone())
                            .push_bind(e.notes.clone());
                    });
                    q.push(" ON CONFLICT (node_id, ip, port) DO NOTHING");
                    added += affected(q.build().execute(&mut *tx).await)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(added)
            }

            async fn list_allocations(&self, f: AllocationFilter, page: Page) -> Result<Paged<NodeAllocation>> {
                let narrow = |q: &mut Builder| allocation_filter(q, f);
                decoded(select_page::<AllocationRow>(&self.pool, "allocations", narrow, "number", page).await?)
            }

            async fn get_allocation(&self, number: u64) -> Result<NodeAllocation> {
                let row = sqlx::query_as::<_, AllocationRow>("SELECT * FROM allocations WHERE number = $1")
                    .bind(to_i64(number))
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "allocation")
            }

            async fn update_allocation(&self, a: &NodeAllocation) -> Result<NodeAllocation> {
                let row = sqlx::query_as::<_, AllocationRow>(
                    "UPDATE allocations SET alias = $1, notes = $2 WHERE number = $3 RETURNING *",
                )
                .bind(&a.alias)
                .bind(&a.notes)
                .bind(to_i64(a.number))
                .fetch_optional(&self.pool)
                .await;
                one(row, "allocation")
            }

            async fn delete_allocation(&self, number: u64) -> Result<()> {
                let done = sqlx::query("DELETE FROM allocations WHERE number = $1 AND server_id IS NULL")
                    .bind(to_i64(number))
                    .execute(&self.pool)
                    .await;
                if affected(done)? == 0 {
                    self.get_allocation(number).await?;
                    return Err(Error::conflict("a server holds this allocation"));
                }
                Ok(())
            }

            async fn held_by(&self, servers: &[ServerId]) -> Result<Vec<NodeAllocation>> {
                let mut out = Vec::new();
                for chunk in servers.chunks(POOL_CHUNK) {
                    let mut q = Builder::new("SELECT * FROM allocations WHERE server_id IN (");
                    let mut ids = q.separated(", ");
                    for id in chunk {
                        ids.push_bind(id.0);
                    }
                    q.push(") ORDER BY number");
                    out.extend(all::<AllocationRow, NodeAllocation>(q.build_query_as().fetch_all(&self.pool).await)?);
                }
                Ok(out)
            }

            async fn free_allocation(&self, node: NodeId, want: &FreeAllocation) -> Result<Option<NodeAllocation>> {
                let mut q = Builder::new("SELECT * FROM allocations WHERE server_id IS NULL AND node_id = ");
                q.push_bind(node.0);
                if !want.ranges.is_empty() {
                    q.push(" AND (FALSE");
                    for (from, to) in &want.ranges {
                        q.push(" OR port BETWEEN ").push_bind(i64::from(*from)).push(" AND ").push_bind(i64::from(*to));
                    }
                    q.push(")");
                }
                if want.dedicated_ip {
                    q.push(" AND ip NOT IN (SELECT ip FROM allocations WHERE server_id IS NOT NULL AND node_id = ");
                    q.push_bind(node.0).push(")");
                }
                q.push(" ORDER BY RANDOM() LIMIT 1");
                maybe(q.build_query_as::<AllocationRow>().fetch_optional(&self.pool).await)
            }
        }
    };
}
