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
    AlertStore, ApiKeyStore, AuditStore, BackupStore, LogStore, MetricsStore, NodeStore, NodeUsage, ServerFilter,
    ServerStore, TaskStore, TemplateStore, UserStore,
};
use crate::{Error, Result};

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
    async fn create_user(&self, user: &User) -> Result<()> {
        let mut s = self.lock();
        if s.users.values().any(|u| u.email == user.email) {
            return Err(Error::conflict("email is already registered"));
        }
        if s.users.values().any(|u| u.username == user.username) {
            return Err(Error::conflict("username is taken"));
        }
        if s.users.contains_key(&user.id) {
            return Err(Error::conflict("user id exists"));
        }
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        self.lock().users.get(&id).cloned().ok_or_else(|| Error::not_found("user"))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(self.lock().users.values().find(|u| u.email == email).cloned())
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
        let stored = s.users.get_mut(&user.id).ok_or_else(|| Error::not_found("user"))?;
        let v = stored.version;
        cas(stored, v, user, user.version, |u| u.version += 1)
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
    async fn create_location(&self, location: &Location) -> Result<()> {
        let mut s = self.lock();
        if s.locations.values().any(|l| l.name == location.name) || s.locations.contains_key(&location.id) {
            return Err(Error::conflict("location name is taken"));
        }
        s.locations.insert(location.id, location.clone());
        Ok(())
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
        cas(stored, v, location, location.version, |l| l.version += 1)
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

    async fn create_node(&self, node: &Node) -> Result<()> {
        let mut s = self.lock();
        if !s.locations.contains_key(&node.location_id) {
            return Err(Error::not_found("location"));
        }
        if s.nodes.values().any(|n| n.name == node.name) || s.nodes.contains_key(&node.id) {
            return Err(Error::conflict("node name is taken"));
        }
        s.nodes.insert(node.id, node.clone());
        Ok(())
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
        cas(stored, v, node, node.version, |n| n.version += 1)
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
        Ok(())
    }
}

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn create_template(&self, template: &Template) -> Result<()> {
        let mut s = self.lock();
        if s.templates.values().any(|t| t.name == template.name) || s.templates.contains_key(&template.id) {
            return Err(Error::conflict("template name is taken"));
        }
        s.templates.insert(template.id, template.clone());
        Ok(())
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
        cas(stored, v, template, template.version, |t| t.version += 1)
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

fn allocation_taken(s: &State, server: &Server) -> bool {
    s.servers
        .values()
        .filter(|o| o.id != server.id && o.node_id == server.node_id)
        .any(|o| o.allocations.iter().any(|a| server.allocations.iter().any(|b| a.ip == b.ip && a.port == b.port)))
}

#[async_trait]
impl ServerStore for MemoryStore {
    async fn create_server(&self, server: &Server) -> Result<()> {
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
        if allocation_taken(&s, server) {
            return Err(Error::conflict("an allocation is already used on this node"));
        }
        s.servers.insert(server.id, server.clone());
        Ok(())
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
        if allocation_taken(&s, server) {
            return Err(Error::conflict("an allocation is already used on this node"));
        }
        let stored = s.servers.get_mut(&server.id).ok_or_else(|| Error::not_found("server"))?;
        let v = stored.version;
        cas(stored, v, server, server.version, |x| x.version += 1)
    }

    async fn delete_server(&self, id: ServerId) -> Result<()> {
        let mut s = self.lock();
        if s.servers.remove(&id).is_none() {
            return Err(Error::not_found("server"));
        }
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

#[async_trait]
impl LogStore for MemoryStore {
    async fn append_logs(&self, lines: &[ServerLog]) -> Result<u64> {
        let mut s = self.lock();
        let mut added = 0;
        for line in lines {
            if !s.servers.contains_key(&line.server_id) {
                return Err(Error::not_found("server"));
            }
        }
        for line in lines {
            if let std::collections::btree_map::Entry::Vacant(e) = s.logs.entry((line.server_id, line.seq)) {
                e.insert(line.clone());
                added += 1;
            }
        }
        Ok(added)
    }

    async fn list_logs(&self, server: ServerId, query: &LogQuery) -> Result<Vec<ServerLog>> {
        let s = self.lock();
        let limit = Page::new(0, query.limit.unwrap_or(100)).effective_limit() as usize;
        Ok(s.logs
            .range((server, i64::MIN)..=(server, i64::MAX))
            .rev()
            .map(|(_, l)| l)
            .filter(|l| query.stream.is_none_or(|st| l.stream == st))
            .filter(|l| query.before.is_none_or(|b| l.seq < b))
            .filter(|l| query.after.is_none_or(|a| l.seq > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn prune_logs(&self, before: Timestamp) -> Result<u64> {
        let mut s = self.lock();
        let n = s.logs.len();
        s.logs.retain(|_, l| l.at >= before);
        Ok((n - s.logs.len()) as u64)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entry: &AuditLog) -> Result<()> {
        self.lock().audit.push(entry.clone());
        Ok(())
    }

    async fn query_audit(&self, query: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
        let s = self.lock();
        let mut rows: Vec<AuditLog> = s.audit.iter().filter(|e| audit_matches(e, query)).cloned().collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
        Ok(page_of(rows, page))
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&key.user_id) {
            return Err(Error::not_found("user"));
        }
        if s.api_keys.values().any(|k| k.id == key.id || k.prefix == key.prefix) {
            return Err(Error::conflict("the API key exists"));
        }
        s.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
        self.lock().api_keys.get(&id).cloned().ok_or_else(|| Error::not_found("API key"))
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>> {
        Ok(self.lock().api_keys.values().find(|k| k.prefix == prefix).cloned())
    }

    async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>> {
        let s = self.lock();
        let mut rows: Vec<ApiKey> =
            s.api_keys.values().filter(|k| user.is_none_or(|u| k.user_id == u)).cloned().collect();
        rows.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(page_of(rows, page))
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<ApiKey> {
        let mut s = self.lock();
        let stored = s.api_keys.get_mut(&key.id).ok_or_else(|| Error::not_found("API key"))?;
        let (v, secret, last_used) = (stored.version, stored.secret_hash.clone(), stored.last_used_at);
        let mut given = key.clone();
        given.secret_hash = secret;
        given.last_used_at = last_used;
        cas(stored, v, &given, key.version, |k| k.version += 1)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
        let mut s = self.lock();
        let key = s.api_keys.get_mut(&id).ok_or_else(|| Error::not_found("API key"))?;
        key.last_used_at = Some(at);
        Ok(())
    }

    async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
        self.lock().api_keys.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("API key"))
    }
}

/// Tasks in the order stores list them: by next firing (unplanned last), then id.
fn task_order(t: &ScheduledTask) -> (bool, Option<Timestamp>, TaskId) {
    (t.next_run_at.is_none(), t.next_run_at, t.id)
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create_task(&self, task: &ScheduledTask) -> Result<()> {
        let mut s = self.lock();
        if !s.servers.contains_key(&task.server_id) {
            return Err(Error::not_found("server"));
        }
        if !s.users.contains_key(&task.created_by) {
            return Err(Error::not_found("user"));
        }
        if s.tasks.contains_key(&task.id) {
            return Err(Error::conflict("the task exists"));
        }
        s.tasks.insert(task.id, task.clone());
        Ok(())
    }

    async fn get_task(&self, id: TaskId) -> Result<ScheduledTask> {
        self.lock().tasks.get(&id).cloned().ok_or_else(|| Error::not_found("task"))
    }

    async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.tasks.values().filter(|t| server.is_none_or(|id| t.server_id == id)).cloned().collect();
        rows.sort_by_key(task_order);
        Ok(page_of(rows, page))
    }

    async fn due_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduledTask>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.tasks.values().filter(|t| t.enabled && t.next_run_at.is_some_and(|n| n <= now)).cloned().collect();
        rows.sort_by_key(task_order);
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn update_task(&self, task: &ScheduledTask) -> Result<ScheduledTask> {
        let mut s = self.lock();
        let stored = s.tasks.get_mut(&task.id).ok_or_else(|| Error::not_found("task"))?;
        let v = stored.version;
        cas(stored, v, task, task.version, |t| t.version += 1)
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.lock().tasks.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("task"))
    }
}

/// Summarise `rows` of one server as the SQL stores do.
fn summarise(server: ServerId, period: Period, start: Timestamp, rows: &[MetricsRollup]) -> MetricsRollup {
    let samples: u64 = rows.iter().map(|r| r.samples).sum();
    let weighted = |f: fn(&MetricsRollup) -> f64| {
        rows.iter().map(|r| f(r) * r.samples as f64).sum::<f64>() / samples.max(1) as f64
    };
    MetricsRollup {
        server_id: server,
        period,
        start,
        samples,
        cpu_avg: weighted(|r| r.cpu_avg),
        cpu_max: rows.iter().map(|r| r.cpu_max).fold(0.0, f64::max),
        memory_avg_bytes: weighted(|r| r.memory_avg_bytes),
        memory_max_bytes: rows.iter().map(|r| r.memory_max_bytes).max().unwrap_or(0),
        disk_max_bytes: rows.iter().map(|r| r.disk_max_bytes).max().unwrap_or(0),
        rx_bytes: rows.iter().map(|r| r.rx_bytes).max().unwrap_or(0),
        tx_bytes: rows.iter().map(|r| r.tx_bytes).max().unwrap_or(0),
    }
}

#[async_trait]
impl MetricsStore for MemoryStore {
    async fn append_metrics(&self, samples: &[ServerMetrics]) -> Result<u64> {
        let mut s = self.lock();
        let mut new = 0;
        for m in samples {
            if !s.servers.contains_key(&m.server_id) {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = s.metrics.entry((m.server_id, m.at)) {
                e.insert(m.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn list_metrics(
        &self,
        server: ServerId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<ServerMetrics>> {
        let s = self.lock();
        Ok(s.metrics.range((server, from)..(server, to)).take(limit as usize).map(|(_, m)| m.clone()).collect())
    }

    async fn roll_up(&self, period: Period, start: Timestamp) -> Result<u64> {
        let mut s = self.lock();
        let end = start + period.length();
        let mut by_server: BTreeMap<ServerId, Vec<MetricsRollup>> = BTreeMap::new();
        match period {
            Period::Hour => {
                for m in s.metrics.values().filter(|m| m.at >= start && m.at < end) {
                    by_server.entry(m.server_id).or_default().push(MetricsRollup {
                        server_id: m.server_id,
                        period,
                        start,
                        samples: 1,
                        cpu_avg: m.cpu_percent,
                        cpu_max: m.cpu_percent,
                        memory_avg_bytes: m.memory_bytes as f64,
                        memory_max_bytes: m.memory_bytes,
                        disk_max_bytes: m.disk_bytes,
                        rx_bytes: m.rx_bytes,
                        tx_bytes: m.tx_bytes,
                    });
                }
            }
            Period::Day => {
                for r in s.rollups.values().filter(|r| r.period == Period::Hour && r.start >= start && r.start < end) {
                    by_server.entry(r.server_id).or_default().push(r.clone());
                }
            }
        }
        let n = by_server.len() as u64;
        for (server, rows) in by_server {
            s.rollups.insert((server, period, start), summarise(server, period, start, &rows));
        }
        Ok(n)
    }

    async fn list_rollups(
        &self,
        server: ServerId,
        period: Period,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<MetricsRollup>> {
        let s = self.lock();
        Ok(s.rollups.range((server, period, from)..(server, period, to)).map(|(_, r)| r.clone()).collect())
    }

    async fn prune_metrics(
        &self,
        samples_before: Timestamp,
        hours_before: Timestamp,
        days_before: Timestamp,
    ) -> Result<u64> {
        let mut s = self.lock();
        let before = s.metrics.len() + s.rollups.len();
        s.metrics.retain(|(_, at), _| *at >= samples_before);
        s.rollups.retain(|(_, period, start), _| match period {
            Period::Hour => *start >= hours_before,
            Period::Day => *start >= days_before,
        });
        Ok((before - s.metrics.len() - s.rollups.len()) as u64)
    }
}

#[async_trait]
impl AlertStore for MemoryStore {
    async fn create_alert_rule(&self, rule: &AlertRule) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&rule.created_by) {
            return Err(Error::not_found("user"));
        }
        if s.alert_rules.contains_key(&rule.id) {
            return Err(Error::conflict("the alert rule exists"));
        }
        s.alert_rules.insert(rule.id, rule.clone());
        Ok(())
    }

    async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule> {
        self.lock().alert_rules.get(&id).cloned().ok_or_else(|| Error::not_found("alert rule"))
    }

    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
        let mut rules: Vec<_> = self.lock().alert_rules.values().cloned().collect();
        rules.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        Ok(rules)
    }

    async fn update_alert_rule(&self, rule: &AlertRule) -> Result<AlertRule> {
        let mut s = self.lock();
        let stored = s.alert_rules.get_mut(&rule.id).ok_or_else(|| Error::not_found("alert rule"))?;
        let v = stored.version;
        cas(stored, v, rule, rule.version, |r| r.version += 1)
    }

    async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()> {
        let mut s = self.lock();
        s.alert_rules.remove(&id).ok_or_else(|| Error::not_found("alert rule"))?;
        for a in s.alerts.values_mut().filter(|a| a.rule_id == Some(id)) {
            a.rule_id = None;
        }
        Ok(())
    }

    async fn create_alert(&self, alert: &Alert) -> Result<()> {
        let mut s = self.lock();
        if s.alerts.contains_key(&alert.id) {
            return Err(Error::conflict("the alert exists"));
        }
        s.alerts.insert(alert.id, alert.clone());
        Ok(())
    }

    async fn get_alert(&self, id: AlertId) -> Result<Alert> {
        self.lock().alerts.get(&id).cloned().ok_or_else(|| Error::not_found("alert"))
    }

    async fn list_alerts(&self, f: &AlertFilter, page: Page) -> Result<Paged<Alert>> {
        let s = self.lock();
        let visible = |a: &Alert| match f.visible_to {
            None => true,
            Some(u) => a.server_id.is_some_and(|id| {
                s.servers.get(&id).is_some_and(|srv| srv.owner_id == u) || s.access.contains_key(&(id, u))
            }),
        };
        let mut rows: Vec<Alert> = s
            .alerts
            .values()
            .filter(|a| {
                f.resolved.is_none_or(|r| a.resolved == r)
                    && f.server_id.is_none_or(|id| a.server_id == Some(id))
                    && f.node_id.is_none_or(|id| a.node_id == Some(id))
                    && f.kind.as_ref().is_none_or(|k| &a.kind == k)
                    && f.severity.is_none_or(|sev| a.severity == sev)
                    && visible(a)
            })
            .cloned()
            .collect();
        rows.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        Ok(page_of(rows, page))
    }

    async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: Timestamp) -> Result<Alert> {
        let mut s = self.lock();
        let a = s.alerts.get_mut(&id).ok_or_else(|| Error::not_found("alert"))?;
        if a.resolved {
            return Err(Error::conflict("the alert is already resolved"));
        }
        a.resolved = true;
        a.resolved_at = Some(at);
        a.resolved_by = by;
        Ok(a.clone())
    }

    async fn last_alert(
        &self,
        rule: AlertRuleId,
        server: Option<ServerId>,
        node: Option<NodeId>,
    ) -> Result<Option<Alert>> {
        let s = self.lock();
        Ok(s.alerts
            .values()
            .filter(|a| a.rule_id == Some(rule) && a.server_id == server && a.node_id == node)
            .max_by_key(|a| (a.created_at, a.id))
            .cloned())
    }

    async fn append_delivery(&self, delivery: &WebhookDelivery) -> Result<()> {
        self.lock().deliveries.push(delivery.clone());
        Ok(())
    }

    async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.deliveries.iter().filter(|d| alert.is_none_or(|a| d.alert_id == Some(a))).cloned().collect();
        rows.sort_by_key(|d| std::cmp::Reverse((d.at, d.id)));
        Ok(page_of(rows, page))
    }
}

/// The audit filter semantics every store implements.
pub(crate) fn audit_matches(e: &AuditLog, q: &AuditQuery) -> bool {
    q.user_id.is_none_or(|u| e.user_id == Some(u))
        && q.action
            .as_ref()
            .is_none_or(|a| if a.ends_with('.') { e.action.starts_with(a.as_str()) } else { &e.action == a })
        && q.target_type.as_ref().is_none_or(|t| &e.target_type == t)
        && q.target_id.as_ref().is_none_or(|t| e.target_id.as_ref() == Some(t))
        && q.from.is_none_or(|f| e.at >= f)
        && q.to.is_none_or(|t| e.at < t)
}

#[async_trait]
impl BackupStore for MemoryStore {
    async fn create_backup(&self, backup: &Backup) -> Result<()> {
        let mut s = self.lock();
        if !s.servers.contains_key(&backup.server_id) {
            return Err(Error::not_found("server"));
        }
        if s.backups.contains_key(&backup.id) {
            return Err(Error::conflict("the backup exists"));
        }
        s.backups.insert(backup.id, backup.clone());
        Ok(())
    }

    async fn get_backup(&self, id: BackupId) -> Result<Backup> {
        self.lock().backups.get(&id).cloned().ok_or_else(|| Error::not_found("backup"))
    }

    async fn update_backup(&self, backup: &Backup) -> Result<()> {
        let mut s = self.lock();
        match s.backups.get_mut(&backup.id) {
            Some(b) => {
                *b = backup.clone();
                Ok(())
            }
            None => Err(Error::not_found("backup")),
        }
    }

    async fn list_backups(&self, server: ServerId) -> Result<Vec<Backup>> {
        let mut out: Vec<Backup> = self.lock().backups.values().filter(|b| b.server_id == server).cloned().collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn delete_backup(&self, id: BackupId) -> Result<()> {
        self.lock().backups.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("backup"))
    }

    async fn backup_usage(&self) -> Result<crate::model::BackupUsage> {
        let inner = self.lock();
        let kept = inner.backups.values().filter(|b| b.status != crate::model::BackupStatus::Failed);
        Ok(kept.fold(Default::default(), |u: crate::model::BackupUsage, b| crate::model::BackupUsage {
            backups: u.backups + 1,
            bytes: u.bytes + b.size_bytes,
        }))
    }
}
