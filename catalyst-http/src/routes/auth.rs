//! `/api/auth`: register, login, me, refresh, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::model::User;
use catalyst_runtime::control::{LoginInput, LoginOutput, Me, RegisterInput};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, ClientIp};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

/// Create an account (no roles: it sees only what it is given access to).
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()), request_body = RegisterInput, responses((status = 201, body = User)))]
async fn register(State(s): State<AppState>, Body(input): Body<RegisterInput>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.register(input).await?)))
}

/// Exchange e-mail and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()), request_body = LoginInput, responses((status = 200, body = LoginOutput)))]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(input): Body<LoginInput>,
) -> ApiResult<Json<LoginOutput>> {
    Ok(Json(s.catalyst.login(input, ip).await?))
}

/// The caller and their global permissions.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Me>> {
    Ok(Json(s.catalyst.me(&who).await?))
}

/// The refresh token.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshInput {
    refresh_token: String,
}

/// Rotate a refresh token; presenting a rotated one again ends the session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", security(()), request_body = RefreshInput, responses((status = 200, body = LoginOutput)))]
async fn refresh(State(s): State<AppState>, Body(input): Body<RefreshInput>) -> ApiResult<Json<LoginOutput>> {
    Ok(Json(s.catalyst.refresh(&input.refresh_token).await?))
}

/// End the caller's session; its tokens and sockets stop working at once.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 204, description = "Logged out")))]
async fn logout(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<StatusCode> {
    s.catalyst.logout(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}
