//! Users, logins, sessions and roles.

use catalyst_core::id::{RoleId, SessionId, UserId};
use catalyst_core::model::{Page, Paged, Role, Session, User, optional_text};
use catalyst_core::permission::{Permission, PermissionSet, Principal, Scope, authorize};
use catalyst_core::{Error, ErrorKind, Result, validate};
use serde_json::json;

use super::auth::{constant_time_eq, hash_password, random_secret, sha256_hex, verify_password};
use super::cache::{SessionEntry, VerifiedToken};
use super::{Catalyst, LoginInput, LoginOutput, Me, NewRole, NewUser, RegisterInput, UserPatch, Who};

/// The role the bootstrap admin gets.
pub const ADMIN_ROLE: &str = "admin";

/// A hash that verifies nothing, so unknown e-mails cost the same time as wrong passwords.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";

impl Catalyst {
    /// Create an account for yourself, when registration is open. An e-mail that already has
    /// an account gets the same answer as a new one (and nothing happens), so registration
    /// does not tell which addresses exist.
    pub async fn register(&self, input: RegisterInput) -> Result<User> {
        if !self.inner.auth.open_registration {
            return Err(Error::denied("registration is closed: ask the operator for an account"));
        }
        let (user, created) = self.new_user(NewUser::from(input)).await?;
        let outcome = if created { "created" } else { "e-mail taken" };
        self.audit(
            Who::Anonymous(None),
            "auth.register",
            ("user", Some(user.id.to_string())),
            created,
            json!({"email": user.email, "outcome": outcome}),
        )
        .await;
        Ok(user)
    }

    /// Create an account for someone (`admin.users`), whether or not registration is open.
    pub async fn create_user(&self, who: &Principal, input: NewUser) -> Result<User> {
        let grant = authorize(who, Permission::AdminUsers, Scope::Global)?;
        let (user, created) = self.new_user(input).await?;
        if !created {
            return Err(Error::conflict(format!("a user with e-mail {} exists", user.email)));
        }
        self.audit(
            Who::Grant(&grant, who),
            "user.create",
            ("user", Some(user.id.to_string())),
            true,
            json!({"email": user.email, "external_id": user.external_id}),
        )
        .await;
        Ok(user)
    }

