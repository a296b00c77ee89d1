//! Nests and eggs (templates grouped by `group`), locations, nodes and their allocations.
//! A nest's id is the smallest number of its templates, so it is stable while that one lives.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use catalyst_core::Error;
use catalyst_core::model::{Node, NodeAllocation, Page, Template};
use catalyst_core::permission::Principal;
use serde_json::{Value, json};

use crate::AppState;
use crate::pterodactyl::{Caller, ListQuery, Num, PResult, Params, item, list, time};

crate::pterodactyl::routes! {
    get "/api/application/nests" => list_nests, 200, "Nests: templates grouped by their group";
    get "/api/application/nests/{nest}" => get_nest, 200, "One nest";
    get "/api/application/nests/{nest}/eggs" => list_eggs, 200, "A nest's eggs (`include=variables`)";
    get "/api/application/nests/{nest}/eggs/{egg}" => get_egg, 200, "One egg (`include=variables`)";
    get "/api/application/locations" => list_locations, 200, "Locations";
    get "/api/application/locations/{id}" => get_location, 200, "One location";
    get "/api/application/nodes" => list_nodes, 200, "Nodes (`include=allocations,location`)";
    get "/api/application/nodes/deployable" => deployable, 200, "Nodes with room for `memory` and `disk` MiB in `location_ids[]`";
    get "/api/application/nodes/{id}" => get_node, 200, "One node (`include=allocations,location`)";
    get "/api/application/nodes/{id}/allocations" => list_allocations, 200, "A node's allocation pool";
}

/// A nest: the templates of one group.
pub(super) struct Nest {
    id: u64,
    name: String,
    eggs: Vec<Template>,
}

/// Every template, grouped, by nest id.
async fn nests(s: &AppState, who: &Principal) -> PResult<BTreeMap<u64, Nest>> {
    let mut by_group: BTreeMap<String, Vec<Template>> = BTreeMap::new();
    let mut offset = 0;
    loop {
        let page = s.catalyst.list_templates(who, Page::new(offset, Page::MAX_LIMIT)).await?;
        offset += page.items.len() as u64;
        let done = page.items.is_empty() || offset >= page.total;
        for t in page.items {
            by_group.entry(t.group.clone()).or_default().push(t);
        }
        if done {
            break;
        }
    }
    Ok(by_group
        .into_iter()
        .map(|(group, mut eggs)| {
            eggs.sort_by_key(|t| t.number);
            let name = if group.is_empty() { "Catalyst".to_string() } else { group };
            (eggs[0].number, Nest { id: eggs[0].number, name, eggs })
        })
        .collect())
}

/// The nest id of a template.
pub(super) async fn nest_of(s: &AppState, who: &Principal, t: &Template) -> PResult<u64> {
    Ok(nests(s, who).await?.into_values().find(|n| n.eggs.iter().any(|e| e.id == t.id)).map_or(t.number, |n| n.id))
}

pub(super) fn nest_view(n: &Nest) -> Value {
    let created = n.eggs.iter().map(|e| e.created_at).min().map(time);
    item(
        "nest",
        json!({"id": n.id, "uuid": n.eggs[0].id, "author": "catalyst", "name": n.name, "description": "",
               "created_at": created, "updated_at": created}),
    )
}

/// An egg variable's attributes (a server's adds its `server_value`).
pub(super) fn variable_attributes(v: &catalyst_core::model::TemplateVariable) -> Value {
    json!({"name": v.label, "description": v.description, "env_variable": v.name,
           "default_value": v.default.clone().unwrap_or_default(), "user_viewable": v.user_viewable,
           "user_editable": v.user_editable, "rules": v.rules.joined()})
}

pub(super) fn egg_view(nest: u64, t: &Template, with_variables: bool) -> Value {
    let mut images: serde_json::Map<String, Value> =
        t.images.iter().map(|i| (i.name.clone(), json!(i.image))).collect();
    if images.is_empty() {
        images.insert(t.image.clone(), json!(t.image));
    }
    let mut attributes = json!({
        "id": t.number, "uuid": t.egg.as_ref().map_or_else(|| t.id.to_string(), |e| e.uuid.clone()), "name": t.name,
        "nest": nest, "author": t.egg.as_ref().map_or("catalyst", |e| e.author.as_str()),
        "description": t.description, "docker_image": t.image, "docker_images": images,
        "startup": t.startup, "created_at": time(t.created_at), "updated_at": time(t.created_at),
    });
    if with_variables {
        let variables: Vec<Value> = t.variables.iter().map(|v| item("egg_variable", variable_attributes(v))).collect();
        attributes["relationships"] = json!({"variables": {"object": "list", "data": variables}});
    }
    item("egg", attributes)
}

async fn list_nests(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let all = nests(&s, &who).await?;
    let page = q.page()?;
    let data: Vec<Value> =
        all.values().skip(page.offset as usize).take(page.effective_limit() as usize).map(nest_view).collect();
    Ok(Json(list(&q, "/api/application/nests", data, all.len() as u64)?))
}

pub(super) async fn one_nest(s: &AppState, who: &Principal, id: u64) -> PResult<Nest> {
    nests(s, who).await?.remove(&id).ok_or_else(|| catalyst_core::Error::not_found("nest").into())
}

