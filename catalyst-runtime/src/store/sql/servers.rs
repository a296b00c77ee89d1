//! `TemplateStore` and `ServerStore` on SQL: templates, servers, allocations and subusers. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_servers {
    ($store:ty) => {
            #[async_trait]
            impl TemplateStore for $store {
                async fn create_template(&self, t: &Template) -> Result<()> {
                    sqlx::query("INSERT INTO templates (id, name, body, created_at, version) VALUES ($1, $2, $3, $4, $5)")
                        .bind(t.id.0)
                        .bind(&t.name)
                        .bind(template_body(t))
                        .bind(t.created_at)
                        .bind(t.version)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "template name is taken", (ErrorKind::NotFound, "")))?;
                    Ok(())
                }

                async fn get_template(&self, id: TemplateId) -> Result<Template> {
                    let row = sqlx::query("SELECT * FROM templates WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("template"))?;
                    template_from(&row)
                }

                async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
                    let (limit, offset) = limit_offset(page);
                    let rows = sqlx::query("SELECT * FROM templates ORDER BY name LIMIT $1 OFFSET $2")
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM templates")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged {
                        items: rows.iter().map(template_from).collect::<Result<_>>()?,
                        total: to_u64(col(&total, "n")?),
                    })
                }

                async fn update_template(&self, t: &Template) -> Result<Template> {
                    let done = sqlx::query(
                        "UPDATE templates SET name = $1, body = $2, version = version + 1 WHERE id = $3 AND version = $4",
                    )
                    .bind(&t.name)
                    .bind(template_body(t))
                    .bind(t.id.0)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "template name is taken", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "templates", t.id.0, "template").await);
                    }
                    Ok(Template { version: t.version + 1, ..t.clone() })
                }

                async fn delete_template(&self, id: TemplateId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM templates WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "servers still use this template")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("template")) } else { Ok(()) }
                }
            }

            async fn write_allocations(tx: &mut sqlx::Transaction<'_, Db>, s: &Server) -> Result<()> {
                sqlx::query("DELETE FROM allocations WHERE server_id = $1")
                    .bind(s.id.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                for a in &s.allocations {
                    sqlx::query("INSERT INTO allocations (node_id, ip, port, server_id) VALUES ($1, $2, $3, $4)")
                        .bind(s.node_id.0)
                        .bind(&a.ip)
                        .bind(i64::from(a.port))
                        .bind(s.id.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| {
                            map_err(e, "an allocation is already used on this node", (ErrorKind::NotFound, "node not found"))
                        })?;
                }
                Ok(())
            }

            #[async_trait]
            impl ServerStore for $store {
                async fn create_server(&self, s: &Server) -> Result<()> {
                    let mut tx = self.write_tx().await?;
                    for (table, id, what) in
                        [("users", s.owner_id.0, "user"), ("nodes", s.node_id.0, "node"), ("templates", s.template_id.0, "template")]
                    {
                        let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
                        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        if found.is_none() {
                            return Err(Error::not_found(what));
                        }
                    }
                    sqlx::query(
                        "INSERT INTO servers (id, owner_id, node_id, template_id, state, memory_mb, disk_mb, body, \
                         created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(s.id.0)
                    .bind(s.owner_id.0)
                    .bind(s.node_id.0)
                    .bind(s.template_id.0)
                    .bind(s.state.as_str())
                    .bind(to_i64(s.limits.memory_mb))
                    .bind(to_i64(s.limits.disk_mb))
                    .bind(server_body(s))
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .bind(s.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "server id exists", (ErrorKind::NotFound, "owner, node or template not found")))?;
                    write_allocations(&mut tx, s).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn get_server(&self, id: ServerId) -> Result<Server> {
                    let row = sqlx::query("SELECT * FROM servers WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("server"))?;
                    server_from(&row)
                }

                async fn list_servers(&self, f: &ServerFilter, page: Page) -> Result<Paged<Server>> {
                    const WHERE: &str = "WHERE ($1 IS NULL OR node_id = $1) AND ($2 IS NULL OR owner_id = $2) \
                         AND ($3 IS NULL OR owner_id = $3 OR EXISTS \
                         (SELECT 1 FROM server_access a WHERE a.server_id = servers.id AND a.user_id = $3))";
                    let (limit, offset) = limit_offset(page);
                    let sql = format!("SELECT * FROM servers {WHERE} ORDER BY created_at, id LIMIT $4 OFFSET $5");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(f.node_id.map(|x| x.0))
                        .bind(f.owner_id.map(|x| x.0))
                        .bind(f.visible_to.map(|x| x.0))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM servers {WHERE}");
                    let total = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(f.node_id.map(|x| x.0))
                        .bind(f.owner_id.map(|x| x.0))
                        .bind(f.visible_to.map(|x| x.0))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(server_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn update_server(&self, s: &Server) -> Result<Server> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE servers SET node_id = $1, state = $2, memory_mb = $3, disk_mb = $4, body = $5, \
                         updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8",
                    )
                    .bind(s.node_id.0)
                    .bind(s.state.as_str())
                    .bind(to_i64(s.limits.memory_mb))
                    .bind(to_i64(s.limits.disk_mb))
                    .bind(server_body(s))
                    .bind(s.updated_at)
                    .bind(s.id.0)
                    .bind(s.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::NotFound, "node not found")))?;
                    if done.rows_affected() == 0 {
                        drop(tx);
                        return Err(cas_failure(&self.pool, "servers", s.id.0, "server").await);
                    }
                    write_allocations(&mut tx, s).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Server { version: s.version + 1, ..s.clone() })
                }

                async fn delete_server(&self, id: ServerId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM servers WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("server")) } else { Ok(()) }
                }

                async fn node_usage(&self, node: NodeId) -> Result<NodeUsage> {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS mem, \
                         CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) AS disk \
                         FROM servers WHERE node_id = $1",
                    )
                    .bind(node.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(NodeUsage {
                        servers: to_u64(col(&row, "n")?),
                        memory_mb: to_u64(col(&row, "mem")?),
                        disk_mb: to_u64(col(&row, "disk")?),
                    })
                }

                async fn put_access(&self, a: &ServerAccess) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO server_access (server_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (server_id, user_id) DO UPDATE SET permissions = excluded.permissions",
                    )
                    .bind(a.server_id.0)
                    .bind(a.user_id.0)
                    .bind(Json(&a.permissions))
                    .bind(a.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::NotFound, "server or user not found")))?;
                    Ok(())
                }

                async fn get_access(&self, server: ServerId, user: UserId) -> Result<Option<ServerAccess>> {
                    let row = sqlx::query("SELECT * FROM server_access WHERE server_id = $1 AND user_id = $2")
                        .bind(server.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(access_from).transpose()
                }

                async fn list_access(&self, server: ServerId) -> Result<Vec<ServerAccess>> {
                    let rows = sqlx::query("SELECT * FROM server_access WHERE server_id = $1 ORDER BY created_at, user_id")
                        .bind(server.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(access_from).collect()
                }

                async fn delete_access(&self, server: ServerId, user: UserId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM server_access WHERE server_id = $1 AND user_id = $2")
                        .bind(server.0)
                        .bind(user.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("server access")) } else { Ok(()) }
                }
            }
    };
}
