//! `/api/account/api-keys`: keys a signed-in user makes for their own scripts, without
//! `apikey.create` (Pterodactyl's client keys); server scopes reach the servers the user may
//! act on (a customer's own and shared ones).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::ApiKeyId;
use catalyst_core::model::{ApiKey, Paged};
use catalyst_runtime::control::{CreatedApiKey, NewApiKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_keys, create_key)).routes(routes!(delete_key))
}

/// The caller's own keys, newest first.
#[utoipa::path(get, path = "/api/account/api-keys", tag = "api-keys", params(PageQuery), responses((status = 200, body = Paged<ApiKey>)))]
async fn list_keys(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<ApiKey>>> {
    Ok(Json(s.catalyst.list_account_keys(&who, q.page()).await?))
}

/// Create a key for the caller: server permissions, or global ones the caller holds. The
/// answer's `key` is the only copy of the secret.
#[utoipa::path(post, path = "/api/account/api-keys", tag = "api-keys", request_body = NewApiKey, responses((status = 201, body = CreatedApiKey)))]
async fn create_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_account_key(&who, input).await?)))
}

/// Delete one of the caller's keys; it stops working at once.
#[utoipa::path(delete, path = "/api/account/api-keys/{id}", tag = "api-keys", params(("id" = ApiKeyId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_key(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ApiKeyId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_account_key(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
