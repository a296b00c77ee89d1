//! `/api/locations` and `/api/nodes` (+ deployment tokens).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use catalyst_core::id::{LocationId, NodeId};
use catalyst_core::model::{Location, Node, Paged};
use catalyst_runtime::control::{DeploymentToken, LocationPatch, NewLocation, NewNode, NodePatch};

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn locations() -> Router<AppState> {
    Router::new()
        .route("/", get(list_locations).post(create_location))
        .route("/{id}", get(get_location).put(update_location).delete(delete_location))
}

pub(crate) fn nodes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_nodes).post(create_node))
        .route("/{id}", get(get_node).put(update_node).delete(delete_node))
        .route("/{id}/deployment-token", post(deployment_token))
}

async fn list_locations(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Vec<Location>>> {
    Ok(Json(s.catalyst.list_locations(&who).await?))
}

async fn create_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewLocation>,
) -> ApiResult<(StatusCode, Json<Location>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_location(&who, input).await?)))
}

async fn get_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
) -> ApiResult<Json<Location>> {
    Ok(Json(s.catalyst.get_location(&who, id).await?))
}

async fn update_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
    Body(patch): Body<LocationPatch>,
) -> ApiResult<Json<Location>> {
    Ok(Json(s.catalyst.update_location(&who, id, patch).await?))
}

async fn delete_location(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<LocationId>,
) -> ApiResult<StatusCode> {
    s.catalyst.delete_location(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A node and whether its agent is connected.
#[derive(Debug, serde::Serialize)]
struct NodeView {
    #[serde(flatten)]
    node: Node,
    online: bool,
}

async fn list_nodes(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<NodeView>>> {
    let page = s.catalyst.list_nodes(&who, q.page()).await?;
    let items = page.items.into_iter().map(|node| NodeView { online: s.catalyst.node_online(node.id), node }).collect();
    Ok(Json(Paged { items, total: page.total }))
}

async fn create_node(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_node(&who, input).await?)))
}

async fn get_node(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<NodeId>) -> ApiResult<Json<NodeView>> {
    let node = s.catalyst.get_node(&who, id).await?;
    Ok(Json(NodeView { online: s.catalyst.node_online(node.id), node }))
}

async fn update_node(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
    Body(patch): Body<NodePatch>,
) -> ApiResult<Json<Node>> {
    Ok(Json(s.catalyst.update_node(&who, id, patch).await?))
}

async fn delete_node(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<NodeId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_node(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deployment_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<NodeId>,
) -> ApiResult<(StatusCode, Json<DeploymentToken>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_deployment_token(&who, id).await?)))
}
