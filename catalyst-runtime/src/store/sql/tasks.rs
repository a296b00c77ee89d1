//! `TaskStore` on SQL: scheduled tasks. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_tasks {
    ($store:ty) => {
        /// Planned tasks first by next firing, then unplanned ones.
        const TASK_ORDER: &str = "(next_run_at IS NULL), next_run_at, id";

        #[async_trait]
        impl TaskStore for $store {
            async fn create_task(&self, t: &ScheduledTask) -> Result<()> {
                if !exists(&self.pool, "servers", t.server_id.0).await? {
                    return Err(Error::not_found("server"));
                }
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("the task exists", (ErrorKind::NotFound, "user not found")))
            }

            async fn get_task(&self, id: TaskId) -> Result<ScheduledTask> {
                let row = sqlx::query_as::<_, TaskRow>("SELECT * FROM tasks WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "task")
            }

            async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>> {
                let narrow = |q: &mut Builder| filter(q, "server_id = ", server.map(|s| s.0));
                decoded(select_page::<TaskRow>(&self.pool, "tasks", narrow, TASK_ORDER, page).await?)
            }

            async fn due_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduledTask>> {
                let sql = format!(
                    "SELECT * FROM tasks WHERE enabled = TRUE AND next_run_at <= $1 ORDER BY {TASK_ORDER} LIMIT $2"
                );
                let rows = sqlx::query_as::<_, TaskRow>(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await;
                all(rows)
            }

            async fn update_task(&self, t: &ScheduledTask) -> Result<ScheduledTask> {
                let row = sqlx::query_as::<_, TaskRow>(
                    "UPDATE tasks SET name = $1, cron = $2, timezone = $3, action = $4, enabled = $5, catch_up = $6, \
                         last_run_at = $7, next_run_at = $8, run_count = $9, last_result = $10, last_error = $11, \
                         version = version + 1 WHERE id = $12 AND version = $13 RETURNING *",
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
                .fetch_optional(&self.pool)
                .await;
                cas(&self.pool, row, "tasks", t.id.0, "task").await?.try_into()
            }

            async fn delete_task(&self, id: TaskId) -> Result<()> {
                found(sqlx::query("DELETE FROM tasks WHERE id = $1").bind(id.0).execute(&self.pool).await, "task")
            }
        }
    };
}
