//! Every store port in memory: the core user, access and server stores here, allocation pools
//! and numbering in `pool.rs`, the operational ones (logs, audit, API keys, tasks, metrics,
//! alerts, backups) in `ops.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::id::{
    AlertId, AlertRuleId, ApiKeyId, BackupId, LocationId, NodeId, RoleId, ServerId, SessionId, TaskId, TemplateId,
    UserId,
};
use crate::model::{
    Alert, AlertFilter, AlertRule, ApiKey, AuditLog, AuditQuery, Backup, Location, LogQuery, MetricsRollup, Node, Page,
    Paged, Period, Role, ScheduledTask, Server, ServerAccess, ServerLog, ServerMetrics, Session, Template, Timestamp,
    User, WebhookDelivery,
};
use crate::ports::{
    AlertStore, ApiKeyStore, AuditStore, BackupStore, LogStore, Lookup, MetricsStore, NodeStore, NodeUsage,
    ServerFilter, ServerStore, TaskStore, TemplateStore, UserStore,
};
use crate::{Error, Result};

mod ops;
mod pool;

use pool::{Serials, claim, next, release};

/// Every store port in memory, behind one lock (never held across an await).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    roles: HashMap<RoleId, Role>,
    sessions: HashMap<SessionId, Session>,
    locations: HashMap<LocationId, Location>,
    nodes: HashMap<NodeId, Node>,
    templates: HashMap<TemplateId, Template>,
    servers: HashMap<ServerId, Server>,
    access: BTreeMap<(ServerId, UserId), ServerAccess>,
    logs: BTreeMap<(ServerId, i64), ServerLog>,
    audit: Vec<AuditLog>,
    api_keys: HashMap<ApiKeyId, ApiKey>,
    tasks: HashMap<TaskId, ScheduledTask>,
    metrics: BTreeMap<(ServerId, Timestamp), ServerMetrics>,
    rollups: BTreeMap<(ServerId, Period, Timestamp), MetricsRollup>,
    alert_rules: HashMap<AlertRuleId, AlertRule>,
    alerts: HashMap<AlertId, Alert>,
    deliveries: Vec<WebhookDelivery>,
    backups: HashMap<BackupId, Backup>,
    pool: BTreeMap<pool::PoolKey, crate::model::NodeAllocation>,
    serials: Serials,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn page_of<T: Clone>(mut rows: Vec<T>, page: Page) -> Paged<T> {
    let total = rows.len() as u64;
    let start = usize::try_from(page.offset).unwrap_or(usize::MAX).min(rows.len());
    let end = start.saturating_add(page.effective_limit() as usize).min(rows.len());
    Paged { items: rows.drain(start..end).collect(), total }
}

