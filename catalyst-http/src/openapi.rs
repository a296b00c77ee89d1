//! The OpenAPI 3.1 document. Every route is declared once, by its handler's `#[utoipa::path]`;
//! `utoipa-axum` builds the axum router and the document from that one declaration, so they
//! cannot disagree. Served at `/api/openapi.json`, with Swagger UI (vendored assets, nothing
//! fetched at build or run time) at `/api/docs`.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_SECURITY_POLICY;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};
use utoipa::{OpenApi as _, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where Swagger UI is served.
pub const UI_PATH: &str = "/api/docs";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Catalyst",
        description = "Game servers in containers across many machines. Every error answers \
                       `{\"error\":{\"code\",\"message\"}}`; objects the caller may not see answer 404.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "auth", description = "Accounts, logins and sessions"),
        (name = "locations", description = "Where nodes are"),
        (name = "nodes", description = "Machines that run servers, and their agents' deployment tokens"),
        (name = "templates", description = "What a server runs and how it is installed"),
        (name = "servers", description = "Game servers: lifecycle, power, console, logs, suspension"),
        (name = "files", description = "A server's files: list, stream up and down (resumable), create, move, copy, chmod, archives, search"),
        (name = "backups", description = "Backups: tar + zstd to local, S3 or SFTP storage; restore, lock, retention"),
        (name = "access", description = "Subusers: per-server grants"),
        (name = "alerts", description = "Alerts, their rules, and webhook deliveries"),
        (name = "tasks", description = "Scheduled tasks: cron in a time zone, catch-up policy, history"),
        (name = "api-keys", description = "Keys for automation: scoped, rate-limited, revocable"),
        (name = "admin", description = "Operator views: audit log, statistics, users, nodes, servers, health"),
        (name = "gateway", description = "The client WebSocket"),
        (name = "agent", description = "The node agents' endpoints"),
        (name = "health", description = "Liveness")
    ),
    // Types used only by query parameters (`IntoParams` refers to them without adding them).
    components(schemas(catalyst_runtime::control::Resolution))
)]
struct ApiDoc;

/// The error body every failing request answers with.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code (`not_found`, `invalid_input`, `permission_denied`, …) and a message for people.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable.
    pub code: String,
    /// For people; never contains secrets or internals.
    pub message: String,
}

/// The document's skeleton, for [`utoipa_axum::router::OpenApiRouter::with_openapi`].
pub(crate) fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Add what every operation shares: bearer auth unless declared public (`security(())`), and
/// the error body as the default response.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    components.schemas.insert(ErrorBody::name().into(), ErrorBody::schema());
    components.schemas.insert(ErrorDetail::name().into(), ErrorDetail::schema());
    let error = ResponseBuilder::new()
        .description("An error: `{\"error\":{\"code\",\"message\"}}`")
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations: [&mut Option<Operation>; 6] =
            [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch, &mut item.head];
        for op in operations.into_iter().flatten() {
            if op.security.is_none() {
                op.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                ]);
            }
            op.responses.responses.entry("default".into()).or_insert_with(|| RefOr::T(error.clone()));
        }
    }
}

/// `GET /api/openapi.json` and Swagger UI at `/api/docs`, with a content security policy that
/// lets the UI load its own scripts and styles (the API's default policy allows nothing).
pub(crate) fn docs_router<S: Clone + Send + Sync + 'static>(doc: OpenApi) -> axum::Router<S> {
    let ui: axum::Router<S> = SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, doc).into();
    ui.layer(axum::middleware::map_response(|mut res: axum::response::Response| async move {
        res.headers_mut().insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        );
        res
    }))
}
