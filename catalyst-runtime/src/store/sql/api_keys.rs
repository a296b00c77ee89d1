//! `ApiKeyStore` on SQL: API keys. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_api_keys {
    ($store:ty) => {
        #[async_trait]
        impl ApiKeyStore for $store {
            async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_keys (id, name, prefix, secret_hash, user_id, scopes, rate_limit, \
                         rate_window_secs, expires_at, last_used_at, revoked, created_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(k.id.0)
                .bind(&k.name)
                .bind(&k.prefix)
                .bind(&k.secret_hash)
                .bind(k.user_id.0)
                .bind(Json(&k.scopes))
                .bind(k.rate_limit.map(i64::from))
                .bind(i64::from(k.rate_window_secs))
                .bind(k.expires_at)
                .bind(k.last_used_at)
                .bind(k.revoked)
                .bind(k.created_at)
                .bind(k.version)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(e, "the API key exists", (ErrorKind::NotFound, "user not found")))?;
                Ok(())
            }

            async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
                let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("API key"))?;
                api_key_from(&row)
            }

            async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query("SELECT * FROM api_keys WHERE prefix = $1")
                    .bind(prefix)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(api_key_from).transpose()
            }

            async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>> {
                let (limit, offset) = limit_offset(page);
                let user = user.map(|u| u.0);
                let rows = sqlx::query(
                    "SELECT * FROM api_keys WHERE ($1 IS NULL OR user_id = $1) \
                         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                )
                .bind(user)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let total = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE ($1 IS NULL OR user_id = $1)")
                    .bind(user)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(Paged {
                    items: rows.iter().map(api_key_from).collect::<Result<_>>()?,
                    total: to_u64(col(&total, "n")?),
                })
            }

            async fn update_api_key(&self, k: &ApiKey) -> Result<ApiKey> {
                let done = sqlx::query(
                    "UPDATE api_keys SET name = $1, scopes = $2, rate_limit = $3, rate_window_secs = $4, \
                         expires_at = $5, revoked = $6, version = version + 1 WHERE id = $7 AND version = $8",
                )
                .bind(&k.name)
                .bind(Json(&k.scopes))
                .bind(k.rate_limit.map(i64::from))
                .bind(i64::from(k.rate_window_secs))
                .bind(k.expires_at)
                .bind(k.revoked)
                .bind(k.id.0)
                .bind(k.version)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                if done.rows_affected() == 0 {
                    return Err(cas_failure(&self.pool, "api_keys", k.id.0, "API key").await);
                }
                self.get_api_key(k.id).await
            }

            async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
                let done = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(Error::not_found("API key")) } else { Ok(()) }
            }

            async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
                let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(Error::not_found("API key")) } else { Ok(()) }
            }
        }

        /// Planned tasks first by next firing, then unplanned ones.
        const TASK_ORDER: &str = "ORDER BY (next_run_at IS NULL), next_run_at, id";
    };
}