fn cas<T: Clone>(
    stored: &mut T,
    stored_version: i64,
    given: &T,
    given_version: i64,
    bump: impl FnOnce(&mut T),
) -> Result<T> {
    if stored_version != given_version {
        return Err(Error::conflict("the object was modified concurrently; reload and retry"));
    }
    *stored = given.clone();
    bump(stored);
    Ok(stored.clone())
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<User> {
        let mut s = self.lock();
        if external_taken(s.users.values().map(|u| (u.id, &u.external_id)), user.id, &user.external_id) {
            return Err(Error::conflict("external_id is taken"));
        }
        if s.users.values().any(|u| u.email == user.email) {
            return Err(Error::conflict("email is already registered"));
        }
        if s.users.values().any(|u| u.username == user.username) {
            return Err(Error::conflict("username is taken"));
        }
        if s.users.contains_key(&user.id) {
            return Err(Error::conflict("user id exists"));
        }
        let user = User { number: next(&mut s.serials.users), ..user.clone() };
        s.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        self.lock().users.get(&id).cloned().ok_or_else(|| Error::not_found("user"))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(self.lock().users.values().find(|u| u.email == email).cloned())
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
        Ok(self.lock().users.values().find(|u| u.username == username).cloned())
    }

    async fn find_user(&self, key: Lookup<'_>) -> Result<Option<User>> {
        let s = self.lock();
        Ok(s.users.values().find(|u| matches_key(key, u.number, &u.external_id)).cloned())
    }

    async fn list_users(&self, page: Page) -> Result<Paged<User>> {
        let mut rows: Vec<User> = self.lock().users.values().cloned().collect();
        rows.sort_by_key(|r| (r.created_at, r.id));
        Ok(page_of(rows, page))
    }

    async fn update_user(&self, user: &User) -> Result<User> {
        let mut s = self.lock();
        if s.users.values().any(|u| u.id != user.id && u.email == user.email) {
            return Err(Error::conflict("email is already registered"));
        }
        if s.users.values().any(|u| u.id != user.id && u.username == user.username) {
            return Err(Error::conflict("username is taken"));
        }
        if external_taken(s.users.values().map(|u| (u.id, &u.external_id)), user.id, &user.external_id) {
            return Err(Error::conflict("external_id is taken"));
        }
        let stored = s.users.get_mut(&user.id).ok_or_else(|| Error::not_found("user"))?;
        let v = stored.version;
        let number = stored.number;
        cas(stored, v, user, user.version, |u| {
            u.version += 1;
            u.number = number;
        })
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&id) {
            return Err(Error::not_found("user"));
        }
        if s.servers.values().any(|srv| srv.owner_id == id) {
            return Err(Error::conflict("the user still owns servers"));
        }
        s.users.remove(&id);
        s.sessions.retain(|_, x| x.user_id != id);
        s.access.retain(|(_, u), _| *u != id);
        s.api_keys.retain(|_, k| k.user_id != id);
        s.tasks.retain(|_, t| t.created_by != id);
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        Ok(self.lock().users.len() as u64)
    }

    async fn create_role(&self, role: &Role) -> Result<()> {
        let mut s = self.lock();
        if s.roles.values().any(|r| r.name == role.name) || s.roles.contains_key(&role.id) {
            return Err(Error::conflict("role name is taken"));
        }
        s.roles.insert(role.id, role.clone());
        Ok(())
    }

    async fn get_role(&self, id: RoleId) -> Result<Role> {
        self.lock().roles.get(&id).cloned().ok_or_else(|| Error::not_found("role"))
    }

    async fn find_role_by_name(&self, name: &str) -> Result<Option<Role>> {
        Ok(self.lock().roles.values().find(|r| r.name == name).cloned())
    }

    async fn list_roles(&self) -> Result<Vec<Role>> {
        let mut rows: Vec<Role> = self.lock().roles.values().cloned().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn update_role(&self, role: &Role) -> Result<Role> {
        let mut s = self.lock();
        if s.roles.values().any(|r| r.id != role.id && r.name == role.name) {
            return Err(Error::conflict("role name is taken"));
        }
        let stored = s.roles.get_mut(&role.id).ok_or_else(|| Error::not_found("role"))?;
        let v = stored.version;
        cas(stored, v, role, role.version, |r| r.version += 1)
    }

    async fn delete_role(&self, id: RoleId) -> Result<()> {
        let mut s = self.lock();
        if !s.roles.contains_key(&id) {
            return Err(Error::not_found("role"));
        }
        if s.users.values().any(|u| u.roles.contains(&id)) {
            return Err(Error::conflict("users still hold this role"));
        }
        s.roles.remove(&id);
        Ok(())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&session.user_id) {
            return Err(Error::not_found("user"));
        }
        if s.sessions.contains_key(&session.id) {
            return Err(Error::conflict("session exists"));
        }
        s.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Session> {
        self.lock().sessions.get(&id).cloned().ok_or_else(|| Error::not_found("session"))
    }

    async fn rotate_session(&self, id: SessionId, expected_hash: &str, new_hash: &str) -> Result<()> {
        let mut s = self.lock();
        let session = s.sessions.get_mut(&id).ok_or_else(|| Error::not_found("session"))?;
        if session.revoked || session.refresh_hash != expected_hash {
            return Err(Error::conflict("refresh token was already used"));
        }
        session.refresh_hash = new_hash.to_string();
        Ok(())
    }

    async fn revoke_session(&self, id: SessionId) -> Result<()> {
        let mut s = self.lock();
        let session = s.sessions.get_mut(&id).ok_or_else(|| Error::not_found("session"))?;
        session.revoked = true;
        Ok(())
    }

    async fn revoke_user_sessions(&self, user: UserId) -> Result<u64> {
        let mut s = self.lock();
        let mut n = 0;
        for session in s.sessions.values_mut().filter(|x| x.user_id == user && !x.revoked) {
            session.revoked = true;
            n += 1;
        }
        Ok(n)
    }
}

