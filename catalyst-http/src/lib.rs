//! The HTTP edge of Catalyst: REST under `/api` (the client WebSocket gateway and the agent
//! endpoint come next). Handlers are a few lines that call the [`catalyst_runtime::Catalyst`]
//! facade; errors map once, in [`error`]; extractors in [`extract`] turn every bad input into
//! the same `{"error":{"code","message"}}` body.

mod agent;
pub mod agent_client;
pub mod error;
pub mod extract;
pub mod gateway;
mod health;
mod routes;
mod security;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use catalyst_runtime::Catalyst;
use catalyst_runtime::link::NodeHub;

/// Largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The control plane.
    pub catalyst: Catalyst,
    /// Where connecting agents attach (the hub the control plane was built with); `None`
    /// refuses agents.
    pub hub: Option<NodeHub>,
    /// Open client sockets per user.
    pub sockets: gateway::Sockets,
}

pub use agent::{IDLE_TIMEOUT, MAX_FRAME, REQUEST_TIMEOUT};

/// The whole API. `hub` must be the `NodeHub` the `Catalyst` was built with for agents to work.
pub fn router(catalyst: Catalyst, hub: Option<NodeHub>) -> Router {
    let api = Router::new()
        .merge(health::router())
        .nest("/auth", routes::auth::router())
        .nest("/locations", routes::nodes::locations())
        .nest("/nodes", routes::nodes::nodes())
        .nest("/templates", routes::templates::router())
        .nest("/servers", routes::servers::router())
        .nest("/agent", agent::router())
        .route("/ws", axum::routing::get(gateway::ws))
        .fallback(security::not_found);
    Router::new()
        .nest("/api", api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(AppState { catalyst, hub, sockets: gateway::Sockets::default() })
}
