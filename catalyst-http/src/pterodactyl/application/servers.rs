//! `/api/application/servers`: list, get, by external id, create (with `allocation` or
//! `deploy`), suspend, unsuspend, reinstall, delete.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use catalyst_core::ErrorKind;
use catalyst_core::id::{NodeId, TemplateId, UserId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, Deploy, Limits, MAX_ALLOCATIONS, Node, Server, Template, User};
use catalyst_core::permission::Principal;
use catalyst_core::ports::Lookup;
use catalyst_runtime::control::{NewServer, ServerPatch};
use serde_json::{Value, json};

use super::catalog::{self, nest_of};
use crate::AppState;
use crate::pterodactyl::{
    Caller, Input, ListQuery, Num, PResult, Params, created, feature_limits_view, item, limits_view, list, no_content,
    status, time,
};

crate::pterodactyl::routes! {
    get "/api/application/servers" => list_servers, 200, "Servers (`include=allocations,user,node,location,egg,nest,variables`)";
    post "/api/application/servers" => create_server, 201, "Create a server with `allocation` or `deploy` (400 when no node fits)";
    get "/api/application/servers/external/{external}" => by_external, 200, "A server by its external id, exactly";
    get "/api/application/servers/{id}" => get_server, 200, "One server";
    delete "/api/application/servers/{id}" => delete_server, 204, "Delete a server (its node removes it)";
    delete "/api/application/servers/{id}/force" => force_delete_server, 204, "Delete a server even while its node is away";
    post "/api/application/servers/{id}/suspend" => suspend, 204, "Suspend (stop, refuse starts)";
    post "/api/application/servers/{id}/unsuspend" => unsuspend, 204, "Lift a suspension";
    post "/api/application/servers/{id}/reinstall" => reinstall, 204, "Run the install script again";
    patch "/api/application/servers/{id}/details" => details, 200, "Name, owner, external id, description";
    patch "/api/application/servers/{id}/build" => build, 200, "Limits, feature limits and allocations (nested or flat)";
    patch "/api/application/servers/{id}/startup" => startup, 200, "Egg, image, startup and environment";
}

/// What `?include=` may ask of a server.
const INCLUDES: [&str; 7] = ["allocations", "user", "node", "location", "egg", "nest", "variables"];

/// The records a server view names, read once per page, and the includes asked for.
#[derive(Default)]
struct Numbers {
    users: HashMap<UserId, User>,
    nodes: HashMap<NodeId, Node>,
    templates: HashMap<TemplateId, (Template, u64)>,
    includes: Vec<&'static str>,
}

impl Numbers {
    fn including(q: &ListQuery) -> Self {
        Numbers { includes: INCLUDES.into_iter().filter(|i| q.includes(i)).collect(), ..Default::default() }
    }

    /// One server's view.
    async fn one(s: &AppState, who: &Principal, server: &Server) -> PResult<Value> {
        Numbers::default().single(s, who, server).await
    }

    async fn single(mut self, s: &AppState, who: &Principal, server: &Server) -> PResult<Value> {
        let held = s.catalyst.allocations_held(who, &[server.id]).await?;
        self.view(s, who, server, &held).await
    }

