//! `/api/locations` and `/api/nodes` (+ deployment tokens and allocation pools).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{LocationId, NodeId};
use catalyst_core::model::{Location, NewAllocations, Node, NodeAllocation, Paged};
use catalyst_runtime::control::{
    AllocationPatch, AllocationsAdded, DeploymentToken, LocationPatch, NewLocation, NewNode, NodePatch,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn locations() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_locations, create_location)).routes(routes!(
        get_location,
        update_location,
        delete_location
    ))
}

pub(crate) fn nodes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes, create_node))
        .routes(routes!(get_node, update_node, delete_node))
        .routes(routes!(deployment_token))
        .routes(routes!(list_allocations, add_allocations))
        .routes(routes!(update_allocation, delete_allocation))
}

/// Every location (`location.read`).
#[utoipa::path(get, path = "/api/locations", tag = "locations", responses((status = 200, body = Vec<Location>)))]
async fn list_locations(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Vec<Location>>> {
    Ok(Json(s.catalyst.list_locations(&who).await?))
}

/// Create a location (`location.create`).
#[utoipa::path(post, path = "/api/locations", tag = "locations", request_body = NewLocation, responses((status = 201, body = Location)))]
async fn create_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewLocation>,
) -> ApiResult<(StatusCode, Json<Location>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_location(&who, input).await?)))
}

/// One location (`location.read`).
#[utoipa::path(get, path = "/api/locations/{id}", tag = "locations", params(("id" = LocationId, Path)), responses((status = 200, body = Location)))]
async fn get_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
) -> ApiResult<Json<Location>> {
    Ok(Json(s.catalyst.get_location(&who, id).await?))
}

/// Change a location (`location.update`).
#[utoipa::path(put, path = "/api/locations/{id}", tag = "locations", params(("id" = LocationId, Path)), request_body = LocationPatch, responses((status = 200, body = Location)))]
async fn update_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
    Body(patch): Body<LocationPatch>,
) -> ApiResult<Json<Location>> {
    Ok(Json(s.catalyst.update_location(&who, id, patch).await?))
}

/// Delete a location without nodes (`location.delete`).
#[utoipa::path(delete, path = "/api/locations/{id}", tag = "locations", params(("id" = LocationId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
) -> ApiResult<StatusCode> {
    s.catalyst.delete_location(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A node and whether its agent is connected.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct NodeView {
    #[serde(flatten)]
    node: Node,
    online: bool,
}

/// Every node and whether its agent is connected (`node.read`).
#[utoipa::path(get, path = "/api/nodes", tag = "nodes", params(PageQuery), responses((status = 200, body = Paged<NodeView>)))]
async fn list_nodes(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<NodeView>>> {
    let page = s.catalyst.list_nodes(&who, q.page()).await?;
    let items = page.items.into_iter().map(|node| NodeView { online: s.catalyst.node_online(node.id), node }).collect();
    Ok(Json(Paged { items, total: page.total }))
}

/// Create a node (`node.create`); enroll its agent with a deployment token.
#[utoipa::path(post, path = "/api/nodes", tag = "nodes", request_body = NewNode, responses((status = 201, body = Node)))]
async fn create_node(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_node(&who, input).await?)))
}

/// One node (`node.read`).
#[utoipa::path(get, path = "/api/nodes/{id}", tag = "nodes", params(("id" = NodeId, Path)), responses((status = 200, body = NodeView)))]
async fn get_node(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<NodeId>) -> ApiResult<Json<NodeView>> {
    let node = s.catalyst.get_node(&who, id).await?;
    Ok(Json(NodeView { online: s.catalyst.node_online(node.id), node }))
}

/// Change a node (`node.update`).
#[utoipa::path(put, path = "/api/nodes/{id}", tag = "nodes", params(("id" = NodeId, Path)), request_body = NodePatch, responses((status = 200, body = Node)))]
async fn update_node(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
    Body(patch): Body<NodePatch>,
) -> ApiResult<Json<Node>> {
    Ok(Json(s.catalyst.update_node(&who, id, patch).await?))
}

/// Delete a node without servers (`node.delete`).
#[utoipa::path(delete, path = "/api/nodes/{id}", tag = "nodes", params(("id" = NodeId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_node(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<NodeId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_node(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A one-time deployment token for the node's agent, shown once (`node.update`).
#[utoipa::path(post, path = "/api/nodes/{id}/deployment-token", tag = "nodes", params(("id" = NodeId, Path)), responses((status = 201, body = DeploymentToken)))]
async fn deployment_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
) -> ApiResult<(StatusCode, Json<DeploymentToken>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_deployment_token(&who, id).await?)))
}

/// A node's allocation pool by number, free and held (`node.read`).
#[utoipa::path(get, path = "/api/nodes/{id}/allocations", tag = "nodes", params(("id" = NodeId, Path), PageQuery), responses((status = 200, body = Paged<NodeAllocation>)))]
async fn list_allocations(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<NodeAllocation>>> {
    Ok(Json(s.catalyst.list_allocations(&who, id, q.page()).await?))
}

/// Add ports and ranges on one IP to a node's pool (`node.update`).
#[utoipa::path(post, path = "/api/nodes/{id}/allocations", tag = "nodes", params(("id" = NodeId, Path)), request_body = NewAllocations, responses((status = 201, body = AllocationsAdded)))]
async fn add_allocations(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
    Body(input): Body<NewAllocations>,
) -> ApiResult<(StatusCode, Json<AllocationsAdded>)> {
    let added = s.catalyst.add_allocations(&who, id, input).await?;
    Ok((StatusCode::CREATED, Json(AllocationsAdded { added })))
}

/// Change an allocation's alias or notes (`node.update`).
#[utoipa::path(put, path = "/api/nodes/{id}/allocations/{number}", tag = "nodes", params(("id" = NodeId, Path), ("number" = u64, Path)), request_body = AllocationPatch, responses((status = 200, body = NodeAllocation)))]
async fn update_allocation(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, number)): Ids<(NodeId, u64)>,
    Body(patch): Body<AllocationPatch>,
) -> ApiResult<Json<NodeAllocation>> {
    Ok(Json(s.catalyst.update_allocation(&who, id, number, patch).await?))
}

/// Remove a free allocation from the pool (`node.update`; 409 while a server holds it).
#[utoipa::path(delete, path = "/api/nodes/{id}/allocations/{number}", tag = "nodes", params(("id" = NodeId, Path), ("number" = u64, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_allocation(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, number)): Ids<(NodeId, u64)>,
) -> ApiResult<StatusCode> {
    s.catalyst.delete_allocation(&who, id, number).await?;
    Ok(StatusCode::NO_CONTENT)
}
