//! Servers: CRUD, lifecycle commands (validated by the table, executed by the node), console,
//! logs and subusers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use catalyst_core::events::DomainEvent;
use catalyst_core::id::{ServerId, UserId};
use catalyst_core::lifecycle::{Event, ServerState, apply};
use catalyst_core::model::{
    Allocation, Limits, LogQuery, MAX_ALLOCATIONS, Page, Paged, Server, ServerAccess, ServerLog, optional_text,
};
use catalyst_core::permission::{
    Grant, Permission, PermissionSet, Principal, Scope, ServerAuthz, authorize, effective_server_permissions,
};
use catalyst_core::ports::ServerFilter;
use catalyst_core::protocol::{NodeRequest, NodeResponse};
use catalyst_core::render;
use catalyst_core::{Error, ErrorKind, Result, validate};
use serde_json::json;

use super::allocations::PLACEMENT_ATTEMPTS;
use super::spec::spec_for;
use super::{Catalyst, GrantAccess, NewServer, ServerPatch, Who};

pub use catalyst_core::render::BUILTIN_VARIABLES;

fn check_limits(l: &Limits) -> Result<()> {
    let bad = |m: &str| Err(Error::invalid(format!("limits: {m}")));
    // 0 is unlimited, as in Pterodactyl (and counts for nothing in a node's capacity).
    if l.memory_mb != 0 && !(16..=1 << 20).contains(&l.memory_mb) {
        return bad("memory_mb must be 0 (unlimited) or 16..=1048576");
    }
    if l.swap_mb > 1 << 20 {
        return bad("swap_mb must be at most 1048576");
    }
    if l.cpu_percent > 100 * 1024 {
        return bad("cpu_percent must be at most 102400");
    }
    if l.disk_mb != 0 && !(16..=1 << 30).contains(&l.disk_mb) {
        return bad("disk_mb must be 0 (unlimited) or 16..=1073741824");
    }
    if !(10..=1000).contains(&l.io_weight) {
        return bad("io_weight must be 10..=1000");
    }
    if !(16..=65536).contains(&l.pids) {
        return bad("pids must be 16..=65536");
    }
    if !(1..=MAX_ALLOCATIONS).contains(&l.allocations) {
        return bad("allocations must be 1..=32");
    }
    Ok(())
}

