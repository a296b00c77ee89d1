//! The HTTP edge of Catalyst: REST under `/api` (the client WebSocket gateway and the agent
//! endpoint come next). Handlers are a few lines that call the [`catalyst_runtime::Catalyst`]
//! facade; errors map once, in [`error`]; extractors in [`extract`] turn every bad input into
//! the same `{"error":{"code","message"}}` body.

pub mod error;
pub mod extract;
mod health;
mod routes;
mod security;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use catalyst_runtime::Catalyst;

/// Largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The control plane.
    pub catalyst: Catalyst,
}

/// The whole API.
pub fn router(catalyst: Catalyst) -> Router {
    let api = Router::new()
        .merge(health::router())
        .nest("/auth", routes::auth::router())
        .nest("/locations", routes::nodes::locations())
        .nest("/nodes", routes::nodes::nodes())
        .nest("/templates", routes::templates::router())
        .nest("/servers", routes::servers::router())
        .fallback(security::not_found);
    Router::new()
        .nest("/api", api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(AppState { catalyst })
}
