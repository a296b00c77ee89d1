//! `TemplateStore` and `ServerStore` on SQL: templates, servers, allocations and subusers.
//! Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_servers {
    ($store:ty) => {
        #[async_trait]
        impl TemplateStore for $store {
            async fn create_template(&self, t: &Template) -> Result<Template> {
                let done = sqlx::query(
                    "INSERT INTO templates (id, name, body, created_at, version) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(t.id.0)
                .bind(&t.name)
                .bind(TemplateBody::of(t))
                .bind(t.created_at)
                .bind(t.version)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("template name is taken", NO_REFERENCE))?;
                Ok(Template { number: number_of(&self.pool, "templates", t.id.0).await?, ..t.clone() })
            }

            async fn find_template(&self, number: u64) -> Result<Option<Template>> {
                let row = sqlx::query_as::<_, TemplateRow>("SELECT * FROM templates WHERE number = $1")
                    .bind(to_i64(number))
                    .fetch_optional(&self.pool)
                    .await;
                maybe(row)
            }

            async fn get_template(&self, id: TemplateId) -> Result<Template> {
                let row = sqlx::query_as::<_, TemplateRow>("SELECT * FROM templates WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "template")
            }

            async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
                decoded(select_page::<TemplateRow>(&self.pool, "templates", everything, "name", page).await?)
            }

            async fn update_template(&self, t: &Template) -> Result<Template> {
                let row = sqlx::query_as::<_, TemplateRow>(
                    "UPDATE templates SET name = $1, body = $2, version = version + 1 \
                         WHERE id = $3 AND version = $4 RETURNING *",
                )
                .bind(&t.name)
                .bind(TemplateBody::of(t))
                .bind(t.id.0)
                .bind(t.version)
                .fetch_optional(&self.pool)
                .await
                .on_constraint("template name is taken", NO_REFERENCE);
                cas(&self.pool, row, "templates", t.id.0, "template").await?.try_into()
            }

            async fn delete_template(&self, id: TemplateId) -> Result<()> {
                let done = sqlx::query("DELETE FROM templates WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done.on_constraint("", (ErrorKind::Conflict, "servers still use this template")), "template")
            }
        }

        /// Release what `s` held, then claim what it lists: a free pool row is taken, a
        /// missing one added; a row another server holds updates nothing, which is the conflict.
        async fn write_allocations(tx: &mut sqlx::Transaction<'_, Db>, s: &Server) -> Result<()> {
            let release = sqlx::query("UPDATE allocations SET server_id = NULL WHERE server_id = $1");
            written(release.bind(s.id.0).execute(&mut **tx).await)?;
            for a in &s.allocations {
                let done = sqlx::query(
                    "INSERT INTO allocations (node_id, ip, port, server_id) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (node_id, ip, port) DO UPDATE SET server_id = excluded.server_id \
                         WHERE allocations.server_id IS NULL",
                )
                .bind(s.node_id.0)
                .bind(&a.ip)
                .bind(i64::from(a.port))
                .bind(s.id.0)
                .execute(&mut **tx)
                .await;
                if affected(done.on_constraint("", (ErrorKind::NotFound, "node not found")))? == 0 {
                    return Err(Error::conflict("an allocation is already used on this node"));
                }
            }
            Ok(())
        }

        /// `list_servers`' filter.
        fn server_filter(q: &mut Builder, f: &ServerFilter) {
            filter(q, "node_id = ", f.node_id.map(|x| x.0));
            filter(q, "owner_id = ", f.owner_id.map(|x| x.0));
            if let Some(p) = f.id_prefix {
                // A range over the primary key: both dialects order UUIDs bytewise.
                let bound = |fill: u8| {
                    let mut b = [fill; 16];
                    b[..4].copy_from_slice(&p);
                    uuid::Uuid::from_bytes(b)
                };
                filter(q, "id >= ", Some(bound(0)));
                filter(q, "id <= ", Some(bound(0xff)));
            }
            if let Some(u) = f.visible_to {
                q.push(" AND (owner_id = ").push_bind(u.0);
                q.push(" OR EXISTS (SELECT 1 FROM server_access a WHERE a.server_id = servers.id AND a.user_id = ");
                q.push_bind(u.0).push("))");
            }
        }

        #[async_trait]
        impl ServerStore for $store {
            async fn create_server(&self, s: &Server) -> Result<Server> {
                let mut tx = self.write_tx().await?;
                for (table, id, what) in [
                    ("users", s.owner_id.0, "user"),
                    ("nodes", s.node_id.0, "node"),
                    ("templates", s.template_id.0, "template"),
                ] {
                    if !exists(&mut *tx, table, id).await? {
                        return Err(Error::not_found(what));
                    }
                }
                let done = sqlx::query(
                    "INSERT INTO servers (id, external_id, owner_id, node_id, template_id, state, memory_mb, \
                         disk_mb, body, created_at, updated_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(s.id.0)
                .bind(&s.external_id)
                .bind(s.owner_id.0)
                .bind(s.node_id.0)
                .bind(s.template_id.0)
                .bind(s.state.as_str())
                .bind(to_i64(s.limits.memory_mb))
                .bind(to_i64(s.limits.disk_mb))
                .bind(ServerBody::of(s))
                .bind(s.created_at)
                .bind(s.updated_at)
                .bind(s.version)
                .execute(&mut *tx)
                .await;
                written(
                    done.on_constraint("server id exists", (ErrorKind::NotFound, "owner, node or template not found")),
                )?;
                write_allocations(&mut tx, s).await?;
                let number = number_of(&mut *tx, "servers", s.id.0).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(Server { number, ..s.clone() })
            }

            async fn find_server(&self, key: Lookup<'_>) -> Result<Option<Server>> {
                let q = match key {
                    Lookup::Number(n) => sqlx::query_as("SELECT * FROM servers WHERE number = $1").bind(to_i64(n)),
                    Lookup::External(e) => sqlx::query_as("SELECT * FROM servers WHERE external_id = $1").bind(e),
                };
                maybe::<ServerRow, _>(q.fetch_optional(&self.pool).await)
            }

            async fn get_server(&self, id: ServerId) -> Result<Server> {
                let row = sqlx::query_as::<_, ServerRow>("SELECT * FROM servers WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "server")
            }

            async fn list_servers(&self, f: &ServerFilter, page: Page) -> Result<Paged<Server>> {
                let narrow = |q: &mut Builder| server_filter(q, f);
                decoded(select_page::<ServerRow>(&self.pool, "servers", narrow, "created_at, id", page).await?)
            }

            async fn update_server(&self, s: &Server) -> Result<Server> {
                let mut tx = self.write_tx().await?;
                let row = sqlx::query_as::<_, ServerRow>(
                    "UPDATE servers SET node_id = $1, state = $2, memory_mb = $3, disk_mb = $4, body = $5, \
                         updated_at = $6, external_id = $7, template_id = $8, owner_id = $9, \
                         version = version + 1 WHERE id = $10 AND version = $11 RETURNING *",
                )
                .bind(s.node_id.0)
                .bind(s.state.as_str())
                .bind(to_i64(s.limits.memory_mb))
                .bind(to_i64(s.limits.disk_mb))
                .bind(ServerBody::of(s))
                .bind(s.updated_at)
                .bind(&s.external_id)
                .bind(s.template_id.0)
                .bind(s.owner_id.0)
                .bind(s.id.0)
                .bind(s.version)
                .fetch_optional(&mut *tx)
                .await
                .on_constraint("", (ErrorKind::NotFound, "node, template or owner not found"));
                let row = cas(&mut *tx, row, "servers", s.id.0, "server").await?;
                write_allocations(&mut tx, s).await?;
                tx.commit().await.map_err(db_err)?;
                row.try_into()
            }

            async fn delete_server(&self, id: ServerId) -> Result<()> {
                found(sqlx::query("DELETE FROM servers WHERE id = $1").bind(id.0).execute(&self.pool).await, "server")
            }

            async fn node_usage(&self, node: NodeId) -> Result<NodeUsage> {
                let (n, mem, disk) = sqlx::query_as::<_, (i64, i64, i64)>(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT), \
                         CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) FROM servers WHERE node_id = $1",
                )
                .bind(node.0)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(NodeUsage { servers: to_u64(n), memory_mb: to_u64(mem), disk_mb: to_u64(disk) })
            }

            async fn usage_by_node(&self) -> Result<Vec<(NodeId, NodeUsage)>> {
                let rows = sqlx::query_as::<_, (Uuid, i64, i64, i64)>(
                    "SELECT node_id, COUNT(*), CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT), \
                         CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) FROM servers GROUP BY node_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(node, n, mem, disk)| {
                        (NodeId(node), NodeUsage { servers: to_u64(n), memory_mb: to_u64(mem), disk_mb: to_u64(disk) })
                    })
                    .collect())
            }

            async fn put_access(&self, a: &ServerAccess) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO server_access (server_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (server_id, user_id) DO UPDATE SET permissions = excluded.permissions",
                )
                .bind(a.server_id.0)
                .bind(a.user_id.0)
                .bind(Json(&a.permissions))
                .bind(a.created_at)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("", (ErrorKind::NotFound, "server or user not found")))
            }

            async fn get_access(&self, server: ServerId, user: UserId) -> Result<Option<ServerAccess>> {
                let row =
                    sqlx::query_as::<_, AccessRow>("SELECT * FROM server_access WHERE server_id = $1 AND user_id = $2")
                        .bind(server.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await;
                maybe(row)
            }

            async fn list_access(&self, server: ServerId) -> Result<Vec<ServerAccess>> {
                let rows = sqlx::query_as::<_, AccessRow>(
                    "SELECT * FROM server_access WHERE server_id = $1 ORDER BY created_at, user_id",
                )
                .bind(server.0)
                .fetch_all(&self.pool)
                .await;
                all(rows)
            }

            async fn delete_access(&self, server: ServerId, user: UserId) -> Result<()> {
                let done = sqlx::query("DELETE FROM server_access WHERE server_id = $1 AND user_id = $2")
                    .bind(server.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await;
                found(done, "server access")
            }
        }
    };
}
