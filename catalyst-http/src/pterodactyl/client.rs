//! `/api/client/*`: the customer side, the subset pydactyl and Blesta's client area use:
//! account, the caller's servers, resources, power, command, websocket credentials, startup
//! variables, settings, files and backups. A server is addressed by its 8-character
//! identifier (or UUID); one the caller cannot see is a 404, as everywhere.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use catalyst_core::Error;
use catalyst_core::id::NodeId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{NodeAllocation, Server};
use catalyst_core::permission::Principal;
use catalyst_runtime::control::NodeAddress;
use serde_json::{Value, json};

use crate::AppState;
use crate::pterodactyl::{
    Caller, ListQuery, PResult, Params, PteroError, feature_limits_view, item, limits_view, list, status,
};

mod account;
mod backups;
mod files;
mod servers;

pub(super) fn router() -> Router<AppState> {
    Router::new().merge(account::router()).merge(servers::router()).merge(files::router()).merge(backups::router())
}

/// Every route, for the OpenAPI document.
pub(super) fn routes() -> impl Iterator<Item = &'static super::Route> {
    account::ROUTES.iter().chain(servers::ROUTES).chain(files::ROUTES).chain(backups::ROUTES)
}

/// The caller and the server the path's `{server}` names (its 8-character identifier or
/// UUID), as the caller may see it; a server they cannot see is a 404.
pub(super) struct Target {
    pub who: Principal,
    pub server: Server,
}

impl FromRequestParts<AppState> for Target {
    type Rejection = PteroError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(who) = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| Error::not_found("server"))?;
        let identifier =
            params.iter().find(|(k, _)| *k == "server").map(|(_, v)| v).ok_or_else(|| Error::not_found("server"))?;
        let server = state.catalyst.find_server_by_identifier(&who, identifier).await?;
        Ok(Target { who, server })
    }
}

/// A server as Pterodactyl's client `ServerTransformer` shows it.
async fn server_view(
    s: &AppState,
    who: &Principal,
    server: &Server,
    node: &NodeAddress,
    held: &[NodeAllocation],
) -> PResult<Value> {
    let startup = s.catalyst.server_startup(who, server.id).await?;
    let l = &server.limits;
    let allocations: Vec<Value> = held
        .iter()
        .filter(|a| a.server_id == Some(server.id))
        .map(|a| {
            let primary = server.primary_allocation().is_some_and(|p| p.ip == a.ip && p.port == a.port);
            item(
                "allocation",
                json!({"id": a.number, "ip": a.ip, "ip_alias": a.alias, "port": a.port, "notes": a.notes,
                       "is_default": primary}),
            )
        })
        .collect();
    Ok(item(
        "server",
        json!({
            "server_owner": who.user_id() == Some(server.owner_id),
            "identifier": server.id.identifier(), "internal_id": server.number, "uuid": server.id,
            "name": server.name, "description": server.description,
            "node": node.name, "is_node_under_maintenance": false,
            // Catalyst's SFTP listens on the node, by default on 2022.
            "sftp_details": {"ip": node.fqdn, "port": 2022},
            "limits": limits_view(l),
            "invocation": startup.startup, "docker_image": startup.image,
            "egg_features": startup.features,
            "feature_limits": feature_limits_view(l),
            "status": status(server.state), "is_suspended": server.suspended(),
            "is_installing": matches!(server.state, ServerState::Installing), "is_transferring": false,
            "relationships": {"allocations": {"object": "list", "data": allocations}},
        }),
    ))
}

/// `GET /api/client`: the servers the caller owns or shares, whatever else they may see.
pub(super) async fn list_servers(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let (page, held) = s.catalyst.list_own_servers(&who, q.page()?).await?;
    // One read per node, not per server.
    let mut nodes: HashMap<NodeId, NodeAddress> = HashMap::new();
    let mut data = Vec::with_capacity(page.items.len());
    for server in &page.items {
        let node = match nodes.entry(server.node_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(s.catalyst.server_node_address(&who, server.id).await?),
        };
        data.push(server_view(&s, &who, server, node, &held).await?);
    }
    Ok(Json(list(&q, "/api/client", data, page.total)?))
}

/// `GET /api/client/servers/{server}`.
pub(super) async fn one_server(s: &AppState, who: &Principal, server: &Server) -> PResult<Value> {
    let held = s.catalyst.allocations_held(who, &[server.id]).await?;
    let node = s.catalyst.server_node_address(who, server.id).await?;
    server_view(s, who, server, &node, &held).await
}
