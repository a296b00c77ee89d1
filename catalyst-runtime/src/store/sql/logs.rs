//! `LogStore` and `AuditStore` on SQL: console lines and the audit log. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_logs {
    ($store:ty) => {
            #[async_trait]
            impl LogStore for $store {
                async fn append_logs(&self, lines: &[ServerLog]) -> Result<u64> {
                    if lines.is_empty() {
                        return Ok(0);
                    }
                    self.append_logs_impl(lines).await
                }

                async fn list_logs(&self, server: ServerId, q: &LogQuery) -> Result<Vec<ServerLog>> {
                    let limit = i64::from(Page::new(0, q.limit.unwrap_or(100)).effective_limit());
                    let rows = sqlx::query(
                        "SELECT * FROM server_logs WHERE server_id = $1 AND ($2 IS NULL OR stream = $2) \
                         AND ($3 IS NULL OR seq < $3) AND ($4 IS NULL OR seq > $4) ORDER BY seq DESC LIMIT $5",
                    )
                    .bind(server.0)
                    .bind(q.stream.map(|s| s.as_str()))
                    .bind(q.before)
                    .bind(q.after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(log_from).collect()
                }

                async fn prune_logs(&self, before: Timestamp) -> Result<u64> {
                    let done = sqlx::query("DELETE FROM server_logs WHERE at < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl AuditStore for $store {
                async fn append_audit(&self, e: &AuditLog) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO audit_logs (id, actor, user_id, action, target_type, target_id, success, details, \
                         ip, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(e.id.0)
                    .bind(Json(&e.actor))
                    .bind(e.user_id.map(|u| u.0))
                    .bind(&e.action)
                    .bind(&e.target_type)
                    .bind(&e.target_id)
                    .bind(e.success)
                    .bind(Json(&e.details))
                    .bind(&e.ip)
                    .bind(e.at)
                    .execute(&self.pool)
                    .await
                    .map_err(|err| map_err(err, "audit id exists", (ErrorKind::Internal, "")))?;
                    Ok(())
                }

                async fn query_audit(&self, q: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
                    const WHERE: &str = "WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR action = $2) \
                         AND ($3 IS NULL OR action LIKE $3 ESCAPE '\\') AND ($4 IS NULL OR target_type = $4) \
                         AND ($5 IS NULL OR target_id = $5) AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7)";
                    let (exact, prefix) = match &q.action {
                        Some(a) if a.ends_with('.') => (None, Some(like_prefix(a))),
                        Some(a) => (Some(a.clone()), None),
                        None => (None, None),
                    };
                    let (limit, offset) = limit_offset(page);
                    macro_rules! bind_filter {
                        ($query:expr) => {
                            $query
                                .bind(q.user_id.map(|u| u.0))
                                .bind(exact.clone())
                                .bind(prefix.clone())
                                .bind(q.target_type.clone())
                                .bind(q.target_id.clone())
                                .bind(q.from)
                                .bind(q.to)
                        };
                    }
                    let sql = format!("SELECT * FROM audit_logs {WHERE} ORDER BY at DESC, id DESC LIMIT $8 OFFSET $9");
                    let rows = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM audit_logs {WHERE}");
                    let total = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(audit_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }
            }
    };
}
