//! API keys: `catalyst_<prefix>_<secret>`, shown once, stored as a SHA-256 hash. A key acts for
//! its creator with at most its scopes (never more than the creator holds now), within its own
//! rate limit; revocation, expiry and deletion take effect on the next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use catalyst_core::events::DomainEvent;
use catalyst_core::id::ApiKeyId;
use catalyst_core::model::{ApiKey, Page, Paged};
use catalyst_core::permission::{Permission, PermissionSet, Principal, Scope, authorize};
use catalyst_core::{Error, Result, validate};
use rand::RngCore;
use serde_json::json;

use super::auth::{constant_time_eq, sha256_hex};
use super::{ApiKeyPatch, Catalyst, CreatedApiKey, NewApiKey, Who};

/// What every key starts with, so scanners and people recognise it.
pub const KEY_PREFIX: &str = "catalyst_";
/// The longest rate window a key may have.
const MAX_WINDOW_SECS: u32 = 86_400;
/// Keys one user may make for their own scripts.
pub const MAX_ACCOUNT_KEYS: u64 = 50;
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Fixed-window request counters per key, and when each key's use was last written.
#[derive(Debug, Default)]
pub(super) struct KeyUsage {
    windows: Mutex<HashMap<ApiKeyId, Usage>>,
}

#[derive(Debug)]
struct Usage {
    window_start: Instant,
    count: u32,
    touched: Option<Instant>,
}