    /// Validate and store a user; `false` when the e-mail was taken (the returned user is then
    /// the one that would have been, never stored). A taken username is a conflict.
    async fn new_user(&self, input: NewUser) -> Result<(User, bool)> {
        let email = validate::email(&input.email)?;
        let username = validate::username(&input.username)?;
        validate::password(&input.password)?;
        let now = self.now();
        let user = User {
            id: UserId::new(),
            number: 0,
            external_id: optional_text("external_id", input.external_id.as_deref(), 191)?,
            first_name: validate::text("first_name", input.first_name.trim(), 191)?,
            last_name: validate::text("last_name", input.last_name.trim(), 191)?,
            email,
            username,
            // Hashed either way, so a taken e-mail costs the same time as a new one.
            password_hash: hash_password(input.password).await?,
            roles: vec![],
            created_at: now,
            updated_at: now,
            version: 0,
        };
        if self.inner.store.find_user_by_email(&user.email).await?.is_some() {
            return Ok((user, false));
        }
        match self.inner.store.create_user(&user).await {
            Ok(user) => Ok((user, true)),
            // The e-mail was taken between the look-up and the insert.
            Err(e)
                if e.kind() == ErrorKind::Conflict
                    && self.inner.store.find_user_by_email(&user.email).await?.is_some() =>
            {
                Ok((user, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Exchange an e-mail and password for tokens. Wrong e-mail and wrong password look alike.
    pub async fn login(&self, input: LoginInput, ip: Option<std::net::IpAddr>) -> Result<LoginOutput> {
        let email = input.email.trim().to_lowercase();
        let user = self.inner.store.find_user_by_email(&email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok = verify_password(input.password, hash).await && user.is_some();
        let Some(user) = user.filter(|_| ok) else {
            self.audit(Who::Anonymous(ip), "auth.login", ("user", None), false, json!({"email": email})).await;
            return Err(Error::unauthenticated("invalid email or password"));
        };
        let out = self.open_session(&user).await?;
        let mut p = Principal::user(user.id, PermissionSet::EMPTY);
        if let Some(ip) = ip {
            p = p.with_ip(ip);
        }
        self.audit(Who::Principal(&p), "auth.login", ("user", Some(user.id.to_string())), true, json!({})).await;
        Ok(out)
    }

    async fn open_session(&self, user: &User) -> Result<LoginOutput> {
        let now = self.now();
        let secret = random_secret();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            refresh_hash: sha256_hex(&secret),
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.inner.auth.refresh_ttl).unwrap_or(chrono::Duration::days(30)),
            revoked: false,
        };
        self.inner.store.create_session(&session).await?;
        self.tokens_for(user.clone(), session.id, &secret)
    }

    fn tokens_for(&self, user: User, session: SessionId, secret: &str) -> Result<LoginOutput> {
        Ok(LoginOutput {
            access_token: self.inner.tokens.issue(user.id, session, self.now())?,
            refresh_token: format!("{session}.{secret}"),
            token_type: "Bearer".into(),
            expires_in: self.inner.tokens.access_ttl().as_secs(),
            user,
        })
    }

    /// Who presents `credential`, an access token, an API key (`catalyst_…`) or a console
    /// ticket (`catalyst-ticket.…`, see [`Catalyst::console_ticket`]), from
    /// `client_ip`: the one way in for HTTP, the gateway, SFTP and embedders. An API key gets
    /// its creator's permissions capped by its scopes, is rate-limited and audited; an access
    /// token gets what its user holds now. Revoked sessions, revoked keys and deleted users are
    /// refused at once, whatever the expiry.
    pub async fn authenticate(&self, credential: &str, client_ip: Option<std::net::IpAddr>) -> Result<Principal> {
        if credential.starts_with(super::TICKET_PREFIX) {
            return self.authenticate_ticket(credential, client_ip).await;
        }
        self.authenticate_credential(credential, client_ip).await
    }

    /// An access token or an API key (not a ticket).
    pub(super) async fn authenticate_credential(
        &self,
        credential: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        if credential.starts_with(super::KEY_PREFIX) {
            return self.authenticate_api_key(credential, client_ip).await;
        }
        let principal = self.authenticate_token(credential).await?;
        Ok(match client_ip {
            Some(ip) => principal.with_ip(ip),
            None => principal,
        })
    }

    async fn authenticate_token(&self, access_token: &str) -> Result<Principal> {
        let claims = match self.inner.cache.token(access_token) {
            Some(t) if self.inner.tokens.unexpired(t.exp) => t,
            _ => {
                let c = self.inner.tokens.verify(access_token)?;
                let t = VerifiedToken { sub: c.sub, sid: c.sid, exp: c.exp };
                self.inner.cache.put_token(access_token, t);
                t
            }
        };
        let ended = || Error::unauthenticated("the session has ended");
        let entry = match self.inner.cache.session(claims.sid) {
            Some(entry) => entry,
            None => {
                let session = match self.inner.store.get_session(claims.sid).await {
                    Ok(s) => s,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Err(ended()),
                    Err(e) => return Err(e),
                };
                if session.revoked || session.user_id != claims.sub {
                    return Err(ended());
                }
                let entry =
                    SessionEntry { principal: self.principal_for(claims.sub).await?, expires_at: session.expires_at };
                self.inner.cache.put_session(claims.sid, entry.clone());
                entry
            }
        };
        if entry.principal.user_id() != Some(claims.sub) || entry.expires_at <= self.now() {
            return Err(ended());
        }
        Ok(entry.principal.with_session(claims.sid))
    }

    /// Seconds until a credential stops working: an access token's lifetime, an API key's (at
    /// most a day); `None` if it is neither.
    pub async fn credential_seconds_left(&self, credential: &str) -> Option<u64> {
        if credential.starts_with(super::TICKET_PREFIX) {
            return self.ticket_seconds_left(credential);
        }
        if let Some(rest) = credential.strip_prefix(super::KEY_PREFIX) {
            // An API key lasts until it expires, but a socket re-authenticates daily anyway.
            const DAY: i64 = 86_400;
            let (prefix, _) = rest.split_once('_')?;
            let key = match self.inner.cache.api_key(prefix) {
                Some((key, _)) => key,
                None => self.inner.store.find_api_key(prefix).await.ok()??,
            };
            let left = key.expires_at.map_or(DAY, |e| (e - self.now()).num_seconds().min(DAY));
            return u64::try_from(left).ok();
        }
        let claims = self.inner.tokens.verify(credential).ok()?;
        u64::try_from(claims.exp - self.now().timestamp()).ok()
    }

    /// The principal of a user with the union of their roles' permissions.
    pub async fn principal_for(&self, user_id: UserId) -> Result<Principal> {
        let user = match self.inner.store.get_user(user_id).await {
            Ok(u) => u,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::unauthenticated("the user no longer exists"));
            }
            Err(e) => return Err(e),
        };
        Ok(Principal::user(user.id, self.roles_permissions(&user.roles).await?))
    }

    /// Rotate a refresh token. A token used twice means it was stolen: the whole session ends.
    pub async fn refresh(&self, refresh_token: &str) -> Result<LoginOutput> {
        let bad = || Error::unauthenticated("the refresh token is invalid");
        let (sid, secret) = refresh_token.split_once('.').ok_or_else(bad)?;
        let sid: SessionId = sid.parse().map_err(|_| bad())?;
        let session = self.inner.store.get_session(sid).await.map_err(|_| bad())?;
        if session.revoked || session.expires_at <= self.now() {
            return Err(Error::unauthenticated("the session has ended"));
        }
        let presented = sha256_hex(secret);
        if !constant_time_eq(&presented, &session.refresh_hash) {
            // Reuse of a rotated token: end the session for everyone holding it.
            self.inner.store.revoke_session(sid).await?;
            self.inner.cache.forget_session(sid);
            self.audit(
                Who::Anonymous(None),
                "auth.refresh_reuse",
                ("session", Some(sid.to_string())),
                false,
                json!({}),
            )
            .await;
            return Err(bad());
        }
        let next = random_secret();
        match self.inner.store.rotate_session(sid, &presented, &sha256_hex(&next)).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => return Err(bad()),
            Err(e) => return Err(e),
        }
        let user = self.inner.store.get_user(session.user_id).await.map_err(|_| bad())?;
        self.tokens_for(user, sid, &next)
    }

    /// End the caller's session; its access tokens stop working at once.
    pub async fn logout(&self, who: &Principal) -> Result<()> {
        let sid = who.session().ok_or_else(|| Error::invalid("this credential has no session to end"))?;
        self.inner.store.revoke_session(sid).await?;
        self.inner.cache.forget_session(sid);
        if let Some(user_id) = who.user_id() {
            self.publish(catalyst_core::events::DomainEvent::UserRevoked { user_id });
        }
        self.audit(Who::Principal(who), "auth.logout", ("session", Some(sid.to_string())), true, json!({})).await;
        Ok(())
    }

    /// The caller.
    pub async fn me(&self, who: &Principal) -> Result<Me> {
        let id = who.user_id().ok_or_else(|| Error::invalid("the system principal has no user"))?;
        Ok(Me { user: self.inner.store.get_user(id).await?, permissions: who.global().iter().collect() })
    }

    /// Every user (`admin.users`).
    pub async fn list_users(&self, who: &Principal, page: Page) -> Result<Paged<User>> {
        authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.list_users(page).await
    }

    /// One user: yourself, or anyone with `admin.users`.
    pub async fn get_user(&self, who: &Principal, id: UserId) -> Result<User> {
        if who.user_id() != Some(id) {
            authorize(who, Permission::AdminUsers, Scope::Global).map_err(|_| Error::not_found("user"))?;
        }
        self.inner.store.get_user(id).await
    }

    /// Change a user (`admin.users`). Role changes end the user's sessions.
    pub async fn update_user(&self, who: &Principal, id: UserId, patch: UserPatch) -> Result<User> {
        let grant = authorize(who, Permission::AdminUsers, Scope::Global)?;
        let mut user = self.inner.store.get_user(id).await?;
        self.check_outranks(who, &user.roles).await?;
        if let Some(email) = &patch.email {
            user.email = validate::email(email)?;
        }
        if let Some(username) = &patch.username {
            user.username = validate::username(username)?;
        }
        if let Some(external_id) = &patch.external_id {
            user.external_id = optional_text("external_id", Some(external_id), 191)?;
        }
        if let Some(name) = &patch.first_name {
            user.first_name = validate::text("first_name", name.trim(), 191)?;
        }
        if let Some(name) = &patch.last_name {
            user.last_name = validate::text("last_name", name.trim(), 191)?;
        }
        let password_changed = patch.password.is_some();
        if let Some(password) = patch.password {
            validate::password(&password)?;
            user.password_hash = hash_password(password).await?;
        }
        let roles_changed = patch.roles.as_ref().is_some_and(|r| r != &user.roles);
        if let Some(roles) = patch.roles {
            self.check_outranks(who, &roles).await?;
            user.roles = roles;
        }
        user.updated_at = self.now();
        let user = self.inner.store.update_user(&user).await?;
        if roles_changed || password_changed {
            self.inner.store.revoke_user_sessions(id).await?;
            self.publish(catalyst_core::events::DomainEvent::UserRevoked { user_id: id });
        }
        self.audit(
            Who::Grant(&grant, who),
            "user.update",
            ("user", Some(id.to_string())),
            true,
            json!({"roles_changed": roles_changed, "password_changed": password_changed}),
        )
        .await;
        Ok(user)
    }

    /// Change your own password; every other session ends.
    pub async fn change_password(&self, who: &Principal, current: String, new: String) -> Result<()> {
        let id = who.user_id().ok_or_else(|| Error::invalid("the system principal has no user"))?;
        validate::password(&new)?;
        let mut user = self.inner.store.get_user(id).await?;
        if !verify_password(current, user.password_hash.clone()).await {
            return Err(Error::denied("the current password is wrong"));
        }
        user.password_hash = hash_password(new).await?;
        user.updated_at = self.now();
        self.inner.store.update_user(&user).await?;
        self.inner.store.revoke_user_sessions(id).await?;
        self.publish(catalyst_core::events::DomainEvent::UserRevoked { user_id: id });
        self.audit(Who::Principal(who), "user.password", ("user", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// Delete a user (`admin.users`); refused while they own servers. Their sessions end.
    pub async fn delete_user(&self, who: &Principal, id: UserId) -> Result<()> {
        let grant = authorize(who, Permission::AdminUsers, Scope::Global)?;
        if who.user_id() == Some(id) {
            return Err(Error::conflict("you cannot delete yourself"));
        }
        let user = self.inner.store.get_user(id).await?;
        self.check_outranks(who, &user.roles).await?;
        self.inner.store.delete_user(id).await?;
        self.publish(catalyst_core::events::DomainEvent::UserRevoked { user_id: id });
        self.audit(Who::Grant(&grant, who), "user.delete", ("user", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// Create a role (`admin.users`).
    pub async fn create_role(&self, who: &Principal, input: NewRole) -> Result<Role> {
        let grant = authorize(who, Permission::AdminUsers, Scope::Global)?;
        let name = validate::name("name", &input.name, 64)?;
        if !PermissionSet::from_patterns(&input.permissions)?.is_subset(who.global()) {
            return Err(Error::denied("a role cannot hold permissions you do not hold"));
        }
        let role = Role {
            id: RoleId::new(),
            name,
            description: validate::text("description", &input.description, 1024)?,
            permissions: input.permissions,
            created_at: self.now(),
            version: 0,
        };
        self.inner.store.create_role(&role).await?;
        self.audit(
            Who::Grant(&grant, who),
            "role.create",
            ("role", Some(role.id.to_string())),
            true,
            json!({"name": role.name}),
        )
        .await;
        Ok(role)
    }

    /// Every role (`admin.users`).
    pub async fn list_roles(&self, who: &Principal) -> Result<Vec<Role>> {
        authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.list_roles().await
    }

    /// Delete a role (`admin.users`); refused while users hold it.
    pub async fn delete_role(&self, who: &Principal, id: RoleId) -> Result<()> {
        let grant = authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.delete_role(id).await?;
        self.audit(Who::Grant(&grant, who), "role.delete", ("role", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// The union of the permissions of `roles` (each must exist).
    async fn roles_permissions(&self, roles: &[RoleId]) -> Result<PermissionSet> {
        let mut set = PermissionSet::EMPTY;
        for role in roles {
            let role = self.inner.store.get_role(*role).await?;
            set = set.union(PermissionSet::from_patterns(&role.permissions)?);
        }
        Ok(set)
    }

    /// Refuse unless `who` holds every permission of `roles` (each must exist): nobody hands out,
    /// or takes away from a user, more than they hold themselves.
    async fn check_outranks(&self, who: &Principal, roles: &[RoleId]) -> Result<()> {
        if self.roles_permissions(roles).await?.is_subset(who.global()) {
            Ok(())
        } else {
            Err(Error::denied("that user or role holds permissions you do not hold"))
        }
    }

    /// Ensure an `admin` role with `*` and, if no user has `email` yet, an admin user with it.
    /// Returns the user when it was created now.
    pub async fn bootstrap_admin(&self, email: &str, username: &str, password: String) -> Result<Option<User>> {
        let role = match self.inner.store.find_role_by_name(ADMIN_ROLE).await? {
            Some(role) => role,
            None => {
                let role = Role {
                    id: RoleId::new(),
                    name: ADMIN_ROLE.into(),
                    description: "Everything, everywhere".into(),
                    permissions: vec!["*".into()],
                    created_at: self.now(),
                    version: 0,
                };
                self.inner.store.create_role(&role).await?;
                role
            }
        };
        let email = validate::email(email)?;
        if self.inner.store.find_user_by_email(&email).await?.is_some() {
            return Ok(None);
        }
        validate::password(&password)?;
        let now = self.now();
        let user = User {
            id: UserId::new(),
            number: 0,
            external_id: None,
            first_name: String::new(),
            last_name: String::new(),
            email,
            username: validate::username(username)?,
            password_hash: hash_password(password).await?,
            roles: vec![role.id],
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let user = self.inner.store.create_user(&user).await?;
        self.audit(
            Who::Principal(&Principal::system()),
            "user.bootstrap_admin",
            ("user", Some(user.id.to_string())),
            true,
            json!({}),
        )
        .await;
        Ok(Some(user))
    }
}
