//! `TaskStore` on SQL: scheduled tasks. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_tasks {
    ($store:ty) => {
            #[async_trait]
            impl TaskStore for $store {
                async fn create_task(&self, t: &ScheduledTask) -> Result<()> {
                    if !exists(&self.pool, "servers", t.server_id.0).await? {
                        return Err(Error::not_found("server"));
                    }
                    sqlx::query(
                        "INSERT INTO tasks (id, server_id, name, cron, timezone, action, enabled, catch_up, created_by, \
                         last_run_at, next_run_at, run_count, last_result, last_error, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    )
                    .bind(t.id.0)
                    .bind(t.server_id.0)
                    .bind(&t.name)
                    .bind(&t.cron)
                    .bind(&t.timezone)
                    .bind(Json(&t.action))
                    .bind(t.enabled)
                    .bind(Json(&t.catch_up))
                    .bind(t.created_by.0)
                    .bind(t.last_run_at)
                    .bind(t.next_run_at)
                    .bind(to_i64(t.run_count))
                    .bind(&t.last_result)
                    .bind(&t.last_error)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the task exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_task(&self, id: TaskId) -> Result<ScheduledTask> {
                    let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("task"))?;
                    task_from(&row)
                }

                async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>> {
                    let (limit, offset) = limit_offset(page);
                    let server = server.map(|s| s.0);
                    let sql = format!("SELECT * FROM tasks WHERE ($1 IS NULL OR server_id = $1) {TASK_ORDER} LIMIT $2 OFFSET $3");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(server)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE ($1 IS NULL OR server_id = $1)")
                        .bind(server)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(task_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn due_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduledTask>> {
                    let sql = format!("SELECT * FROM tasks WHERE enabled = TRUE AND next_run_at <= $1 {TASK_ORDER} LIMIT $2");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(task_from).collect()
                }

                async fn update_task(&self, t: &ScheduledTask) -> Result<ScheduledTask> {
                    let done = sqlx::query(
                        "UPDATE tasks SET name = $1, cron = $2, timezone = $3, action = $4, enabled = $5, catch_up = $6, \
                         last_run_at = $7, next_run_at = $8, run_count = $9, last_result = $10, last_error = $11, \
                         version = version + 1 WHERE id = $12 AND version = $13",
                    )
                    .bind(&t.name)
                    .bind(&t.cron)
                    .bind(&t.timezone)
                    .bind(Json(&t.action))
                    .bind(t.enabled)
                    .bind(Json(&t.catch_up))
                    .bind(t.last_run_at)
                    .bind(t.next_run_at)
                    .bind(to_i64(t.run_count))
                    .bind(&t.last_result)
                    .bind(&t.last_error)
                    .bind(t.id.0)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "tasks", t.id.0, "task").await);
                    }
                    self.get_task(t.id).await
                }

                async fn delete_task(&self, id: TaskId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM tasks WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("task")) } else { Ok(()) }
                }
            }

            /// The summary columns of a roll-up, and how they update on a re-run.
            const ROLLUP_INSERT: &str = "INSERT INTO metrics_rollups (server_id, period, start, samples, cpu_avg, \
                cpu_max, memory_avg_bytes, memory_max_bytes, disk_max_bytes, rx_bytes, tx_bytes) ";
            const ROLLUP_UPSERT: &str = " ON CONFLICT (server_id, period, start) DO UPDATE SET \
                samples = excluded.samples, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, \
                memory_avg_bytes = excluded.memory_avg_bytes, memory_max_bytes = excluded.memory_max_bytes, \
                disk_max_bytes = excluded.disk_max_bytes, rx_bytes = excluded.rx_bytes, tx_bytes = excluded.tx_bytes";
    };
}