    async fn view(
        &mut self,
        s: &AppState,
        who: &Principal,
        server: &Server,
        held: &[catalyst_core::model::NodeAllocation],
    ) -> PResult<Value> {
        let c = &s.catalyst;
        if let std::collections::hash_map::Entry::Vacant(e) = self.users.entry(server.owner_id) {
            e.insert(c.get_user(who, server.owner_id).await?);
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.nodes.entry(server.node_id) {
            e.insert(c.get_node(who, server.node_id).await?);
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.templates.entry(server.template_id) {
            let t = c.get_template(who, server.template_id).await?;
            let nest = nest_of(s, who, &t).await?;
            e.insert((t, nest));
        }
        let mut view = self.attributes(server, held);
        if !self.includes.is_empty() {
            view["attributes"]["relationships"] = self.relationships(s, who, server, held).await?;
        }
        Ok(view)
    }

    /// `attributes.relationships` for the includes asked for.
    async fn relationships(
        &self,
        s: &AppState,
        who: &Principal,
        server: &Server,
        held: &[catalyst_core::model::NodeAllocation],
    ) -> PResult<Value> {
        let node = &self.nodes[&server.node_id];
        let (template, nest) = &self.templates[&server.template_id];
        let mut out = serde_json::Map::new();
        for include in &self.includes {
            let v = match *include {
                "allocations" => {
                    let mine = held.iter().filter(|a| a.server_id == Some(server.id)).map(catalog::allocation_view);
                    json!({"object": "list", "data": mine.collect::<Vec<_>>()})
                }
                "user" => super::users::user_view(&self.users[&server.owner_id]),
                "node" => catalog::node_view(s, who, node).await?,
                "location" => catalog::location_view(&s.catalyst.get_location(who, node.location_id).await?),
                "egg" => catalog::egg_view(*nest, template, false),
                "nest" => catalog::nest_view(&catalog::one_nest(s, who, *nest).await?),
                _ => {
                    let operator = who.holds(catalyst_core::permission::Permission::ServerRead);
                    let data: Vec<Value> = template
                        .variables
                        .iter()
                        .filter(|v| operator || v.user_viewable)
                        .map(|v| {
                            let mut attributes = catalog::variable_attributes(v);
                            attributes["server_value"] = json!(server.variables.get(&v.name).or(v.default.as_ref()));
                            item("server_variable", attributes)
                        })
                        .collect();
                    json!({"object": "list", "data": data})
                }
            };
            out.insert((*include).to_string(), v);
        }
        Ok(Value::Object(out))
    }

    fn attributes(&self, server: &Server, held: &[catalyst_core::model::NodeAllocation]) -> Value {
        let primary = server.primary_allocation();
        let allocation = held
            .iter()
            .find(|a| a.server_id == Some(server.id) && primary.is_some_and(|p| p.ip == a.ip && p.port == a.port));
        let (template, nest) = &self.templates[&server.template_id];
        // The effective image and startup line, as Pterodactyl shows them (and clients send back).
        let image = template.image_for(server.image.as_deref()).unwrap_or(&template.image);
        let startup = template.startup_for(server.startup_command.as_deref()).unwrap_or(&template.startup);
        let l = &server.limits;
        let mut environment: serde_json::Map<String, Value> =
            server.variables.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        environment.insert("P_SERVER_UUID".into(), json!(server.id));
        environment.insert("P_SERVER_ALLOCATION_LIMIT".into(), json!(l.allocations));
        environment.insert("STARTUP".into(), json!(startup));
        item(
            "server",
            json!({
                "id": server.number, "external_id": server.external_id, "uuid": server.id,
                "identifier": server.id.identifier(), "name": server.name, "description": server.description,
                "status": status(server.state), "suspended": server.suspended(),
                "limits": limits_view(l),
                "feature_limits": feature_limits_view(l),
                "user": self.users[&server.owner_id].number, "node": self.nodes[&server.node_id].number,
                "allocation": allocation.map(|a| a.number), "nest": nest, "egg": template.number,
                "container": {"startup_command": startup, "image": image,
                              "installed": u8::from(!matches!(server.state, ServerState::Installing | ServerState::InstallFailed)),
                              "environment": environment},
                "created_at": time(server.created_at), "updated_at": time(server.updated_at),
            }),
        )
    }
}

async fn list_servers(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let (page, held) = s.catalyst.list_servers_held(&who, q.page()?).await?;
    let mut numbers = Numbers::including(&q);
    let mut data = Vec::with_capacity(page.items.len());
    for server in &page.items {
        data.push(numbers.view(&s, &who, server, &held).await?);
    }
    Ok(Json(list(&q, "/api/application/servers", data, page.total)?))
}

async fn get_server(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let server = s.catalyst.find_server(&who, Lookup::Number(id)).await?;
    Ok(Json(Numbers::including(&q).single(&s, &who, &server).await?))
}

/// WHMCS reads the server's address with `?include=allocations` here.
async fn by_external(
    State(s): State<AppState>,
    Caller(who): Caller,
    axum::extract::Path(external): axum::extract::Path<String>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let server = s.catalyst.find_server(&who, Lookup::External(&external)).await?;
    Ok(Json(Numbers::including(&q).single(&s, &who, &server).await?))
}

#[derive(serde::Deserialize)]
struct AllocationIds {
    default: u64,
    /// pydactyl sends `null` when there are none.
    #[serde(default)]
    additional: Option<Vec<u64>>,
}

#[derive(serde::Deserialize)]
struct DeployBody {
    #[serde(default)]
    locations: Vec<u64>,
    #[serde(default)]
    dedicated_ip: bool,
    /// Ports and ranges, as strings or numbers (pydactyl's example mixes them).
    #[serde(default)]
    port_range: Vec<Value>,
}

/// `POST /servers` (`StoreServerRequest`); `nest`, `pack`, `oom_disabled`, `skip_scripts` and
/// `start_on_completion` are accepted and ignored.
#[derive(serde::Deserialize)]
struct CreateServer {
    name: String,
    #[serde(default)]
    description: Option<String>,
    user: u64,
    egg: u64,
    #[serde(default)]
    docker_image: Option<String>,
    #[serde(default)]
    startup: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    #[serde(default)]
    limits: BTreeMap<String, Value>,
    #[serde(default)]
    feature_limits: BTreeMap<String, Value>,
    #[serde(default)]
    allocation: Option<AllocationIds>,
    #[serde(default)]
    deploy: Option<DeployBody>,
    #[serde(default)]
    external_id: Option<String>,
}

/// An integer that a client may send as a number or a numeric string; `None` when absent or null.
fn int(map: &BTreeMap<String, Value>, key: &str) -> PResult<Option<i64>> {
    let bad = || catalyst_core::Error::invalid(format!("The {key} field must be an integer."));
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad().into()),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad().into()),
        Some(_) => Err(bad().into()),
    }
}

