//! Pterodactyl 1.x's HTTP dialects, as billing modules (WHMCS, Paymenter, Blesta) and
//! pydactyl speak them: the Application API (`/api/application`, operators) and a subset of the
//! Client API (`/api/client`, customers). A translation at the edge: ids are the stores' integer
//! numbers (servers go by Pterodactyl's 8-character identifier or their UUID), bodies are lenient
//! (unknown fields ignored), answers use Pterodactyl's `{object, attributes}` envelope and
//! `{"errors": [{code, status, detail}]}`; every rule is the facade's. Authenticated like every
//! route (a Catalyst API key as `Authorization: Bearer`, its scopes deciding), audited as the
//! key's owner.

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use catalyst_core::permission::Principal;
use catalyst_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;
use crate::extract::Auth;

/// One route of a dialect, as its OpenAPI document lists it.
pub(crate) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub status: u16,
    pub summary: &'static str,
}

/// A module's routes from one table: its `router()` and its `ROUTES` for the dialect's
/// OpenAPI document, which therefore cannot drift apart.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path, $status:literal, $summary:literal;)*) => {
        pub(super) fn router() -> axum::Router<crate::AppState> {
            axum::Router::new()$(.route($path, axum::routing::$method($handler)))*
        }

        pub(super) const ROUTES: &[crate::pterodactyl::Route] = &[$(crate::pterodactyl::Route {
            method: stringify!($method), path: $path, status: $status, summary: $summary,
        }),*];
    };
}
pub(crate) use routes;

mod application;
mod client;
mod openapi;

/// Every route of both dialects, and their OpenAPI documents.
pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(application::router()).merge(client::router()).merge(openapi::router())
}

/// An error in Pterodactyl's shape.
#[derive(Debug)]
pub(crate) struct PteroError(Error);

impl From<Error> for PteroError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<crate::error::ApiError> for PteroError {
    fn from(e: crate::error::ApiError) -> Self {
        Self(e.into_error())
    }
}

impl IntoResponse for PteroError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let (status, code) = match kind {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFoundHttpException"),
            ErrorKind::Conflict | ErrorKind::InvalidTransition => (StatusCode::CONFLICT, "ConflictHttpException"),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "AccessDeniedHttpException"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "AuthenticationException"),
            ErrorKind::InvalidInput => (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"),
            // What WHMCS reads as "Couldn't find any nodes satisfying the request".
            ErrorKind::QuotaExceeded => (StatusCode::BAD_REQUEST, "DisplayException"),
            ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsHttpException"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "DaemonConnectionException"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "TimeoutException"),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        let detail = match kind {
            ErrorKind::NotFound => "The requested resource could not be found on the server.".to_string(),
            ErrorKind::Internal => {
                tracing::error!(error = ?self.0, "internal error");
                "An unexpected error was encountered while processing this request.".to_string()
            }
            _ => self.0.message().to_string(),
        };
        let body = json!({"errors": [{"code": code, "status": status.as_u16().to_string(), "detail": detail}]});
        (status, axum::Json(body)).into_response()
    }
}

/// Handler result.
pub(crate) type PResult<T> = Result<T, PteroError>;

/// The caller, authenticated as on every route.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = PteroError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Caller(Auth::from_request_parts(parts, state).await?.0))
    }
}

/// A JSON body; fields the target type does not know are ignored, as Laravel's `validated()`
/// drops them.
pub(crate) struct Input<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Input<T> {
    type Rejection = PteroError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Input(crate::extract::Body::<T>::from_request(req, state).await?.0))
    }
}

/// An integer id in the path; anything else is a missing resource, as route-model binding has it.
pub(crate) struct Num<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Num<T> {
    type Rejection = PteroError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Num(p.0))
            .map_err(|_| Error::not_found("resource").into())
    }
}

