//! Request extractors that fail with the one error body: the caller's identity, JSON bodies,
//! ids in paths, and query strings.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use catalyst_core::permission::Principal;
use catalyst_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;
use crate::security::BodyWatch;

/// The authenticated caller: `Authorization: Bearer <access token or API key>` or
/// `x-api-key: <API key>`.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Credential(credential) = Credential::from_request_parts(parts, state).await?;
        Ok(Auth(state.catalyst.authenticate(&credential, client_ip(parts)).await?))
    }
}

/// The credential the request presents, not yet checked: `x-api-key`, else the
/// `Authorization: Bearer` token (the one [`Auth`] authenticates).
#[derive(Debug, Clone)]
pub struct Credential(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(key) = parts.headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| Error::unauthenticated("the API key is invalid"))?;
            return Ok(Credential(key.trim().to_string()));
        }
        let header =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                Error::unauthenticated("an Authorization: Bearer token or an x-api-key header is required")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Error::unauthenticated("the Authorization header must be a Bearer token"))?;
        Ok(Credential(token.trim().to_string()))
    }
}

/// The client's address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// A JSON body; malformed input, unknown fields and wrong types are `invalid_input`. A body
/// that stalls ([`crate::HttpConfig::body_idle_timeout`]) or takes longer than
/// [`crate::HttpConfig::json_body_timeout`] in all is 408 `timeout`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let watch = req.extensions().get::<Arc<BodyWatch>>().cloned();
        let deadline = watch.as_ref().map_or(crate::JSON_BODY_TIMEOUT, |w| w.json_timeout());
        let read = match tokio::time::timeout(deadline, axum::Json::<T>::from_request(req, state)).await {
            Ok(read) => read,
            Err(_) => {
                let message = format!("the request body took longer than {deadline:?}");
                return Err(
                    ApiError::from(Error::timeout(message)).with_status(axum::http::StatusCode::REQUEST_TIMEOUT)
                );
            }
        };
        match read {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                if let Some(watch) = watch.filter(|w| w.stalled()) {
                    return Err(watch.stalled_error());
                }
                let status = rejection.status();
                let kind = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorKind::QuotaExceeded
                } else {
                    ErrorKind::InvalidInput
                };
                let message = match kind {
                    ErrorKind::QuotaExceeded => "the request body is too large".to_string(),
                    _ => rejection.body_text(),
                };
                Err(ApiError::from(Error::new(kind, message)).with_status(status))
            }
        }
    }
}

/// A path of typed ids; a malformed id is `invalid_input`.
#[derive(Debug, Clone)]
pub struct Ids<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Ids(p.0))
            .map_err(|e| ApiError::from(Error::invalid(format!("bad path: {}", e.body_text()))))
    }
}

/// A query string; unknown or malformed parameters are `invalid_input`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::from(Error::invalid(format!("bad query: {}", e.body_text()))))
    }
}