/// Validate and normalise allocations: within the server's limit, parseable IPs, ports > 0,
/// no duplicates, one primary.
fn check_allocations(mut allocations: Vec<Allocation>, limits: &Limits) -> Result<Vec<Allocation>> {
    if allocations.is_empty() {
        return Err(Error::invalid("a server needs at least one allocation"));
    }
    if allocations.len() > limits.allocations as usize {
        return Err(Error::quota_exceeded(format!(
            "the server may hold {} allocations; {} were given",
            limits.allocations,
            allocations.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for a in &mut allocations {
        let ip: IpAddr =
            a.ip.trim()
                .parse()
                .map_err(|_| Error::invalid(format!("allocation ip {:?} is not an IP address", a.ip)))?;
        a.ip = ip.to_string();
        if a.port == 0 {
            return Err(Error::invalid("allocation port must be 1-65535"));
        }
        if !seen.insert((a.ip.clone(), a.port)) {
            return Err(Error::invalid(format!("allocation {}:{} is listed twice", a.ip, a.port)));
        }
    }
    match allocations.iter().filter(|a| a.primary).count() {
        0 => allocations[0].primary = true,
        1 => {}
        _ => return Err(Error::invalid("exactly one allocation may be primary")),
    }
    Ok(allocations)
}

impl Catalyst {
    /// Load a server and what the caller holds on it. Invisible servers are `not_found`.
    pub(super) async fn load_server(&self, who: &Principal, id: ServerId) -> Result<(Server, ServerAuthz)> {
        let cache = &self.inner.cache;
        let server = match cache.server(id) {
            Some(s) => s,
            None => {
                let s = self.inner.store.get_server(id).await?;
                cache.put_server(&s);
                s
            }
        };
        let subuser = match who.user_id() {
            Some(u) if u != server.owner_id => match cache.access(id, u) {
                Some(p) => p,
                None => {
                    let p = self.inner.store.get_access(id, u).await?.map(|a| a.permissions.into_iter().collect());
                    cache.put_access(id, u, p);
                    p
                }
            },
            _ => None,
        };
        let authz = ServerAuthz { server_id: id, owner_id: server.owner_id, subuser };
        Ok((server, authz))
    }

    pub(super) async fn server_with(
        &self,
        who: &Principal,
        id: ServerId,
        permission: Permission,
    ) -> Result<(Server, Grant)> {
        let (server, authz) = self.load_server(who, id).await?;
        let grant = authorize(who, permission, Scope::Server(&authz))?;
        Ok((server, grant))
    }

    pub(super) async fn check_capacity(
        &self,
        node_id: catalyst_core::id::NodeId,
        extra_memory: u64,
        extra_disk: u64,
    ) -> Result<()> {
        let node = self.inner.store.get_node(node_id).await?;
        let usage = self.inner.store.node_usage(node_id).await?;
        if usage.memory_mb + extra_memory > node.memory_capacity_mb() {
            return Err(Error::quota_exceeded(format!("node {} has not enough memory left", node.name)));
        }
        if usage.disk_mb + extra_disk > node.disk_capacity_mb() {
            return Err(Error::quota_exceeded(format!("node {} has not enough disk left", node.name)));
        }
        Ok(())
    }

    pub(super) async fn send(&self, _grant: &Grant, server: &Server, request: NodeRequest) -> Result<NodeResponse> {
        self.inner.link.request(server.node_id, request).await
    }

    /// The name of the location a node is in (what `P_SERVER_LOCATION` says).
    pub(super) async fn location_name(&self, node_id: catalyst_core::id::NodeId) -> Result<String> {
        let node = self.inner.store.get_node(node_id).await?;
        Ok(self.inner.store.get_location(node.location_id).await?.name)
    }

    /// Drop the variables `template` hides from customers (`user_viewable: false`).
    fn redact(template: &catalyst_core::model::Template, server: &mut Server) {
        server.variables.retain(|k, _| template.variables.iter().any(|v| &v.name == k && v.user_viewable));
    }

    async fn configure(&self, grant: &Grant, server: &Server) -> Result<()> {
        let template = self.inner.store.get_template(server.template_id).await?;
        let spec = spec_for(server, &template, &self.location_name(server.node_id).await?)?;
        self.send(grant, server, NodeRequest::Configure { spec: Box::new(spec) }).await.map(|_| ())
    }

    /// Read-modify-write a server under compare-and-swap, retrying when another writer won.
    /// `change` edits the freshly read row and says whether there is anything to write.
    /// Returns the stored row and the state it had before.
    pub(super) async fn modify_server(
        &self,
        id: ServerId,
        mut change: impl FnMut(&mut Server) -> bool,
    ) -> Result<(Server, ServerState)> {
        for _ in 0..8 {
            let mut s = self.inner.store.get_server(id).await?;
            let before = s.state;
            if !change(&mut s) {
                return Ok((s, before));
            }
            s.updated_at = self.now();
            match self.store_server(&s).await {
                Ok(stored) => return Ok((stored, before)),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict("the server is changing too fast; retry"))
    }

    /// Write a server row (compare-and-swap on its version) and keep the cache in step.
    async fn store_server(&self, server: &Server) -> Result<Server> {
        match self.inner.store.update_server(server).await {
            Ok(stored) => {
                self.inner.cache.put_server(&stored);
                Ok(stored)
            }
            Err(e) => {
                self.inner.cache.forget_server(server.id);
                Err(e)
            }
        }
    }

    /// Persist a state the control plane decides alone (the node is unreachable or not involved).
    async fn set_state(&self, id: ServerId, to: ServerState, reason: Option<String>) -> Result<Server> {
        let (server, from) = self
            .modify_server(id, |s| {
                s.state = to;
                true
            })
            .await?;
        if from != to {
            self.publish(DomainEvent::ServerStateUpdate { server_id: id, from, to, reason, at: self.now() });
        }
        Ok(server)
    }

    /// Create a server (`server.create`) on a node with room, then install it. With `deploy`,
    /// Catalyst chooses the node and the primary allocation.
    pub async fn create_server(&self, who: &Principal, input: NewServer) -> Result<Server> {
        let grant = authorize(who, Permission::ServerCreate, Scope::Global)?;
        let template = self.inner.store.get_template(input.template_id).await?;
        check_limits(&input.limits)?;
        let variables = render::resolve_variables(&template, &input.variables)?;
        let now = self.now();
        let (node_id, allocations) = match (&input.deploy, input.node_id) {
            (None, Some(node)) => (node, check_allocations(input.allocations, &input.limits)?),
            (None, None) => return Err(Error::invalid("give node_id and allocations, or deploy")),
            (Some(_), Some(_)) => return Err(Error::invalid("give node_id or deploy, not both")),
            (Some(_), None) if !input.allocations.is_empty() => {
                return Err(Error::invalid("deploy chooses the allocation: leave allocations empty"));
            }
            // Placed below.
            (Some(_), None) => (catalyst_core::id::NodeId(uuid::Uuid::nil()), vec![]),
        };
        let mut server = Server {
            id: ServerId::new(),
            number: 0,
            external_id: optional_text("external_id", input.external_id.as_deref(), 191)?,
            name: validate::name("name", &input.name, 100)?,
            description: validate::text("description", &input.description, 4096)?,
            owner_id: input.owner_id,
            node_id,
            template_id: input.template_id,
            variables,
            limits: input.limits,
            allocations,
            restart_policy: input.restart_policy,
            image: input.image.map(|i| template.image_for(Some(&i)).map(str::to_string)).transpose()?,
            startup_command: match input.startup_command {
                Some(name) => template.startup_for(Some(&name)).map(|_| Some(name))?,
                None => None,
            },
            state: ServerState::Installing,
            crash_count: 0,
            crash_history: vec![],
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let server = match &input.deploy {
            None => {
                spec_for(&server, &template, &self.location_name(server.node_id).await?)?;
                self.check_capacity(server.node_id, server.limits.memory_mb, server.limits.disk_mb).await?;
                self.inner.store.create_server(&server).await?
            }
            Some(deploy) => self.create_placed(&mut server, &template, deploy).await?,
        };
        let detail = json!({"name": server.name, "node_id": server.node_id, "external_id": server.external_id});
        self.audit(Who::Grant(&grant, who), "server.create", ("server", Some(server.id.to_string())), true, detail)
            .await;
        let dispatched = match self.configure(&grant, &server).await {
            Ok(()) => self.send(&grant, &server, NodeRequest::Install { server_id: server.id }).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = dispatched {
            let reason = format!("install could not start: {}", e.message());
            return self.set_state(server.id, ServerState::InstallFailed, Some(reason)).await;
        }
        Ok(server)
    }

    /// Place `server` and store it; when a concurrent create claimed the chosen allocation
    /// first, place it again.
    async fn create_placed(
        &self,
        server: &mut Server,
        template: &catalyst_core::model::Template,
        deploy: &catalyst_core::model::Deploy,
    ) -> Result<Server> {
        for _ in 0..PLACEMENT_ATTEMPTS {
            let placed = self.place(deploy, server.limits.memory_mb, server.limits.disk_mb).await?;
            server.node_id = placed.node_id;
            server.allocations = vec![placed.allocation];
            spec_for(server, template, &self.location_name(server.node_id).await?)?;
            match self.inner.store.create_server(server).await {
                Ok(stored) => return Ok(stored),
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    let lost = self.inner.store.get_allocation(placed.number).await;
                    if !lost.is_ok_and(|a| a.server_id.is_some()) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict("placement kept losing races for free allocations; retry"))
    }

    /// Does the caller hold `permission` on the server? (`not_found` if they cannot see it.)
    pub async fn check_server_permission(&self, who: &Principal, id: ServerId, permission: Permission) -> Result<()> {
        self.server_with(who, id, permission).await.map(|_| ())
    }

    /// One server (`server.read`).
    pub async fn get_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        let (mut server, grant) = self.server_with(who, id, Permission::ServerRead).await?;
        if !grant.is_global() {
            Self::redact(&self.inner.store.get_template(server.template_id).await?, &mut server);
        }
        Ok(server)
    }

    /// The servers the caller may see: all with a global `server.read`, else owned and shared.
    pub async fn list_servers(&self, who: &Principal, page: Page) -> Result<Paged<Server>> {
        let filter = if who.holds(Permission::ServerRead) {
            ServerFilter::default()
        } else {
            let u = who.user_id().ok_or_else(|| Error::denied("missing permission server.read"))?;
            ServerFilter { visible_to: Some(u), ..Default::default() }
        };
        self.list_servers_where(who, &filter, page).await
    }

    /// A page of servers, redacted for a caller without a global `server.read`; the filter
    /// must already confine such a caller to what they may see.
    pub(super) async fn list_servers_where(
        &self,
        who: &Principal,
        filter: &ServerFilter,
        page: Page,
    ) -> Result<Paged<Server>> {
        let mut page = match who.confined_server() {
            // A console ticket lists its one server at most.
            Some(only) => {
                let narrow = ServerFilter { id_prefix: Some(only.prefix()), ..filter.clone() };
                let mut page = self.inner.store.list_servers(&narrow, page).await?;
                page.items.retain(|s| s.id == only);
                page.total = page.items.len() as u64;
                page
            }
            None => self.inner.store.list_servers(filter, page).await?,
        };
        if !who.holds(Permission::ServerRead) {
            // One read per template, not per server.
            let mut templates = std::collections::HashMap::new();
            for server in &mut page.items {
                let template = match templates.entry(server.template_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(self.inner.store.get_template(server.template_id).await?)
                    }
                };
                Self::redact(template, server);
            }
        }
        Ok(page)
    }

    /// Change a server (`server.update`). Limits, allocations, the restart policy and
    /// variables that are not user-editable need a global grant. A node report that lands
    /// between the read and the write (a starting server changes state often) is not the
    /// caller's conflict: the patch is applied again to the fresh row.
    pub async fn update_server(&self, who: &Principal, id: ServerId, patch: ServerPatch) -> Result<Server> {
        for _ in 0..8 {
            if let Some(server) = self.update_server_once(who, id, &patch).await? {
                return Ok(server);
            }
        }
        Err(Error::conflict("the server kept changing while it was being updated; retry"))
    }

    /// One attempt of [`Catalyst::update_server`]; `None` when another writer won the race.
    async fn update_server_once(&self, who: &Principal, id: ServerId, patch: &ServerPatch) -> Result<Option<Server>> {
        let patch = patch.clone();
        let (mut server, grant) = self.server_with(who, id, Permission::ServerUpdate).await?;
        let operator_only = patch.limits.is_some()
            || patch.allocations.is_some()
            || patch.restart_policy.is_some()
            || patch.template_id.is_some()
            || patch.external_id.is_some()
            || patch.owner_id.is_some();
        if operator_only && !grant.is_global() {
            return Err(Error::denied(
                "only operators may change limits, allocations, the restart policy, the template, the external id \
                 or the owner",
            ));
        }
        let old_owner = server.owner_id;
        if let Some(owner) = patch.owner_id {
            server.owner_id = self.inner.store.get_user(owner).await?.id;
        }
        if let Some(v) = &patch.external_id {
            server.external_id = optional_text("external_id", Some(v), 191)?;
        }
        if let Some(v) = &patch.name {
            server.name = validate::name("name", v, 100)?;
        }
        if let Some(v) = &patch.description {
            server.description = validate::text("description", v, 4096)?;
        }
        let template = match patch.template_id {
            Some(id) if id != server.template_id => {
                let template = self.inner.store.get_template(id).await?;
                server.template_id = id;
                server.variables.retain(|k, _| template.variables.iter().any(|v| &v.name == k));
                server.variables = render::resolve_variables(&template, &server.variables)?;
                server.image = None;
                server.startup_command = None;
                template
            }
            _ => self.inner.store.get_template(server.template_id).await?,
        };
        if let Some(vars) = &patch.variables {
            for key in vars.keys() {
                let editable = template
                    .variables
                    .iter()
                    .find(|v| &v.name == key)
                    .is_some_and(|v| v.user_editable && v.user_viewable);
                if !editable && !grant.is_global() {
                    return Err(Error::denied(format!("variable {key} is not editable")));
                }
            }
            let mut merged = server.variables.clone();
            merged.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            server.variables = render::resolve_variables(&template, &merged)?;
        }
        if let Some(limits) = patch.limits {
            check_limits(&limits)?;
            let extra_mem = limits.memory_mb.saturating_sub(server.limits.memory_mb);
            let extra_disk = limits.disk_mb.saturating_sub(server.limits.disk_mb);
            if extra_mem > 0 || extra_disk > 0 {
                self.check_capacity(server.node_id, extra_mem, extra_disk).await?;
            }
            server.limits = limits;
        }
        if let Some(allocations) = patch.allocations {
            server.allocations = check_allocations(allocations, &server.limits)?;
        } else if server.allocations.len() > server.limits.allocations as usize {
            return Err(Error::quota_exceeded(format!(
                "the server holds {} allocations, more than the new limit of {}",
                server.allocations.len(),
                server.limits.allocations
            )));
        }
        if let Some(policy) = patch.restart_policy {
            server.restart_policy = policy;
        }
        if let Some(image) = &patch.image {
            server.image = Some(template.image_for(Some(image))?.to_string());
        }
        if let Some(name) = patch.startup_command {
            template.startup_for(Some(&name))?;
            server.startup_command = Some(name);
        }
        spec_for(&server, &template, &self.location_name(server.node_id).await?)?;
        server.updated_at = self.now();
        let server = match self.store_server(&server).await {
            Ok(stored) => stored,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                let fresh = self.inner.store.get_server(id).await?;
                if fresh.version != server.version {
                    return Ok(None);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if server.owner_id != old_owner {
            // Open sockets of the old owner re-check and close.
            self.publish(DomainEvent::AccessChanged { server_id: id, user_id: old_owner });
        }
        if self.inner.link.is_online(server.node_id) {
            // The node keeps the old definition until it hears this; the next start needs it anyway.
            let _ = self.configure(&grant, &server).await;
        }
        self.audit(Who::Grant(&grant, who), "server.update", ("server", Some(id.to_string())), true, json!({})).await;
        let mut server = server;
        if !grant.is_global() {
            // The template read above, not a second read.
            Self::redact(&template, &mut server);
        }
        Ok(Some(server))
    }

    /// Delete a server (`server.delete`): the node kills and removes it, then the record goes.
    pub async fn delete_server(&self, who: &Principal, id: ServerId) -> Result<()> {
        let (server, grant) = self.server_with(who, id, Permission::ServerDelete).await?;
        apply(server.state, Event::Delete)?;
        match self.send(&grant, &server, NodeRequest::Delete { server_id: id }).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.drop_server(id).await?;
        self.audit(Who::Grant(&grant, who), "server.delete", ("server", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// Delete a server even when its node cannot be reached (operators: a global
    /// `server.delete`). With the node away the record turns `deleting` at once: its
    /// allocations and external id are released and nothing can start it; the node finishes
    /// the deletion when it reconnects. Forcing a server that is already `deleting` drops the
    /// record for good (its node is gone).
    pub async fn force_delete_server(&self, who: &Principal, id: ServerId) -> Result<()> {
        let (server, grant) = self.server_with(who, id, Permission::ServerDelete).await?;
        if !grant.is_global() {
            return Err(Error::denied("forced deletion is for operators"));
        }
        if server.state == ServerState::Deleting {
            self.drop_server(id).await?;
        } else {
            match self.delete_server(who, id).await {
                Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
                    self.modify_server(id, |s| {
                        s.state = ServerState::Deleting;
                        s.allocations.clear();
                        s.external_id = None;
                        true
                    })
                    .await?;
                }
                other => return other,
            }
        }
        let details = json!({"forced": true});
        self.audit(Who::Grant(&grant, who), "server.delete", ("server", Some(id.to_string())), true, details).await;
        Ok(())
    }

    /// Finish a deletion the node could not carry out when it was asked (it was away): the
    /// node removes the server, then the record goes.
    pub(super) async fn finish_deletion(&self, server: &Server) -> Result<()> {
        let grant = super::transfers::system_grant();
        match self.send(&grant, server, NodeRequest::Delete { server_id: server.id }).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.drop_server(server.id).await
    }

    /// The record goes, and everyone following the server hears it.
    pub(super) async fn drop_server(&self, id: ServerId) -> Result<()> {
        self.inner.store.delete_server(id).await?;
        self.publish(DomainEvent::ServerDeleted { server_id: id });
        Ok(())
    }

    /// Validate with the table, then let the node execute. Returns the server with the state the
    /// node reports right after the request (the row follows through node events).
    async fn power(&self, who: &Principal, id: ServerId, permission: Permission, event: Event) -> Result<Server> {
        let (mut server, grant) = self.server_with(who, id, permission).await?;
        apply(server.state, event)?;
        let request = match event {
            Event::Start => NodeRequest::Start { server_id: id },
            Event::Stop => NodeRequest::Stop { server_id: id },
            Event::Restart => NodeRequest::Restart { server_id: id },
            Event::Kill => NodeRequest::Kill { server_id: id },
            Event::Install => NodeRequest::Install { server_id: id },
            Event::Suspend => NodeRequest::Suspend { server_id: id },
            Event::Unsuspend => NodeRequest::Unsuspend { server_id: id },
            other => return Err(Error::invalid(format!("{} is not a power action", other.name()))),
        };
        let action = format!("server.{}", event.name());
        if matches!(event, Event::Start | Event::Restart | Event::Install) {
            self.configure(&grant, &server).await?;
        }
        let outcome = self.send(&grant, &server, request).await;
        let outcome = match outcome {
            // Suspension must work for billing even when the node is away: at rest, the control
            // plane records it alone and the node learns it when it reconnects.
            Err(e) if e.kind() == ErrorKind::Unavailable && matches!(event, Event::Suspend | Event::Unsuspend) => {
                match apply(server.state, event) {
                    Ok(t) if !t.next.has_process() && t.effects.is_empty() => {
                        server = self.set_state(id, t.next, Some("recorded while the node is offline".into())).await?;
                        Ok(NodeResponse::State { state: server.state })
                    }
                    _ => Err(e),
                }
            }
            other => other,
        };
        self.audit(Who::Grant(&grant, who), &action, ("server", Some(id.to_string())), outcome.is_ok(), json!({}))
            .await;
        if let NodeResponse::State { state } = outcome? {
            server.state = state;
        }
        Ok(server)
    }

    /// Start (`server.start`).
    pub async fn start_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerStart, Event::Start).await
    }

    /// Stop gracefully (`server.stop`).
    pub async fn stop_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerStop, Event::Stop).await
    }

    /// Restart (`server.restart`).
    pub async fn restart_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerRestart, Event::Restart).await
    }

    /// SIGKILL (`server.stop`).
    pub async fn kill_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerStop, Event::Kill).await
    }

    /// Run the install script again (`server.update`).
    pub async fn reinstall_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerUpdate, Event::Install).await
    }

    /// Suspend (`server.suspend`, an operator permission): stops it and refuses starts.
    pub async fn suspend_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        let server = self.power(who, id, Permission::ServerSuspend, Event::Suspend).await?;
        self.publish(DomainEvent::AccessChanged { server_id: id, user_id: server.owner_id });
        Ok(server)
    }

    /// Lift a suspension (`server.suspend`).
    pub async fn unsuspend_server(&self, who: &Principal, id: ServerId) -> Result<Server> {
        self.power(who, id, Permission::ServerSuspend, Event::Unsuspend).await
    }

    /// Write a line to the console (`console.write`).
    pub async fn send_command(&self, who: &Principal, id: ServerId, line: &str) -> Result<()> {
        let (server, grant) = self.server_with(who, id, Permission::ConsoleWrite).await?;
        if line.len() > 4096 || line.contains(['\n', '\r', '\0']) {
            return Err(Error::invalid("a command is one line of at most 4096 bytes"));
        }
        let outcome = self.send(&grant, &server, NodeRequest::Command { server_id: id, line: line.to_string() }).await;
        self.audit(
            Who::Grant(&grant, who),
            "server.command",
            ("server", Some(id.to_string())),
            outcome.is_ok(),
            json!({}),
        )
        .await;
        outcome.map(|_| ())
    }

    /// Stored console lines, newest first (`console.read`).
    pub async fn server_logs(&self, who: &Principal, id: ServerId, query: &LogQuery) -> Result<Vec<ServerLog>> {
        self.server_with(who, id, Permission::ConsoleRead).await?;
        self.inner.store.list_logs(id, query).await
    }

    /// Clear the crash counter and history (`server.update`), so the restart policy starts over.
    pub async fn reset_crash_count(&self, who: &Principal, id: ServerId) -> Result<Server> {
        let (_, grant) = self.server_with(who, id, Permission::ServerUpdate).await?;
        let (server, _) = self
            .modify_server(id, |s| {
                s.crash_count = 0;
                s.crash_history.clear();
                true
            })
            .await?;
        if self.inner.link.is_online(server.node_id) {
            self.send(&grant, &server, NodeRequest::ResetCrashes { server_id: id }).await?;
        }
        self.audit(
            Who::Grant(&grant, who),
            "server.reset_crash_count",
            ("server", Some(id.to_string())),
            true,
            json!({}),
        )
        .await;
        Ok(server)
    }

    /// Subusers of a server (`server.read`).
    pub async fn list_access(&self, who: &Principal, id: ServerId) -> Result<Vec<ServerAccess>> {
        self.server_with(who, id, Permission::ServerRead).await?;
        self.inner.store.list_access(id).await
    }

    /// Give a user permissions on a server (`server.update`). Only server-scoped permissions,
    /// and never more than the granter holds on that server.
    pub async fn grant_access(&self, who: &Principal, id: ServerId, input: GrantAccess) -> Result<ServerAccess> {
        let (server, authz) = self.load_server(who, id).await?;
        let grant = authorize(who, Permission::ServerUpdate, Scope::Server(&authz))?;
        if input.user_id == server.owner_id {
            return Err(Error::invalid("the owner already holds every permission on the server"));
        }
        let requested: PermissionSet = input.permissions.iter().copied().collect();
        if let Some(p) = requested.iter().find(|p| !p.is_server_scoped()) {
            return Err(Error::invalid(format!("{p} cannot be granted on one server")));
        }
        // Whatever the credential: never more than the caller may exercise here itself, and
        // never over the grant of someone who holds more than the caller.
        let held = effective_server_permissions(who, &authz);
        self.check_outranks_subuser(id, input.user_id, held).await?;
        if !requested.is_subset(held) {
            return Err(Error::denied("you cannot grant permissions you do not hold"));
        }
        self.inner.store.get_user(input.user_id).await?;
        let access = ServerAccess {
            server_id: id,
            user_id: input.user_id,
            permissions: requested.iter().collect(),
            created_at: self.now(),
        };
        self.inner.store.put_access(&access).await?;
        self.publish(DomainEvent::AccessChanged { server_id: id, user_id: input.user_id });
        self.audit(
            Who::Grant(&grant, who),
            "server.access.grant",
            ("server", Some(id.to_string())),
            true,
            json!({"user_id": input.user_id, "permissions": access.permissions}),
        )
        .await;
        Ok(access)
    }

    /// Refuse to change or remove the grant of `user` on `server` when it holds more than
    /// `held`, what the caller may exercise there.
    async fn check_outranks_subuser(&self, server: ServerId, user: UserId, held: PermissionSet) -> Result<()> {
        let Some(existing) = self.inner.store.get_access(server, user).await? else { return Ok(()) };
        if existing.permissions.iter().all(|p| held.contains(*p)) {
            Ok(())
        } else {
            Err(Error::denied("that subuser holds permissions you do not hold"))
        }
    }

    /// Remove a subuser (`server.update`); their open sessions on the server are told at once.
    pub async fn revoke_access(&self, who: &Principal, id: ServerId, user: UserId) -> Result<()> {
        let (_, authz) = self.load_server(who, id).await?;
        let grant = authorize(who, Permission::ServerUpdate, Scope::Server(&authz))?;
        self.check_outranks_subuser(id, user, effective_server_permissions(who, &authz)).await?;
        self.inner.store.delete_access(id, user).await?;
        self.publish(DomainEvent::AccessChanged { server_id: id, user_id: user });
        self.audit(
            Who::Grant(&grant, who),
            "server.access.revoke",
            ("server", Some(id.to_string())),
            true,
            json!({"user_id": user}),
        )
        .await;
        Ok(())
    }
}
