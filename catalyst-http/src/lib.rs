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
mod pterodactyl;
mod routes;
mod security;
mod serve;

pub use serve::{HEADER_TIMEOUT, MAX_CONNECTIONS_PER_IP, SHUTDOWN_GRACE, serve, serve_with};

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

/// How the HTTP edge behaves; the binaries fill it from their configuration. Durations read
/// from configuration files are seconds (`30`, `0.5`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Requests per minute per client IP.
    pub rate_limits: limits::RateLimits,
    /// Origins allowed to call the API from a browser (empty: none; `*`: any).
    pub cors_origins: Vec<String>,
    /// Served behind TLS: send `Strict-Transport-Security`.
    pub hsts: bool,
    /// Longest a client may take to send a request's headers, counted from the connection's
    /// opening or the end of the previous response, so also how long an idle keep-alive
    /// connection stays open ([`serve_with`]; default [`HEADER_TIMEOUT`]).
    #[serde(deserialize_with = "secs")]
    pub header_timeout: std::time::Duration,
    /// Longest a request body may go without a byte while its handler waits for one; then the
    /// request fails with 408 (default [`BODY_IDLE_TIMEOUT`]). Streamed uploads have only this
    /// deadline, however long they take.
    #[serde(deserialize_with = "secs")]
    pub body_idle_timeout: std::time::Duration,
    /// Longest a JSON body (at most [`MAX_BODY_BYTES`]) may take to arrive in all; then 408
    /// (default [`JSON_BODY_TIMEOUT`]).
    #[serde(deserialize_with = "secs")]
    pub json_body_timeout: std::time::Duration,
    /// Open connections per client IP, WebSockets included; more are answered 429 and closed
    /// at once ([`serve_with`]; at least 1; default [`MAX_CONNECTIONS_PER_IP`]).
    pub max_connections_per_ip: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            rate_limits: limits::RateLimits::default(),
            cors_origins: Vec::new(),
            hsts: false,
            header_timeout: HEADER_TIMEOUT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            json_body_timeout: JSON_BODY_TIMEOUT,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// Default of [`HttpConfig::body_idle_timeout`].
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Default of [`HttpConfig::json_body_timeout`].
pub const JSON_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A duration given in (possibly fractional) seconds.
fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let v = <f64 as serde::Deserialize>::deserialize(d)?;
    std::time::Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
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
        .merge(routes::account::router())
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
    // The 405 fallback goes on every method router registered so far: call it last.
    let api = api
        .merge(openapi::docs_router(doc))
        .merge(pterodactyl::router())
        .fallback(security::not_found)
        .method_not_allowed_fallback(security::method_not_allowed);
    let limiters = limits::Limiters::new(config.rate_limits);
    let shrink = limiters.clone();
    if tokio::runtime::Handle::try_current().is_ok() {
        catalyst.background().spawn(async move {
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
    app.layer(security::Edge {
        limiters,
        hsts: config.hsts,
        body: security::BodyTimeouts { idle: config.body_idle_timeout, json: config.json_body_timeout },
    })
    .with_state(AppState { catalyst, hub, sockets: gateway::Sockets::default() })
}
