//! `UserStore` on SQL: users, roles and sessions. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_users {
    ($store:ty) => {
        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, user: &User) -> Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO users (id, email, username, password_hash, created_at, updated_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(user.id.0)
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.version)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(e, "email or username is already registered", (ErrorKind::NotFound, "")))?;
                write_user_roles(&mut tx, user).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn get_user(&self, id: UserId) -> Result<User> {
                let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("user"))?;
                user_from(&self.pool, &row).await
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
                let row = sqlx::query("SELECT * FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                match row {
                    Some(row) => Ok(Some(user_from(&self.pool, &row).await?)),
                    None => Ok(None),
                }
            }

            async fn list_users(&self, page: Page) -> Result<Paged<User>> {
                let (limit, offset) = limit_offset(page);
                let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2")
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                let mut items = Vec::with_capacity(rows.len());
                for row in &rows {
                    items.push(user_from(&self.pool, row).await?);
                }
                Ok(Paged { items, total: self.count_users().await? })
            }

            async fn update_user(&self, user: &User) -> Result<User> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE users SET email = $1, username = $2, password_hash = $3, updated_at = $4, \
                         version = version + 1 WHERE id = $5 AND version = $6",
                )
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.updated_at)
                .bind(user.id.0)
                .bind(user.version)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(e, "email or username is already registered", (ErrorKind::NotFound, "")))?;
                if done.rows_affected() == 0 {
                    drop(tx);
                    return Err(cas_failure(&self.pool, "users", user.id.0, "user").await);
                }
                write_user_roles(&mut tx, user).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(User { version: user.version + 1, ..user.clone() })
            }

            async fn delete_user(&self, id: UserId) -> Result<()> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "the user still owns servers")))?;
                if done.rows_affected() == 0 { Err(Error::not_found("user")) } else { Ok(()) }
            }

            async fn count_users(&self) -> Result<u64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await.map_err(db_err)?;
                Ok(to_u64(col(&row, "n")?))
            }

            async fn create_role(&self, role: &Role) -> Result<()> {
                sqlx::query(
                    "INSERT INTO roles (id, name, description, permissions, created_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(role.id.0)
                .bind(&role.name)
                .bind(&role.description)
                .bind(Json(&role.permissions))
                .bind(role.created_at)
                .bind(role.version)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(e, "role name is taken", (ErrorKind::NotFound, "")))?;
                Ok(())
            }

            async fn get_role(&self, id: RoleId) -> Result<Role> {
                let row = sqlx::query("SELECT * FROM roles WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("role"))?;
                role_from(&row)
            }

            async fn find_role_by_name(&self, name: &str) -> Result<Option<Role>> {
                let row = sqlx::query("SELECT * FROM roles WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(role_from).transpose()
            }

            async fn list_roles(&self) -> Result<Vec<Role>> {
                let rows =
                    sqlx::query("SELECT * FROM roles ORDER BY name").fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(role_from).collect()
            }

            async fn update_role(&self, role: &Role) -> Result<Role> {
                let done = sqlx::query(
                    "UPDATE roles SET name = $1, description = $2, permissions = $3, version = version + 1 \
                         WHERE id = $4 AND version = $5",
                )
                .bind(&role.name)
                .bind(&role.description)
                .bind(Json(&role.permissions))
                .bind(role.id.0)
                .bind(role.version)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(e, "role name is taken", (ErrorKind::NotFound, "")))?;
                if done.rows_affected() == 0 {
                    return Err(cas_failure(&self.pool, "roles", role.id.0, "role").await);
                }
                Ok(Role { version: role.version + 1, ..role.clone() })
            }

            async fn delete_role(&self, id: RoleId) -> Result<()> {
                let done = sqlx::query("DELETE FROM roles WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "users still hold this role")))?;
                if done.rows_affected() == 0 { Err(Error::not_found("role")) } else { Ok(()) }
            }

            async fn create_session(&self, session: &Session) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at, revoked) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(session.id.0)
                .bind(session.user_id.0)
                .bind(&session.refresh_hash)
                .bind(session.created_at)
                .bind(session.expires_at)
                .bind(session.revoked)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(e, "session exists", (ErrorKind::NotFound, "user not found")))?;
                Ok(())
            }

            async fn get_session(&self, id: SessionId) -> Result<Session> {
                let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("session"))?;
                session_from(&row)
            }

            async fn rotate_session(&self, id: SessionId, expected_hash: &str, new_hash: &str) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE sessions SET refresh_hash = $1 WHERE id = $2 AND refresh_hash = $3 AND revoked = FALSE",
                )
                .bind(new_hash)
                .bind(id.0)
                .bind(expected_hash)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                if exists(&self.pool, "sessions", id.0).await? {
                    Err(Error::conflict("refresh token was already used"))
                } else {
                    Err(Error::not_found("session"))
                }
            }

            async fn revoke_session(&self, id: SessionId) -> Result<()> {
                let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(Error::not_found("session")) } else { Ok(()) }
            }

            async fn revoke_user_sessions(&self, user: UserId) -> Result<u64> {
                let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE user_id = $1 AND revoked = FALSE")
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}
