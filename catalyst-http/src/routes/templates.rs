//! `/api/templates`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use catalyst_core::id::TemplateId;
use catalyst_core::model::{Paged, Template};
use catalyst_runtime::control::NewTemplate;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/", get(list).post(create)).route("/{id}", get(one).put(update).delete(remove))
}

async fn list(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<Template>>> {
    Ok(Json(s.catalyst.list_templates(&who, q.page()).await?))
}

async fn create(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_template(&who, input).await?)))
}

async fn one(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<TemplateId>) -> ApiResult<Json<Template>> {
    Ok(Json(s.catalyst.get_template(&who, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TemplateId>,
    Body(input): Body<NewTemplate>,
) -> ApiResult<Json<Template>> {
    Ok(Json(s.catalyst.update_template(&who, id, input).await?))
}

async fn remove(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<TemplateId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_template(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