#[async_trait]
impl NodeStore for MemoryStore {
    async fn create_location(&self, location: &Location) -> Result<Location> {
        let mut s = self.lock();
        if s.locations.values().any(|l| l.name == location.name) || s.locations.contains_key(&location.id) {
            return Err(Error::conflict("location name is taken"));
        }
        let location = Location { number: next(&mut s.serials.locations), ..location.clone() };
        s.locations.insert(location.id, location.clone());
        Ok(location)
    }

    async fn get_location(&self, id: LocationId) -> Result<Location> {
        self.lock().locations.get(&id).cloned().ok_or_else(|| Error::not_found("location"))
    }

    async fn list_locations(&self) -> Result<Vec<Location>> {
        let mut rows: Vec<Location> = self.lock().locations.values().cloned().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn update_location(&self, location: &Location) -> Result<Location> {
        let mut s = self.lock();
        if s.locations.values().any(|l| l.id != location.id && l.name == location.name) {
            return Err(Error::conflict("location name is taken"));
        }
        let stored = s.locations.get_mut(&location.id).ok_or_else(|| Error::not_found("location"))?;
        let v = stored.version;
        let number = stored.number;
        cas(stored, v, location, location.version, |l| {
            l.version += 1;
            l.number = number;
        })
    }

    async fn delete_location(&self, id: LocationId) -> Result<()> {
        let mut s = self.lock();
        if !s.locations.contains_key(&id) {
            return Err(Error::not_found("location"));
        }
        if s.nodes.values().any(|n| n.location_id == id) {
            return Err(Error::conflict("nodes are still in this location"));
        }
        s.locations.remove(&id);
        Ok(())
    }

    async fn create_node(&self, node: &Node) -> Result<Node> {
        let mut s = self.lock();
        if !s.locations.contains_key(&node.location_id) {
            return Err(Error::not_found("location"));
        }
        if s.nodes.values().any(|n| n.name == node.name) || s.nodes.contains_key(&node.id) {
            return Err(Error::conflict("node name is taken"));
        }
        let node = Node { number: next(&mut s.serials.nodes), ..node.clone() };
        s.nodes.insert(node.id, node.clone());
        Ok(node)
    }

    async fn get_node(&self, id: NodeId) -> Result<Node> {
        self.lock().nodes.get(&id).cloned().ok_or_else(|| Error::not_found("node"))
    }

    async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
        let mut rows: Vec<Node> = self.lock().nodes.values().cloned().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(page_of(rows, page))
    }

    async fn update_node(&self, node: &Node) -> Result<Node> {
        let mut s = self.lock();
        if !s.locations.contains_key(&node.location_id) {
            return Err(Error::not_found("location"));
        }
        if s.nodes.values().any(|n| n.id != node.id && n.name == node.name) {
            return Err(Error::conflict("node name is taken"));
        }
        let stored = s.nodes.get_mut(&node.id).ok_or_else(|| Error::not_found("node"))?;
        let v = stored.version;
        let number = stored.number;
        cas(stored, v, node, node.version, |n| {
            n.version += 1;
            n.number = number;
        })
    }

    async fn delete_node(&self, id: NodeId) -> Result<()> {
        let mut s = self.lock();
        if !s.nodes.contains_key(&id) {
            return Err(Error::not_found("node"));
        }
        if s.servers.values().any(|srv| srv.node_id == id) {
            return Err(Error::conflict("servers are still on this node"));
        }
        s.nodes.remove(&id);
        s.pool.retain(|(node, _, _), _| *node != id);
        Ok(())
    }

    async fn find_location(&self, number: u64) -> Result<Option<Location>> {
        Ok(self.lock().locations.values().find(|l| l.number == number).cloned())
    }

