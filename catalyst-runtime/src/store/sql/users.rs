//! `UserStore` on SQL: users, roles and sessions. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_users {
    ($store:ty) => {
        const USER_TAKEN: &str = "email or username is already registered";

        /// The users of `rows` with their roles, in one query for all of them.
        async fn with_roles(pool: &sqlx::Pool<Db>, rows: Vec<UserRow>) -> Result<Vec<User>> {
            if rows.is_empty() {
                return Ok(vec![]);
            }
            let mut q = Builder::new("SELECT user_id, role_id FROM user_roles WHERE user_id IN (");
            let mut ids = q.separated(", ");
            for r in &rows {
                ids.push_bind(r.id);
            }
            q.push(") ORDER BY user_id, position");
            let held: Vec<UserRoleRow> = q.build_query_as().fetch_all(pool).await.map_err(db_err)?;
            let mut roles: std::collections::HashMap<Uuid, Vec<RoleId>> = std::collections::HashMap::new();
            for h in held {
                roles.entry(h.user_id).or_default().push(RoleId(h.role_id));
            }
            Ok(rows
                .into_iter()
                .map(|r| {
                    let held = roles.remove(&r.id).unwrap_or_default();
                    r.into_user(held)
                })
                .collect())
        }

        async fn with_roles_one(pool: &sqlx::Pool<Db>, row: Option<UserRow>) -> Result<Option<User>> {
            Ok(with_roles(pool, row.into_iter().collect()).await?.pop())
        }

        async fn write_user_roles(tx: &mut sqlx::Transaction<'_, Db>, user: &User) -> Result<()> {
            written(sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(user.id.0).execute(&mut **tx).await)?;
            for (i, role) in user.roles.iter().enumerate() {
                let done = sqlx::query("INSERT INTO user_roles (user_id, role_id, position) VALUES ($1, $2, $3)")
                    .bind(user.id.0)
                    .bind(role.0)
                    .bind(i as i64)
                    .execute(&mut **tx)
                    .await;
                written(done.on_constraint("the role is listed twice", (ErrorKind::NotFound, "role not found")))?;
            }
            Ok(())
        }

        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, user: &User) -> Result<User> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO users (id, external_id, first_name, last_name, email, username, password_hash, \
                         created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(user.id.0)
                .bind(&user.external_id)
                .bind(&user.first_name)
                .bind(&user.last_name)
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.version)
                .execute(&mut *tx)
                .await;
                written(done.on_constraint(USER_TAKEN, NO_REFERENCE))?;
                write_user_roles(&mut tx, user).await?;
                let number = number_of(&mut *tx, "users", user.id.0).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(User { number, ..user.clone() })
            }

            async fn find_user(&self, key: Lookup<'_>) -> Result<Option<User>> {
                let q = match key {
                    Lookup::Number(n) => sqlx::query_as("SELECT * FROM users WHERE number = $1").bind(to_i64(n)),
                    Lookup::External(e) => sqlx::query_as("SELECT * FROM users WHERE external_id = $1").bind(e),
                };
                with_roles_one(&self.pool, q.fetch_optional(&self.pool).await.map_err(db_err)?).await
            }

            async fn get_user(&self, id: UserId) -> Result<User> {
                let row =
                    sqlx::query_as("SELECT * FROM users WHERE id = $1").bind(id.0).fetch_optional(&self.pool).await;
                with_roles_one(&self.pool, row.map_err(db_err)?).await?.ok_or_else(|| Error::not_found("user"))
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
                let row =
                    sqlx::query_as("SELECT * FROM users WHERE email = $1").bind(email).fetch_optional(&self.pool).await;
                with_roles_one(&self.pool, row.map_err(db_err)?).await
            }

            async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
                let row = sqlx::query_as("SELECT * FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await;
                with_roles_one(&self.pool, row.map_err(db_err)?).await
            }

            async fn list_users(&self, page: Page) -> Result<Paged<User>> {
                let rows = select_page::<UserRow>(&self.pool, "users", everything, "created_at, id", page).await?;
                Ok(Paged { items: with_roles(&self.pool, rows.items).await?, total: rows.total })
            }

            async fn update_user(&self, user: &User) -> Result<User> {
                let mut tx = self.write_tx().await?;
                let row = sqlx::query_as::<_, UserRow>(
                    "UPDATE users SET email = $1, username = $2, password_hash = $3, updated_at = $4, \
                         external_id = $5, first_name = $6, last_name = $7, version = version + 1 \
                         WHERE id = $8 AND version = $9 RETURNING *",
                )
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.updated_at)
                .bind(&user.external_id)
                .bind(&user.first_name)
                .bind(&user.last_name)
                .bind(user.id.0)
                .bind(user.version)
                .fetch_optional(&mut *tx)
                .await;
                let row =
                    cas(&mut *tx, row.on_constraint(USER_TAKEN, NO_REFERENCE), "users", user.id.0, "user").await?;
                write_user_roles(&mut tx, user).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(row.into_user(user.roles.clone()))
            }

            async fn delete_user(&self, id: UserId) -> Result<()> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done.on_constraint("", (ErrorKind::Conflict, "the user still owns servers")), "user")
            }

            async fn count_users(&self) -> Result<u64> {
                count(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await)
            }

            async fn create_role(&self, role: &Role) -> Result<()> {
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("role name is taken", NO_REFERENCE))
            }

            async fn get_role(&self, id: RoleId) -> Result<Role> {
                let row = sqlx::query_as::<_, RoleRow>("SELECT * FROM roles WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "role")
            }

            async fn find_role_by_name(&self, name: &str) -> Result<Option<Role>> {
                let row = sqlx::query_as::<_, RoleRow>("SELECT * FROM roles WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await;
                maybe(row)
            }

            async fn list_roles(&self) -> Result<Vec<Role>> {
                all(sqlx::query_as::<_, RoleRow>("SELECT * FROM roles ORDER BY name").fetch_all(&self.pool).await)
            }

            async fn update_role(&self, role: &Role) -> Result<Role> {
                let row = sqlx::query_as::<_, RoleRow>(
                    "UPDATE roles SET name = $1, description = $2, permissions = $3, version = version + 1 \
                         WHERE id = $4 AND version = $5 RETURNING *",
                )
                .bind(&role.name)
                .bind(&role.description)
                .bind(Json(&role.permissions))
                .bind(role.id.0)
                .bind(role.version)
                .fetch_optional(&self.pool)
                .await
                .on_constraint("role name is taken", NO_REFERENCE);
                cas(&self.pool, row, "roles", role.id.0, "role").await?.try_into()
            }

            async fn delete_role(&self, id: RoleId) -> Result<()> {
                let done = sqlx::query("DELETE FROM roles WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done.on_constraint("", (ErrorKind::Conflict, "users still hold this role")), "role")
            }

            async fn create_session(&self, session: &Session) -> Result<()> {
                let done = sqlx::query(
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
                .await;
                written(done.on_constraint("session exists", (ErrorKind::NotFound, "user not found")))
            }

            async fn get_session(&self, id: SessionId) -> Result<Session> {
                let row = sqlx::query_as::<_, SessionRow>("SELECT * FROM sessions WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "session")
            }

            async fn rotate_session(&self, id: SessionId, expected_hash: &str, new_hash: &str) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE sessions SET refresh_hash = $1 WHERE id = $2 AND refresh_hash = $3 AND revoked = FALSE",
                )
                .bind(new_hash)
                .bind(id.0)
                .bind(expected_hash)
                .execute(&self.pool)
                .await;
                if affected(done)? == 1 {
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
                    .await;
                found(done, "session")
            }

            async fn revoke_user_sessions(&self, user: UserId) -> Result<u64> {
                let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE user_id = $1 AND revoked = FALSE")
                    .bind(user.0)
                    .execute(&self.pool)
                    .await;
                affected(done)
            }
        }
    };
}
