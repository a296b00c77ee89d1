//! `BackupStore` on SQL: backup records. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_backups {
    ($store:ty) => {
        #[async_trait]
        impl BackupStore for $store {
            async fn create_backup(&self, b: &Backup) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO backups (id, server_id, node_id, name, status, storage, size_bytes, checksum, locked, \
                         error, created_at, completed_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(b.id.0)
                .bind(b.server_id.0)
                .bind(b.node_id.0)
                .bind(&b.name)
                .bind(enum_str(&b.status))
                .bind(enum_str(&b.storage))
                .bind(to_i64(b.size_bytes))
                .bind(&b.checksum)
                .bind(b.locked)
                .bind(&b.error)
                .bind(b.created_at)
                .bind(b.completed_at)
                .bind(b.version)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("the backup exists", (ErrorKind::NotFound, "server not found")))
            }

            async fn get_backup(&self, id: BackupId) -> Result<Backup> {
                let row = sqlx::query_as::<_, BackupRow>("SELECT * FROM backups WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "backup")
            }

            async fn update_backup(&self, b: &Backup) -> Result<Backup> {
                let row = sqlx::query_as::<_, BackupRow>(
                    "UPDATE backups SET name = $1, status = $2, size_bytes = $3, checksum = $4, locked = $5, \
                         error = $6, completed_at = $7, node_id = $8, version = version + 1 \
                         WHERE id = $9 AND version = $10 RETURNING *",
                )
                .bind(&b.name)
                .bind(enum_str(&b.status))
                .bind(to_i64(b.size_bytes))
                .bind(&b.checksum)
                .bind(b.locked)
                .bind(&b.error)
                .bind(b.completed_at)
                .bind(b.node_id.0)
                .bind(b.id.0)
                .bind(b.version)
                .fetch_optional(&self.pool)
                .await;
                cas(&self.pool, row, "backups", b.id.0, "backup").await?.try_into()
            }

            async fn list_backups(&self, server: ServerId, page: Page) -> Result<Paged<Backup>> {
                let narrow = |q: &mut Builder| filter(q, "server_id = ", Some(server.0));
                let order = "created_at DESC, id DESC";
                decoded(select_page::<BackupRow>(&self.pool, "backups", narrow, order, page).await?)
            }

            async fn delete_backup(&self, id: BackupId) -> Result<()> {
                found(sqlx::query("DELETE FROM backups WHERE id = $1").bind(id.0).execute(&self.pool).await, "backup")
            }

            async fn backup_usage(&self) -> Result<BackupUsage> {
                let (n, bytes) = sqlx::query_as::<_, (i64, i64)>(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM backups WHERE status <> $1",
                )
                .bind(enum_str(&BackupStatus::Failed))
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(BackupUsage { backups: to_u64(n), bytes: to_u64(bytes) })
            }
        }
    };
}