    async fn find_node(&self, number: u64) -> Result<Option<Node>> {
        Ok(self.lock().nodes.values().find(|n| n.number == number).cloned())
    }
}

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn create_template(&self, template: &Template) -> Result<Template> {
        let mut s = self.lock();
        if s.templates.values().any(|t| t.name == template.name) || s.templates.contains_key(&template.id) {
            return Err(Error::conflict("template name is taken"));
        }
        let template = Template { number: next(&mut s.serials.templates), ..template.clone() };
        s.templates.insert(template.id, template.clone());
        Ok(template)
    }

    async fn find_template(&self, number: u64) -> Result<Option<Template>> {
        Ok(self.lock().templates.values().find(|t| t.number == number).cloned())
    }

    async fn get_template(&self, id: TemplateId) -> Result<Template> {
        self.lock().templates.get(&id).cloned().ok_or_else(|| Error::not_found("template"))
    }

    async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
        let mut rows: Vec<Template> = self.lock().templates.values().cloned().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(page_of(rows, page))
    }

    async fn update_template(&self, template: &Template) -> Result<Template> {
        let mut s = self.lock();
        if s.templates.values().any(|t| t.id != template.id && t.name == template.name) {
            return Err(Error::conflict("template name is taken"));
        }
        let stored = s.templates.get_mut(&template.id).ok_or_else(|| Error::not_found("template"))?;
        let v = stored.version;
        let number = stored.number;
        cas(stored, v, template, template.version, |t| {
            t.version += 1;
            t.number = number;
        })
    }

    async fn delete_template(&self, id: TemplateId) -> Result<()> {
        let mut s = self.lock();
        if !s.templates.contains_key(&id) {
            return Err(Error::not_found("template"));
        }
        if s.servers.values().any(|srv| srv.template_id == id) {
            return Err(Error::conflict("servers still use this template"));
        }
        s.templates.remove(&id);
        Ok(())
    }
}

/// Does another record than `id` already use `external`?
fn external_taken<'a, Id: PartialEq>(
    mut all: impl Iterator<Item = (Id, &'a Option<String>)>,
    id: Id,
    external: &Option<String>,
) -> bool {
    external.is_some() && all.any(|(other, ext)| other != id && ext == external)
}

fn matches_key(key: Lookup<'_>, number: u64, external: &Option<String>) -> bool {
    match key {
        Lookup::Number(n) => number == n,
        Lookup::External(e) => external.as_deref() == Some(e),
    }
}

#[async_trait]
impl ServerStore for MemoryStore {
    async fn create_server(&self, server: &Server) -> Result<Server> {
        let mut s = self.lock();
        if !s.users.contains_key(&server.owner_id) {
            return Err(Error::not_found("user"));
        }
        if !s.nodes.contains_key(&server.node_id) {
            return Err(Error::not_found("node"));
        }
        if !s.templates.contains_key(&server.template_id) {
            return Err(Error::not_found("template"));
        }
        if s.servers.contains_key(&server.id) {
            return Err(Error::conflict("server id exists"));
        }
        if external_taken(s.servers.values().map(|x| (x.id, &x.external_id)), server.id, &server.external_id) {
            return Err(Error::conflict("external_id is taken"));
        }
        claim(&mut s, server)?;
        let server = Server { number: next(&mut s.serials.servers), ..server.clone() };
        s.servers.insert(server.id, server.clone());
        Ok(server)
    }

    async fn find_server(&self, key: Lookup<'_>) -> Result<Option<Server>> {
        let s = self.lock();
        Ok(s.servers.values().find(|x| matches_key(key, x.number, &x.external_id)).cloned())
    }

    async fn get_server(&self, id: ServerId) -> Result<Server> {
        self.lock().servers.get(&id).cloned().ok_or_else(|| Error::not_found("server"))
    }

    async fn list_servers(&self, filter: &ServerFilter, page: Page) -> Result<Paged<Server>> {
        let s = self.lock();
        let mut rows: Vec<Server> = s
            .servers
            .values()
            .filter(|srv| filter.node_id.is_none_or(|n| srv.node_id == n))
            .filter(|srv| filter.owner_id.is_none_or(|o| srv.owner_id == o))
            .filter(|srv| filter.id_prefix.is_none_or(|p| srv.id.prefix() == p))
            .filter(|srv| filter.visible_to.is_none_or(|u| srv.owner_id == u || s.access.contains_key(&(srv.id, u))))
            .cloned()
            .collect();
        rows.sort_by_key(|r| (r.created_at, r.id));
        Ok(page_of(rows, page))
    }