/// Pterodactyl's limits onto Catalyst's: memory and disk 0 are unlimited in both; swap −1
/// (unlimited) is the largest swap Catalyst allows.
pub(super) fn limits(
    limits: &BTreeMap<String, Value>,
    features: &BTreeMap<String, Value>,
    base: Limits,
) -> PResult<Limits> {
    let mut l = base;
    let mib = |key: &str, v: i64| -> PResult<u64> {
        u64::try_from(v)
            .map_err(|_| catalyst_core::Error::invalid(format!("The limits.{key} must be at least 0.")).into())
    };
    if let Some(v) = int(limits, "memory")? {
        l.memory_mb = mib("memory", v)?;
    }
    if let Some(v) = int(limits, "disk")? {
        l.disk_mb = mib("disk", v)?;
    }
    if let Some(v) = int(limits, "swap")? {
        l.swap_mb = if v < 0 { 1 << 20 } else { v as u64 };
    }
    if let Some(v) = int(limits, "io")? {
        l.io_weight = u16::try_from(v).unwrap_or(0);
    }
    if let Some(v) = int(limits, "cpu")? {
        l.cpu_percent = u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    }
    if let Some(v) = int(features, "backups")? {
        l.backups = u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    }
    if let Some(v) = int(features, "allocations")? {
        // Pterodactyl counts extra ports; the primary always exists.
        l.allocations = u32::try_from(v.clamp(1, i64::from(MAX_ALLOCATIONS))).unwrap_or(1);
    }
    Ok(l)
}

/// The template's variables from `environment`, as strings; other keys are ignored.
pub(super) fn variables(t: &Template, environment: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in &t.variables {
        let value = match environment.get(&v.name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "1" } else { "0" }.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        out.insert(v.name.clone(), value);
    }
    out
}

/// The startup command by name for a startup line: the template's own, one of its named
/// commands, or refused (arbitrary startup lines are not taken).
pub(super) fn startup_name(t: &Template, startup: Option<&str>) -> PResult<Option<String>> {
    match startup.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s == t.startup.trim() => Ok(None),
        Some(s) => {
            t.startup_commands.iter().find(|c| c.command.trim() == s).map(|c| Some(c.name.clone())).ok_or_else(|| {
                catalyst_core::Error::invalid("The startup must be the egg's startup or one of its startup commands.")
                    .into()
            })
        }
    }
}

/// The image, `None` for the template's default.
pub(super) fn image(t: &Template, image: Option<String>) -> Option<String> {
    image.filter(|i| !i.trim().is_empty() && i.trim() != t.image)
}

