//! The HTTP edge of Catalyst: REST under `/api`, the client WebSocket gateway, the agent
//! endpoint, and the OpenAPI document generated from the same route declarations. Handlers are a few lines that call the [`catalyst_runtime::Catalyst`]
//! facade; errors map once, in [`error`]; extractors in [`extract`] turn every bad input into
//! the same `{"error":{"code","message"}}` body.

mod agent;
pub mod agent_client;
pub mod client;
pub mod error;
pub mod extract;
pub mod gateway;
mod health;
pub mod limits;
pub mod openapi;
mod routes;
mod security;
mod serve;

pub use serve::{HEADER_TIMEOUT, SHUTDOWN_GRACE, serve};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use catalyst_runtime::Catalyst;
use catalyst_runtime::link::NodeHub;
use utoipa_axum::router::OpenApiRouter;

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

/// How the HTTP edge behaves; the binaries fill it from their configuration.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Requests per minute per client IP.
    #[serde(default)]
    pub rate_limits: limits::RateLimits,
    /// Origins allowed to call the API from a browser (empty: none; `*`: any).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Served behind TLS: send `Strict-Transport-Security`.
    #[serde(default)]
    pub hsts: bool,
}

/// The agent's own `GET /metrics` (Prometheus text of its servers); the agent serves it on a
/// separate, usually loopback, address.
pub fn exporter_router(exporter: catalyst_runtime::node::NodeExporter) -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let exporter = exporter.clone();
            async move {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(axum::http::header::CONTENT_TYPE, content_type)], exporter.render())
            }
        }),
    )
}

/// The whole API with default settings. `hub` must be the `NodeHub` the `Catalyst` was built
/// with for agents to work.
pub fn router(catalyst: Catalyst, hub: Option<NodeHub>) -> Router {
    router_with(catalyst, hub, &HttpConfig::default())
}

/// Every route under `/api`, each declared once, with its full path, by its handler's OpenAPI
/// description (full paths rather than nested routers: one route lookup per request).
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(routes::auth::router())
        .merge(routes::nodes::locations())
        .merge(routes::nodes::nodes())
        .merge(routes::templates::router())
        .merge(routes::servers::router())
        .merge(routes::files::router())
        .merge(routes::backups::router())
        .merge(routes::admin::router())
        .merge(routes::tasks::router())
        .merge(routes::alerts::router())
        .merge(agent::router())
        .routes(utoipa_axum::routes!(gateway::ws))
}

/// The OpenAPI 3.1 document of the whole API, as served at `/api/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    openapi::finish(&mut doc);
    doc
}

/// The whole API.
pub fn router_with(catalyst: Catalyst, hub: Option<NodeHub>, config: &HttpConfig) -> Router {
    let (api, mut doc) = api().split_for_parts();
    openapi::finish(&mut doc);
    let api = api.merge(openapi::docs_router(doc)).fallback(security::not_found);
    let limiters = limits::Limiters::new(config.rate_limits);
    let shrink = limiters.clone();
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                shrink.shrink();
            }
        });
    }
    let mut app = api.layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    if let Some(cors) = security::cors(&config.cors_origins) {
        app = app.layer(cors);
    }
    app.layer(security::Edge { limiters, hsts: config.hsts }).with_state(AppState {
        catalyst,
        hub,
        sockets: gateway::Sockets::default(),
    })
}
