//! `BackupStore` on SQL: backup records. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_backups {
    ($store:ty) => {
            fn backup_from(row: &DbRow) -> Result<Backup> {
                Ok(Backup {
                    id: BackupId(col(row, "id")?),
                    server_id: ServerId(col(row, "server_id")?),
                    node_id: NodeId(col(row, "node_id")?),
                    name: col(row, "name")?,
                    status: enum_from("status", &col::<String>(row, "status")?)?,
                    storage: enum_from("storage", &col::<String>(row, "storage")?)?,
                    size_bytes: to_u64(col(row, "size_bytes")?),
                    checksum: col(row, "checksum")?,
                    locked: col(row, "locked")?,
                    error: col(row, "error")?,
                    created_at: col(row, "created_at")?,
                    completed_at: col(row, "completed_at")?,
                })
            }

            #[async_trait]
            impl BackupStore for $store {
                async fn create_backup(&self, b: &Backup) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO backups (id, server_id, node_id, name, status, storage, size_bytes, checksum, locked, \
                         error, created_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the backup exists", (ErrorKind::NotFound, "server not found")))?;
                    Ok(())
                }

                async fn get_backup(&self, id: BackupId) -> Result<Backup> {
                    let row = sqlx::query("SELECT * FROM backups WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("backup"))?;
                    backup_from(&row)
                }

                async fn update_backup(&self, b: &Backup) -> Result<()> {
                    let done = sqlx::query(
                        "UPDATE backups SET name = $1, status = $2, size_bytes = $3, checksum = $4, locked = $5, \
                         error = $6, completed_at = $7, node_id = $8 WHERE id = $9",
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
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(Error::not_found("backup"));
                    }
                    Ok(())
                }

                async fn list_backups(&self, server: ServerId) -> Result<Vec<Backup>> {
                    let rows = sqlx::query("SELECT * FROM backups WHERE server_id = $1 ORDER BY created_at DESC, id DESC")
                        .bind(server.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(backup_from).collect()
                }

                async fn delete_backup(&self, id: BackupId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM backups WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(Error::not_found("backup"));
                    }
                    Ok(())
                }

                async fn backup_usage(&self) -> Result<catalyst_core::model::BackupUsage> {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes FROM backups WHERE status <> $1",
                    )
                    .bind(enum_str(&catalyst_core::model::BackupStatus::Failed))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(catalyst_core::model::BackupUsage {
                        backups: to_u64(col::<i64>(&row, "n")?),
                        bytes: to_u64(col::<i64>(&row, "bytes")?),
                    })
                }
            }
    };
}
