//! The HTTP edge of Catalyst: REST under `/api`, the client WebSocket gateway and the agent
//! endpoint (growing with the control-plane issue). Handlers are a few lines that call the
//! [`catalyst_runtime::Catalyst`] facade; errors map once, in [`error`].

pub mod error;
mod health;

use axum::Router;
use catalyst_runtime::Catalyst;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The control plane.
    pub catalyst: Catalyst,
}

/// The whole API.
pub fn router(catalyst: Catalyst) -> Router {
    Router::new().nest("/api", health::router()).with_state(AppState { catalyst })
}
