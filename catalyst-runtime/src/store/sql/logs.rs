//! `LogStore` and `AuditStore` on SQL: console lines and the audit log. Expanded inside
//! `impl_sql_store!`, beside its helpers.

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
                let mut sql = Builder::new("SELECT * FROM server_logs WHERE server_id = ");
                sql.push_bind(server.0);
                filter(&mut sql, "stream = ", q.stream.map(|s| s.as_str()));
                filter(&mut sql, "seq < ", q.before);
                filter(&mut sql, "seq > ", q.after);
                sql.push(" ORDER BY seq DESC LIMIT ").push_bind(limit);
                all(sql.build_query_as::<LogRow>().fetch_all(&self.pool).await)
            }

            async fn prune_logs(&self, before: Timestamp) -> Result<u64> {
                affected(sqlx::query("DELETE FROM server_logs WHERE at < $1").bind(before).execute(&self.pool).await)
            }
        }

        /// `query_audit`'s filter: an action ending in `.` is a prefix.
        fn audit_filter(q: &mut Builder, f: &AuditQuery) {
            filter(q, "user_id = ", f.user_id.map(|u| u.0));
            match &f.action {
                Some(a) if a.ends_with('.') => {
                    q.push(" AND action LIKE ").push_bind(like_prefix(a)).push(" ESCAPE '\\'");
                }
                Some(a) => filter(q, "action = ", Some(a.as_str())),
                None => {}
            }
            filter(q, "target_type = ", f.target_type.as_deref());
            filter(q, "target_id = ", f.target_id.as_deref());
            filter(q, "at >= ", f.from);
            filter(q, "at < ", f.to);
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, e: &AuditLog) -> Result<()> {
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("audit id exists", NO_REFERENCE))
            }

            async fn query_audit(&self, q: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
                let narrow = |b: &mut Builder| audit_filter(b, q);
                decoded(select_page::<AuditRow>(&self.pool, "audit_logs", narrow, "at DESC, id DESC", page).await?)
            }
        }
    };
}
