//! Read-through caches for the lookups every request makes: who a session belongs to, a server
//! row, and a subuser's grant on a server. Writes made through this process update or evict the
//! entries at once (the server write helpers and [`ReadCache::observe`] on every published
//! event); the time-to-live bounds how stale an entry can be when other control-plane instances
//! write to a shared store. A time-to-live of zero turns caching off.

use std::collections::HashMap;

use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use catalyst_core::events::DomainEvent;
use catalyst_core::id::{ServerId, SessionId, UserId};
use catalyst_core::model::{ApiKey, Server, Timestamp};
use catalyst_core::permission::{PermissionSet, Principal};

/// Entries per map before it is emptied: bounds memory whatever the traffic.
const MAX_ENTRIES: usize = 1 << 16;

/// How long entries live unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// What a verified access token says, kept so the same token is not decoded and its
/// signature checked again on every request.
#[derive(Debug, Clone, Copy)]
pub(super) struct VerifiedToken {
    pub sub: UserId,
    pub sid: SessionId,
    pub exp: i64,
}

/// A live session: its user's principal (without the session id) and when it ends.
#[derive(Debug, Clone)]
pub(super) struct SessionEntry {
    pub principal: Principal,
    pub expires_at: Timestamp,
}

#[derive(Debug)]
struct Map<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    fn new() -> Self {
        Self { entries: RwLock::new(HashMap::new()) }
    }

    fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(_, until)| Instant::now() < *until).map(|(v, _)| v.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now() + ttl));
    }

    fn retain(&self, keep: impl FnMut(&K, &mut (V, Instant)) -> bool) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).retain(keep);
    }

    fn remove<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
    {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The caches of one [`super::Catalyst`].
#[derive(Debug)]
pub(super) struct ReadCache {
    ttl: Duration,
    tokens: Map<String, VerifiedToken>,
    sessions: Map<SessionId, SessionEntry>,
    api_keys: Map<String, (ApiKey, Principal)>,
    servers: Map<ServerId, Server>,
    access: Map<(ServerId, UserId), Option<PermissionSet>>,
}

impl ReadCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tokens: Map::new(),
            sessions: Map::new(),
            api_keys: Map::new(),
            servers: Map::new(),
            access: Map::new(),
        }
    }

    fn on(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// A token verified before; its expiry is still the caller's to check.
    pub fn token(&self, token: &str) -> Option<VerifiedToken> {
        self.on().then(|| self.tokens.get(token)).flatten()
    }

    pub fn put_token(&self, token: &str, verified: VerifiedToken) {
        if self.on() {
            self.tokens.put(token.to_owned(), verified, self.ttl);
        }
    }

    pub fn session(&self, id: SessionId) -> Option<SessionEntry> {
        self.on().then(|| self.sessions.get(&id)).flatten()
    }

    pub fn put_session(&self, id: SessionId, entry: SessionEntry) {
        if self.on() {
            self.sessions.put(id, entry, self.ttl);
        }
    }

    pub fn forget_session(&self, id: SessionId) {
        self.sessions.remove(&id);
    }

    /// A key by its public prefix, with the principal it acts as.
    pub fn api_key(&self, prefix: &str) -> Option<(ApiKey, Principal)> {
        self.on().then(|| self.api_keys.get(prefix)).flatten()
    }

    pub fn put_api_key(&self, prefix: &str, key: ApiKey, principal: Principal) {
        if self.on() {
            self.api_keys.put(prefix.to_owned(), (key, principal), self.ttl);
        }
    }

    pub fn forget_api_key(&self, prefix: &str) {
        self.api_keys.remove(prefix);
    }

    pub fn server(&self, id: ServerId) -> Option<Server> {
        self.on().then(|| self.servers.get(&id)).flatten()
    }

    /// Remember the row a write just stored (or a read just loaded).
    pub fn put_server(&self, server: &Server) {
        if self.on() {
            self.servers.put(server.id, server.clone(), self.ttl);
        }
    }

    pub fn forget_server(&self, id: ServerId) {
        self.servers.remove(&id);
        self.access.retain(|(server, _), _| *server != id);
    }

    pub fn access(&self, server: ServerId, user: UserId) -> Option<Option<PermissionSet>> {
        self.on().then(|| self.access.get(&(server, user))).flatten()
    }

    pub fn put_access(&self, server: ServerId, user: UserId, permissions: Option<PermissionSet>) {
        if self.on() {
            self.access.put((server, user), permissions, self.ttl);
        }
    }

    /// Evict what an event says has changed.
    pub fn observe(&self, event: &DomainEvent) {
        match event {
            DomainEvent::UserRevoked { user_id } => {
                self.sessions.retain(|_, (entry, _)| entry.principal.user_id() != Some(*user_id));
                self.api_keys.retain(|_, ((key, _), _)| key.user_id != *user_id);
            }
            DomainEvent::AccessChanged { server_id, user_id } => {
                self.access.remove(&(*server_id, *user_id));
                self.servers.remove(server_id);
            }
            DomainEvent::ServerDeleted { server_id } | DomainEvent::ServerStateUpdate { server_id, .. } => {
                self.forget_server(*server_id);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        use catalyst_core::id::{NodeId, TemplateId};
        catalyst_core::testing::conformance::fixtures::server("s", UserId::new(), NodeId::new(), TemplateId::new(), 1)
    }

    #[test]
    fn events_evict_what_they_change() {
        let cache = ReadCache::new(Duration::from_secs(60));
        let s = server();
        let user = UserId::new();
        cache.put_server(&s);
        cache.put_access(s.id, user, None);
        let sid = SessionId::new();
        cache.put_session(
            sid,
            SessionEntry { principal: Principal::user(user, PermissionSet::EMPTY), expires_at: s.created_at },
        );
        assert!(cache.server(s.id).is_some() && cache.access(s.id, user).is_some() && cache.session(sid).is_some());

        cache.observe(&DomainEvent::AccessChanged { server_id: s.id, user_id: user });
        assert!(cache.access(s.id, user).is_none() && cache.server(s.id).is_none());
        cache.observe(&DomainEvent::UserRevoked { user_id: UserId::new() });
        assert!(cache.session(sid).is_some(), "another user's revocation keeps this session");
        cache.observe(&DomainEvent::UserRevoked { user_id: user });
        assert!(cache.session(sid).is_none());
        cache.put_server(&s);
        cache.observe(&DomainEvent::ServerDeleted { server_id: s.id });
        assert!(cache.server(s.id).is_none());
    }

    #[test]
    fn zero_ttl_caches_nothing_and_entries_expire() {
        let off = ReadCache::new(Duration::ZERO);
        let s = server();
        off.put_server(&s);
        assert!(off.server(s.id).is_none());
        let short = ReadCache::new(Duration::from_millis(1));
        short.put_server(&s);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.server(s.id).is_none());
    }
}