async fn get_nest(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Json<Value>> {
    Ok(Json(nest_view(&one_nest(&s, &who, id).await?)))
}

async fn list_eggs(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let nest = one_nest(&s, &who, id).await?;
    let data = nest.eggs.iter().map(|t| egg_view(nest.id, t, q.includes("variables"))).collect();
    Ok(Json(list(&q, &format!("/api/application/nests/{id}/eggs"), data, nest.eggs.len() as u64)?))
}

/// The egg by its id; the nest in the path is not checked (WHMCS sends what it has).
async fn get_egg(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num((_, egg)): Num<(u64, u64)>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let t = s.catalyst.find_template(&who, egg).await?;
    let nest = nest_of(&s, &who, &t).await?;
    Ok(Json(egg_view(nest, &t, q.includes("variables"))))
}

pub(super) fn location_view(l: &catalyst_core::model::Location) -> Value {
    item(
        "location",
        json!({"id": l.number, "short": l.name, "long": l.description,
               "created_at": time(l.created_at), "updated_at": time(l.created_at)}),
    )
}

async fn list_locations(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let all = s.catalyst.list_locations(&who).await?;
    let page = q.page()?;
    let data = all.iter().skip(page.offset as usize).take(page.effective_limit() as usize).map(location_view).collect();
    Ok(Json(list(&q, "/api/application/locations", data, all.len() as u64)?))
}

async fn get_location(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Json<Value>> {
    Ok(Json(location_view(&s.catalyst.find_location(&who, id).await?)))
}

pub(super) async fn node_view(s: &AppState, who: &Principal, n: &Node) -> PResult<Value> {
    let location = s.catalyst.get_location(who, n.location_id).await?.number;
    Ok(item(
        "node",
        json!({"id": n.number, "uuid": n.id, "public": true, "name": n.name, "description": "",
               "location_id": location, "fqdn": n.fqdn, "scheme": "https", "behind_proxy": false,
               "maintenance_mode": false, "memory": n.memory_mb, "memory_overallocate": n.overallocate_percent,
               "disk": n.disk_mb, "disk_overallocate": n.overallocate_percent, "upload_size": 100,
               "daemon_listen": 8080, "daemon_sftp": 2022, "daemon_base": "/var/lib/catalyst",
               "created_at": time(n.created_at), "updated_at": time(n.created_at)}),
    ))
}

/// A node with the includes asked for: `allocations` (its whole pool) and `location`.
async fn node_with(s: &AppState, who: &Principal, n: &Node, q: &ListQuery) -> PResult<Value> {
    let mut view = node_view(s, who, n).await?;
    let mut relationships = serde_json::Map::new();
    if q.includes("allocations") {
        let mut data = Vec::new();
        loop {
            let page = s.catalyst.list_allocations(who, n.id, Page::new(data.len() as u64, Page::MAX_LIMIT)).await?;
            let done = page.items.is_empty() || data.len() + page.items.len() >= page.total as usize;
            data.extend(page.items.iter().map(allocation_view));
            if done {
                break;
            }
        }
        relationships.insert("allocations".into(), json!({"object": "list", "data": data}));
    }
    if q.includes("location") {
        relationships.insert("location".into(), location_view(&s.catalyst.get_location(who, n.location_id).await?));
    }
    if !relationships.is_empty() {
        view["attributes"]["relationships"] = Value::Object(relationships);
    }
    Ok(view)
}

async fn list_nodes(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let page = s.catalyst.list_nodes(&who, q.page()?).await?;
    let mut data = Vec::with_capacity(page.items.len());
    for n in &page.items {
        data.push(node_with(&s, &who, n, &q).await?);
    }
    Ok(Json(list(&q, "/api/application/nodes", data, page.total)?))
}

async fn get_node(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let node = s.catalyst.find_node(&who, id).await?;
    Ok(Json(node_with(&s, &who, &node, &q).await?))
}

/// `?memory=&disk=&location_ids[]=`: the nodes with room for a server of that size
/// (Paymenter then picks a free allocation from `include=allocations`).
async fn deployable(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
    RawQuery(raw): RawQuery,
) -> PResult<Json<Value>> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let size = |name: &str| -> PResult<u64> {
        let v = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).unwrap_or_default();
        v.parse().map_err(|_| Error::invalid(format!("The {name} field is required and must be an integer.")).into())
    };
    let (memory, disk) = (size("memory")?, size("disk")?);
    let mut locations = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "location_ids" || k.starts_with("location_ids[")) {
        let number = v.trim().parse().map_err(|_| Error::invalid("The location_ids must be integers."))?;
        locations.push(s.catalyst.find_location(&who, number).await?.id);
    }
    let nodes = s.catalyst.deployable_nodes(&who, &locations, memory, disk).await?;
    let page = q.page()?;
    let mut data = Vec::new();
    for n in nodes.iter().skip(page.offset as usize).take(page.effective_limit() as usize) {
        data.push(node_with(&s, &who, n, &q).await?);
    }
    Ok(Json(list(&q, "/api/application/nodes/deployable", data, nodes.len() as u64)?))
}

pub(super) fn allocation_view(a: &NodeAllocation) -> Value {
    item(
        "allocation",
        json!({"id": a.number, "ip": a.ip, "alias": a.alias, "port": a.port, "notes": a.notes,
               "assigned": a.server_id.is_some()}),
    )
}

async fn list_allocations(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let node = s.catalyst.find_node(&who, id).await?;
    let page = s.catalyst.list_allocations(&who, node.id, q.page()?).await?;
    let data = page.items.iter().map(allocation_view).collect();
    Ok(Json(list(&q, &format!("/api/application/nodes/{id}/allocations"), data, page.total)?))
}