async fn create_server(
    State(s): State<AppState>,
    Caller(who): Caller,
    Input(b): Input<CreateServer>,
) -> PResult<Response> {
    let c = &s.catalyst;
    let owner = c.find_user(&who, Lookup::Number(b.user)).await?;
    let template = c.find_template(&who, b.egg).await?;
    let mut input = NewServer {
        name: b.name,
        description: b.description.unwrap_or_default(),
        owner_id: owner.id,
        node_id: None,
        deploy: None,
        external_id: b.external_id,
        template_id: template.id,
        variables: variables(&template, &b.environment),
        limits: limits(&b.limits, &b.feature_limits, Limits::default())?,
        allocations: vec![],
        restart_policy: Default::default(),
        image: image(&template, b.docker_image),
        startup_command: startup_name(&template, b.startup.as_deref())?,
    };
    match (b.allocation, b.deploy) {
        (Some(ids), _) => {
            let primary = c.find_allocation(&who, ids.default).await?;
            input.node_id = Some(primary.node_id);
            input.allocations.push(Allocation { ip: primary.ip, port: primary.port, primary: true });
            for number in ids.additional.unwrap_or_default() {
                let extra = c.find_allocation(&who, number).await?;
                if extra.node_id != primary.node_id {
                    let m = "The allocation.additional must be on the default allocation's node.";
                    return Err(catalyst_core::Error::invalid(m).into());
                }
                input.allocations.push(Allocation { ip: extra.ip, port: extra.port, primary: false });
            }
        }
        (None, Some(d)) => {
            let mut locations = Vec::with_capacity(d.locations.len());
            for number in d.locations {
                locations.push(c.find_location(&who, number).await?.id);
            }
            let port_range =
                d.port_range.iter().map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string)).collect();
            input.deploy = Some(Deploy { locations, dedicated_ip: d.dedicated_ip, port_range });
        }
        (None, None) => {
            return Err(catalyst_core::Error::invalid(
                "The allocation.default field is required unless deploy is given.",
            )
            .into());
        }
    }
    let server = c.create_server(&who, input).await?;
    Ok(created(Numbers::one(&s, &who, &server).await?))
}

async fn server_id(s: &AppState, who: &Principal, number: u64) -> PResult<Server> {
    Ok(s.catalyst.find_server(who, Lookup::Number(number)).await?)
}