    async fn update_server(&self, server: &Server) -> Result<Server> {
        let mut s = self.lock();
        if !s.nodes.contains_key(&server.node_id) {
            return Err(Error::not_found("node"));
        }
        if external_taken(s.servers.values().map(|x| (x.id, &x.external_id)), server.id, &server.external_id) {
            return Err(Error::conflict("external_id is taken"));
        }
        let stored = s.servers.get(&server.id).ok_or_else(|| Error::not_found("server"))?;
        if stored.version != server.version {
            return Err(Error::conflict("the object was modified concurrently; reload and retry"));
        }
        let number = stored.number;
        claim(&mut s, server)?;
        let stored = s.servers.get_mut(&server.id).ok_or_else(|| Error::not_found("server"))?;
        let v = stored.version;
        cas(stored, v, server, server.version, |x| {
            x.version += 1;
            x.number = number;
        })
    }

    async fn delete_server(&self, id: ServerId) -> Result<()> {
        let mut s = self.lock();
        if s.servers.remove(&id).is_none() {
            return Err(Error::not_found("server"));
        }
        release(&mut s, id, |_| true);
        s.access.retain(|(srv, _), _| *srv != id);
        s.logs.retain(|(srv, _), _| *srv != id);
        s.tasks.retain(|_, t| t.server_id != id);
        s.metrics.retain(|(srv, _), _| *srv != id);
        s.rollups.retain(|(srv, _, _), _| *srv != id);
        s.backups.retain(|_, b| b.server_id != id);
        Ok(())
    }

    async fn node_usage(&self, node: NodeId) -> Result<NodeUsage> {
        let s = self.lock();
        let mut usage = NodeUsage::default();
        for srv in s.servers.values().filter(|x| x.node_id == node) {
            usage.servers += 1;
            usage.memory_mb += srv.limits.memory_mb;
            usage.disk_mb += srv.limits.disk_mb;
        }
        Ok(usage)
    }

    async fn usage_by_node(&self) -> Result<Vec<(NodeId, NodeUsage)>> {
        let s = self.lock();
        let mut by: BTreeMap<NodeId, NodeUsage> = BTreeMap::new();
        for srv in s.servers.values() {
            let usage = by.entry(srv.node_id).or_default();
            usage.servers += 1;
            usage.memory_mb += srv.limits.memory_mb;
            usage.disk_mb += srv.limits.disk_mb;
        }
        Ok(by.into_iter().collect())
    }

    async fn put_access(&self, access: &ServerAccess) -> Result<()> {
        let mut s = self.lock();
        if !s.servers.contains_key(&access.server_id) {
            return Err(Error::not_found("server"));
        }
        if !s.users.contains_key(&access.user_id) {
            return Err(Error::not_found("user"));
        }
        s.access.insert((access.server_id, access.user_id), access.clone());
        Ok(())
    }

    async fn get_access(&self, server: ServerId, user: UserId) -> Result<Option<ServerAccess>> {
        Ok(self.lock().access.get(&(server, user)).cloned())
    }

    async fn list_access(&self, server: ServerId) -> Result<Vec<ServerAccess>> {
        let s = self.lock();
        let mut rows: Vec<ServerAccess> = s
            .access
            .range((server, UserId(uuid::Uuid::nil()))..)
            .take_while(|((srv, _), _)| *srv == server)
            .map(|(_, a)| a.clone())
            .collect();
        rows.sort_by_key(|r| (r.created_at, r.user_id));
        Ok(rows)
    }

    async fn delete_access(&self, server: ServerId, user: UserId) -> Result<()> {
        self.lock().access.remove(&(server, user)).map(|_| ()).ok_or_else(|| Error::not_found("server access"))
    }
}

/// Nothing to close: the data lives as long as the store.
#[async_trait]
impl crate::ports::StoreLifecycle for MemoryStore {
    async fn close(&self) {}
}