impl KeyUsage {
    /// Count one request; `Err(wait)` when the key is over its limit. `Ok(true)` when its last
    /// use is due to be written.
    fn admit(&self, key: &ApiKey) -> std::result::Result<bool, Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let u = windows.entry(key.id).or_insert(Usage { window_start: now, count: 0, touched: None });
        let window = Duration::from_secs(u64::from(key.rate_window_secs.max(1)));
        if now.duration_since(u.window_start) >= window {
            u.window_start = now;
            u.count = 0;
        }
        if let Some(limit) = key.rate_limit
            && u.count >= limit
        {
            return Err(window.saturating_sub(now.duration_since(u.window_start)));
        }
        u.count += 1;
        let due = u.touched.is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY);
        if due {
            u.touched = Some(now);
        }
        Ok(due)
    }

    fn forget(&self, id: ApiKeyId) {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

fn check_scopes(who: &Principal, scopes: &[Permission]) -> Result<()> {
    if scopes.is_empty() {
        return Err(Error::invalid("scopes: at least one permission is required"));
    }
    if let Some(p) = scopes.iter().find(|p| !who.holds(**p)) {
        return Err(Error::denied(format!("a key cannot have {p}: you do not hold it")));
    }
    Ok(())
}

/// Keys are minted and changed by signed-in users only: a key that made keys would hand out
/// credentials that outlive its own expiry, rate limit and revocation.
fn refuse_keys(who: &Principal) -> Result<()> {
    if who.confined_server().is_some() {
        return Err(Error::denied("API keys are created and changed by signed-in users, not with a console ticket"));
    }
    match who.actor() {
        catalyst_core::model::ActorRef::ApiKey(_) => {
            Err(Error::denied("API keys are created and changed by signed-in users, not by other keys"))
        }
        _ => Ok(()),
    }
}

fn check_rate(limit: Option<u32>, window: u32) -> Result<()> {
    if limit == Some(0) {
        return Err(Error::invalid("rate_limit: must be at least 1 (leave it out for no limit)"));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&window) {
        return Err(Error::invalid(format!("rate_window_secs: must be 1 to {MAX_WINDOW_SECS}")));
    }
    Ok(())
}

impl Catalyst {
    /// Create a key acting for the caller (`apikey.create`). The returned `key` is the only
    /// copy of its secret.
    pub async fn create_api_key(&self, who: &Principal, input: NewApiKey) -> Result<CreatedApiKey> {
        let grant = authorize(who, Permission::ApikeyCreate, Scope::Global)?;
        check_scopes(who, &input.scopes)?;
        self.mint_api_key(Who::Grant(&grant, who), who, input).await
    }

    /// Create a key for the caller's own scripts, as any signed-in user may (Pterodactyl's
    /// client keys), at most [`MAX_ACCOUNT_KEYS`] each: each scope is a server permission,
    /// which the key exercises wherever the caller holds it (for a customer, the servers they
    /// own or share; for an operator with a global grant, every server), or a global
    /// permission the caller holds.
    pub async fn create_account_key(&self, who: &Principal, input: NewApiKey) -> Result<CreatedApiKey> {
        refuse_keys(who)?;
        if self.list_account_keys(who, Page::new(0, 1)).await?.total >= MAX_ACCOUNT_KEYS {
            return Err(Error::quota_exceeded(format!(
                "a user keeps at most {MAX_ACCOUNT_KEYS} keys: delete one first"
            )));
        }
        if input.scopes.is_empty() {
            return Err(Error::invalid("scopes: at least one permission is required"));
        }
        if let Some(p) = input.scopes.iter().find(|p| !p.is_server_scoped() && !who.holds(**p)) {
            return Err(Error::denied(format!("a key cannot have {p}: you do not hold it")));
        }
        self.mint_api_key(Who::Principal(who), who, input).await
    }

    /// The caller's own keys, newest first (signed-in users: a key does not manage keys).
    pub async fn list_account_keys(&self, who: &Principal, page: Page) -> Result<Paged<ApiKey>> {
        refuse_keys(who)?;
        let user_id = who.user_id().ok_or_else(|| Error::invalid("API keys belong to users"))?;
        self.inner.store.list_api_keys(Some(user_id), page).await
    }

    /// Delete one of the caller's own keys; another user's is `not_found`.
    pub async fn delete_account_key(&self, who: &Principal, id: ApiKeyId) -> Result<()> {
        refuse_keys(who)?;
        let key = self.inner.store.get_api_key(id).await?;
        if Some(key.user_id) != who.user_id() {
            return Err(Error::not_found("api key"));
        }
        self.remove_api_key(Who::Principal(who), key).await
    }

    async fn mint_api_key(&self, audit_as: Who<'_>, who: &Principal, input: NewApiKey) -> Result<CreatedApiKey> {
        refuse_keys(who)?;
        let user_id = who.user_id().ok_or_else(|| Error::invalid("API keys belong to users"))?;
        let name = validate::name("name", &input.name, 100)?;
        check_rate(input.rate_limit, input.rate_window_secs)?;
        if input.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(Error::invalid("expires_at: must be in the future"));
        }
        let (prefix, secret) = (random_hex(4), random_hex(32));
        let key = ApiKey {
            id: ApiKeyId::new(),
            name,
            prefix: prefix.clone(),
            secret_hash: sha256_hex(&secret),
            user_id,
            scopes: input.scopes,
            rate_limit: input.rate_limit,
            rate_window_secs: input.rate_window_secs,
            expires_at: input.expires_at,
            last_used_at: None,
            revoked: false,
            created_at: self.now(),
            version: 0,
        };
        self.inner.store.create_api_key(&key).await?;
        let details = json!({"name": key.name, "prefix": key.prefix, "scopes": key.scopes});
        self.audit(audit_as, "apikey.create", ("api_key", Some(key.id.to_string())), true, details).await;
        Ok(CreatedApiKey { api_key: key, key: format!("{KEY_PREFIX}{prefix}_{secret}") })
    }

    /// Every key, newest first (`apikey.read`).
    pub async fn list_api_keys(&self, who: &Principal, page: Page) -> Result<Paged<ApiKey>> {
        authorize(who, Permission::ApikeyRead, Scope::Global)?;
        self.inner.store.list_api_keys(None, page).await
    }

    /// Change or revoke a key (`apikey.update`); scopes stay within the caller's permissions.
    pub async fn update_api_key(&self, who: &Principal, id: ApiKeyId, patch: ApiKeyPatch) -> Result<ApiKey> {
        let grant = authorize(who, Permission::ApikeyUpdate, Scope::Global)?;
        refuse_keys(who)?;
        let mut key = self.inner.store.get_api_key(id).await?;
        if let Some(name) = &patch.name {
            key.name = validate::name("name", name, 100)?;
        }
        if let Some(scopes) = patch.scopes {
            check_scopes(who, &scopes)?;
            key.scopes = scopes;
        }
        if let Some(limit) = patch.rate_limit {
            key.rate_limit = (limit > 0).then_some(limit);
        }
        if let Some(window) = patch.rate_window_secs {
            key.rate_window_secs = window;
        }
        check_rate(key.rate_limit, key.rate_window_secs)?;
        if let Some(expires) = patch.expires_at {
            key.expires_at = Some(expires);
        }
        match patch.revoked {
            Some(true) => key.revoked = true,
            Some(false) if key.revoked => return Err(Error::invalid("revoked: a revoked key stays revoked")),
            _ => {}
        }
        let stored = self.inner.store.update_api_key(&key).await;
        self.forget_api_key(&key);
        let stored = stored?;
        if stored.revoked {
            self.publish(DomainEvent::UserRevoked { user_id: stored.user_id });
        }
        let details = json!({"revoked": stored.revoked, "scopes": stored.scopes});
        self.audit(Who::Grant(&grant, who), "apikey.update", ("api_key", Some(id.to_string())), true, details).await;
        Ok(stored)
    }

    /// Delete a key (`apikey.delete`); it stops working at once.
    pub async fn delete_api_key(&self, who: &Principal, id: ApiKeyId) -> Result<()> {
        let grant = authorize(who, Permission::ApikeyDelete, Scope::Global)?;
        let key = self.inner.store.get_api_key(id).await?;
        self.remove_api_key(Who::Grant(&grant, who), key).await
    }

    async fn remove_api_key(&self, audit_as: Who<'_>, key: ApiKey) -> Result<()> {
        let deleted = self.inner.store.delete_api_key(key.id).await;
        self.forget_api_key(&key);
        deleted?;
        // Sockets opened with it re-authenticate, and close.
        self.publish(DomainEvent::UserRevoked { user_id: key.user_id });
        self.audit(audit_as, "apikey.delete", ("api_key", Some(key.id.to_string())), true, json!({})).await;
        Ok(())
    }

    fn forget_api_key(&self, key: &ApiKey) {
        self.inner.cache.forget_api_key(&key.prefix);
        self.inner.key_usage.forget(key.id);
    }

    /// The principal of an API key: its creator's current permissions capped by its scopes.
    /// Every use is audited; over its rate limit it is `rate_limited` with a retry time.
    pub(super) async fn authenticate_api_key(&self, raw: &str, ip: Option<std::net::IpAddr>) -> Result<Principal> {
        let bad = || Error::unauthenticated("the API key is invalid");
        let (prefix, secret) = raw.strip_prefix(KEY_PREFIX).and_then(|r| r.split_once('_')).ok_or_else(bad)?;
        let (key, principal) = match self.inner.cache.api_key(prefix) {
            Some(hit) => hit,
            None => {
                let key = self.inner.store.find_api_key(prefix).await?.ok_or_else(bad)?;
                let user = self.principal_for(key.user_id).await?;
                let scopes: PermissionSet = key.scopes.iter().copied().collect();
                let principal = Principal::api_key(key.user_id, key.id, user.global(), scopes);
                self.inner.cache.put_api_key(prefix, key.clone(), principal.clone());
                (key, principal)
            }
        };
        if !constant_time_eq(&sha256_hex(secret), &key.secret_hash) {
            return Err(bad());
        }
        if key.revoked {
            return Err(Error::unauthenticated("the API key was revoked"));
        }
        if key.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(Error::unauthenticated("the API key has expired"));
        }
        let principal = match ip {
            Some(ip) => principal.with_ip(ip),
            None => principal,
        };
        let touch = match self.inner.key_usage.admit(&key) {
            Ok(touch) => touch,
            Err(wait) => {
                self.audit(
                    Who::Principal(&principal),
                    "apikey.rate_limited",
                    ("api_key", Some(key.id.to_string())),
                    false,
                    json!({}),
                )
                .await;
                return Err(Error::rate_limited("the API key's rate limit is reached").with_retry_after(wait));
            }
        };
        if touch && let Err(e) = self.inner.store.touch_api_key(key.id, self.now()).await {
            tracing::warn!(error = %e, "could not record an API key's use");
        }
        self.audit(Who::Principal(&principal), "apikey.use", ("api_key", Some(key.id.to_string())), true, json!({}))
            .await;
        Ok(principal)
    }
}