/// Wait (at most 2 s) for the row to show the suspension the node carried out or refused as
/// already done, so that the next call reads what this one did. `Ok(false)` if it never did.
async fn row_shows(s: &AppState, who: &Principal, server: &Server, suspended: bool) -> PResult<bool> {
    for _ in 0..20 {
        if s.catalyst.get_server(who, server.id).await?.suspended() == suspended {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(false)
}

/// Suspend or unsuspend; doing it twice succeeds (billing systems retry), and the answer comes
/// once the row agrees.
async fn set_suspended(s: &AppState, who: &Principal, id: u64, suspended: bool) -> PResult<Response> {
    let server = server_id(s, who, id).await?;
    let done = if suspended {
        s.catalyst.suspend_server(who, server.id).await
    } else {
        s.catalyst.unsuspend_server(who, server.id).await
    };
    match done {
        Ok(_) => {
            row_shows(s, who, &server, suspended).await?;
            Ok(no_content())
        }
        Err(e) if e.kind() == ErrorKind::InvalidTransition && row_shows(s, who, &server, suspended).await? => {
            Ok(no_content())
        }
        Err(e) => Err(e.into()),
    }
}

async fn suspend(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Response> {
    set_suspended(&s, &who, id, true).await
}

async fn unsuspend(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Response> {
    set_suspended(&s, &who, id, false).await
}

async fn reinstall(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Response> {
    let server = server_id(&s, &who, id).await?;
    s.catalyst.reinstall_server(&who, server.id).await?;
    Ok(no_content())
}

async fn delete_server(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Response> {
    let server = server_id(&s, &who, id).await?;
    s.catalyst.delete_server(&who, server.id).await?;
    Ok(no_content())
}

/// Deleted even when its node is away: the node finishes when it reconnects.
async fn force_delete_server(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Response> {
    let server = server_id(&s, &who, id).await?;
    s.catalyst.force_delete_server(&who, server.id).await?;
    Ok(no_content())
}

/// The server view after a change.
async fn changed(
    s: &AppState,
    who: &Principal,
    id: catalyst_core::id::ServerId,
    patch: ServerPatch,
) -> PResult<Json<Value>> {
    let server = s.catalyst.update_server(who, id, patch).await?;
    Ok(Json(Numbers::one(s, who, &server).await?))
}

#[derive(serde::Deserialize)]
struct Details {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user: Option<u64>,
    /// Absent: unchanged; `null` or `""`: cleared.
    #[serde(default)]
    external_id: Option<Value>,
    #[serde(default)]
    description: Option<String>,
}

/// `PATCH /details`: name, owner, external id, description.
async fn details(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Input(d): Input<Details>,
) -> PResult<Json<Value>> {
    let server = server_id(&s, &who, id).await?;
    let owner_id = match d.user {
        Some(n) => Some(s.catalyst.find_user(&who, Lookup::Number(n)).await?.id),
        None => None,
    };
    let external_id = match d.external_id {
        None => None,
        Some(Value::Null) => Some(String::new()),
        Some(Value::String(e)) => Some(e),
        Some(other) => Some(other.to_string()),
    };
    let patch = ServerPatch { name: d.name, description: d.description, external_id, owner_id, ..Default::default() };
    changed(&s, &who, server.id, patch).await
}

#[derive(serde::Deserialize)]
struct Build {
    /// The primary allocation's id.
    #[serde(default)]
    allocation: Option<u64>,
    /// Nested limits; the legacy flat fields beside them win when both are sent (panel #1500).
    #[serde(default)]
    limits: BTreeMap<String, Value>,
    #[serde(default)]
    feature_limits: BTreeMap<String, Value>,
    #[serde(default)]
    add_allocations: Vec<u64>,
    #[serde(default)]
    remove_allocations: Vec<u64>,
    #[serde(flatten)]
    flat: BTreeMap<String, Value>,
}

/// `PATCH /build`: limits (nested or flat), feature limits, the primary allocation, and
/// allocations added or removed by id.
async fn build(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Input(b): Input<Build>,
) -> PResult<Json<Value>> {
    let c = &s.catalyst;
    let server = server_id(&s, &who, id).await?;
    let mut nested = b.limits;
    for key in ["memory", "swap", "disk", "io", "cpu"] {
        if let Some(v) = b.flat.get(key) {
            nested.insert(key.to_string(), v.clone());
        }
    }
    let new_limits = limits(&nested, &b.feature_limits, server.limits)?;
    let held = c.allocations_held(&who, &[server.id]).await?;
    let mut allocations: Vec<(u64, Allocation)> = held
        .iter()
        .filter(|a| !b.remove_allocations.contains(&a.number))
        .map(|a| {
            let primary = server.primary_allocation().is_some_and(|p| p.ip == a.ip && p.port == a.port);
            (a.number, Allocation { ip: a.ip.clone(), port: a.port, primary })
        })
        .collect();
    for number in b.add_allocations {
        let a = c.find_allocation(&who, number).await?;
        if a.node_id != server.node_id {
            return Err(catalyst_core::Error::invalid("The add_allocations must be on the server's node.").into());
        }
        if !allocations.iter().any(|(n, _)| *n == number) {
            allocations.push((number, Allocation { ip: a.ip, port: a.port, primary: false }));
        }
    }
    if let Some(primary) = b.allocation {
        if !allocations.iter().any(|(n, _)| *n == primary) {
            return Err(catalyst_core::Error::invalid("The allocation must be one the server holds.").into());
        }
        for (n, a) in &mut allocations {
            a.primary = *n == primary;
        }
    }
    if !allocations.iter().any(|(_, a)| a.primary) {
        return Err(catalyst_core::Error::invalid("The primary allocation cannot be removed.").into());
    }
    let patch = ServerPatch {
        limits: Some(new_limits),
        allocations: Some(allocations.into_iter().map(|(_, a)| a).collect()),
        ..Default::default()
    };
    changed(&s, &who, server.id, patch).await
}

#[derive(serde::Deserialize)]
struct Startup {
    #[serde(default)]
    startup: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    #[serde(default)]
    egg: Option<u64>,
    #[serde(default)]
    image: Option<String>,
}

/// `PATCH /startup`: variables, image, startup and the egg ("change package": the variables
/// the new egg lacks go, its defaults fill the rest).
async fn startup(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Input(b): Input<Startup>,
) -> PResult<Json<Value>> {
    let c = &s.catalyst;
    let server = server_id(&s, &who, id).await?;
    let template = match b.egg {
        Some(n) => c.find_template(&who, n).await?,
        None => c.get_template(&who, server.template_id).await?,
    };
    let patch = ServerPatch {
        template_id: Some(template.id),
        variables: Some(variables(&template, &b.environment)),
        image: image(&template, b.image),
        startup_command: startup_name(&template, b.startup.as_deref())?,
        ..Default::default()
    };
    changed(&s, &who, server.id, patch).await
}
