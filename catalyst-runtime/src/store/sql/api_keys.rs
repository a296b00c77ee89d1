//! `ApiKeyStore` on SQL: API keys. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_api_keys {
    ($store:ty) => {
        #[async_trait]
        impl ApiKeyStore for $store {
            async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("the API key exists", (ErrorKind::NotFound, "user not found")))
            }

            async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
                let row = sqlx::query_as::<_, ApiKeyRow>("SELECT * FROM api_keys WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "API key")
            }

            async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query_as::<_, ApiKeyRow>("SELECT * FROM api_keys WHERE prefix = $1")
                    .bind(prefix)
                    .fetch_optional(&self.pool)
                    .await;
                maybe(row)
            }

            async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>> {
                let narrow = |q: &mut Builder| filter(q, "user_id = ", user.map(|u| u.0));
                let order = "created_at DESC, id DESC";
                decoded(select_page::<ApiKeyRow>(&self.pool, "api_keys", narrow, order, page).await?)
            }

            async fn update_api_key(&self, k: &ApiKey) -> Result<ApiKey> {
                // The secret and the last use are not the caller's to change.
                let row = sqlx::query_as::<_, ApiKeyRow>(
                    "UPDATE api_keys SET name = $1, scopes = $2, rate_limit = $3, rate_window_secs = $4, \
                         expires_at = $5, revoked = $6, version = version + 1 WHERE id = $7 AND version = $8 \
                         RETURNING *",
                )
                .bind(&k.name)
                .bind(Json(&k.scopes))
                .bind(k.rate_limit.map(i64::from))
                .bind(i64::from(k.rate_window_secs))
                .bind(k.expires_at)
                .bind(k.revoked)
                .bind(k.id.0)
                .bind(k.version)
                .fetch_optional(&self.pool)
                .await;
                cas(&self.pool, row, "api_keys", k.id.0, "API key").await?.try_into()
            }

            async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
                let done = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(id.0)
                    .execute(&self.pool)
                    .await;
                found(done, "API key")
            }

            async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
                found(sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id.0).execute(&self.pool).await, "API key")
            }
        }
    };
}
