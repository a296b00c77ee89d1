//! The one mapping from [`catalyst_core::ErrorKind`] to HTTP: a status and
//! `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalyst_core::{Error, ErrorKind};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    error: Error,
    status: Option<StatusCode>,
}

impl ApiError {
    /// The error, for edges that answer in another shape (`/api/application`).
    pub fn into_error(self) -> Error {
        self.error
    }

    /// Keep a more precise status than the kind's default (e.g. 413, 415).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self { error, status: None }
    }
}

/// The HTTP status of each error kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::InvalidTransition => StatusCode::CONFLICT,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        // The tenant's allowance (disk, backups) is full: their request, not our failure.
        ErrorKind::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.error.kind();
        // Internal details stay in the server log, never in the response.
        let message = if kind == ErrorKind::Internal {
            tracing::error!(error = ?self.error, "internal error");
            "internal error".to_string()
        } else {
            self.error.message().to_string()
        };
        let body = serde_json::json!({"error": {"code": kind.code(), "message": message}});
        let mut res = (self.status.unwrap_or_else(|| status(kind)), Json(body)).into_response();
        if let Some(wait) = self.error.retry_after() {
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        res
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_an_error_status() {
        for kind in ErrorKind::ALL {
            let s = status(kind);
            assert!(s.is_client_error() || s.is_server_error(), "{kind}: {s}");
        }
    }
}