/// A query string, its errors in Pterodactyl's shape.
pub(crate) struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = PteroError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params(crate::extract::Query::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// `?page=&per_page=&include=&filter[...]=`; other parameters are ignored.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
    #[serde(default)]
    include: Option<String>,
    #[serde(rename = "filter[email]")]
    pub filter_email: Option<String>,
    #[serde(rename = "filter[external_id]")]
    pub filter_external_id: Option<String>,
    #[serde(rename = "filter[uuid]")]
    pub filter_uuid: Option<String>,
    #[serde(rename = "filter[username]")]
    pub filter_username: Option<String>,
}

/// The most items a page holds.
const MAX_PER_PAGE: u64 = catalyst_core::model::Page::MAX_LIMIT as u64;

impl ListQuery {
    /// Page number (from 1) and size, validated.
    pub fn pages(&self) -> PResult<(u64, u64)> {
        let number = |field: &str, v: &Option<String>, default: u64, max: u64| -> PResult<u64> {
            match v {
                None => Ok(default),
                Some(s) => s.trim().parse::<u64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    Error::invalid(format!("The {field} must be an integer between 1 and {max}.")).into()
                }),
            }
        };
        Ok((
            number("page", &self.page, 1, u64::MAX / MAX_PER_PAGE)?,
            number("per page", &self.per_page, 50, MAX_PER_PAGE)?,
        ))
    }

    /// The store page these select.
    pub fn page(&self) -> PResult<catalyst_core::model::Page> {
        let (page, per_page) = self.pages()?;
        Ok(catalyst_core::model::Page::new((page - 1) * per_page, per_page as u32))
    }

    /// Is `name` in `?include=`?
    pub fn includes(&self, name: &str) -> bool {
        self.include.as_deref().is_some_and(|i| i.split(',').any(|x| x.trim() == name))
    }
}

/// `{"object": <name>, "attributes": {...}}`.
pub(crate) fn item(object: &str, attributes: Value) -> Value {
    json!({"object": object, "attributes": attributes})
}

/// A list with `meta.pagination`.
pub(crate) fn list(query: &ListQuery, path: &str, data: Vec<Value>, total: u64) -> PResult<Value> {
    let (page, per_page) = query.pages()?;
    let total_pages = total.div_ceil(per_page).max(1);
    let mut links = serde_json::Map::new();
    if page < total_pages {
        links.insert("next".into(), json!(format!("{path}?page={}&per_page={per_page}", page + 1)));
    }
    if page > 1 {
        links.insert("previous".into(), json!(format!("{path}?page={}&per_page={per_page}", page - 1)));
    }
    let pagination = json!({"total": total, "count": data.len(), "per_page": per_page, "current_page": page,
                            "total_pages": total_pages, "links": links});
    Ok(json!({"object": "list", "data": data, "meta": {"pagination": pagination}}))
}

/// 204 with no body (suspend, unsuspend, reinstall, delete).
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 201 with a JSON body (create).
pub(crate) fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

/// Pterodactyl's timestamps.
pub(crate) fn time(t: catalyst_core::model::Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A server's `status`: what it is busy with, or null when it is simply up or down.
pub(crate) fn status(state: catalyst_core::lifecycle::ServerState) -> Value {
    use catalyst_core::lifecycle::ServerState;
    match state {
        ServerState::Installing => json!("installing"),
        ServerState::InstallFailed => json!("install_failed"),
        ServerState::Suspended => json!("suspended"),
        ServerState::Restoring => json!("restoring_backup"),
        _ => Value::Null,
    }
}

/// A server's `limits` object.
pub(crate) fn limits_view(l: &catalyst_core::model::Limits) -> Value {
    json!({"memory": l.memory_mb, "swap": l.swap_mb, "disk": l.disk_mb, "io": l.io_weight, "cpu": l.cpu_percent,
           "threads": null, "oom_disabled": true})
}

/// A server's `feature_limits` (databases are not offered yet: 0).
pub(crate) fn feature_limits_view(l: &catalyst_core::model::Limits) -> Value {
    json!({"databases": 0, "allocations": l.allocations, "backups": l.backups})
}
