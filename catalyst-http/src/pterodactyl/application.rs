//! `/api/application/*`: the operator side, for billing modules: users, servers, nests and
//! eggs (template groups and templates), locations, nodes and their allocations.

use axum::Router;

use crate::AppState;

mod catalog;
mod servers;
mod users;

pub(super) fn router() -> Router<AppState> {
    Router::new().merge(users::router()).merge(servers::router()).merge(catalog::router())
}

/// Every route, for the OpenAPI document.
pub(super) fn routes() -> impl Iterator<Item = &'static super::Route> {
    users::ROUTES.iter().chain(servers::ROUTES).chain(catalog::ROUTES)
}
