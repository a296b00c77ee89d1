//! `/api/templates`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::TemplateId;
use catalyst_core::model::{Paged, Template};
use catalyst_runtime::control::NewTemplate;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_templates, create_template)).routes(routes!(
        get_template,
        update_template,
        delete_template
    ))
}

/// Every template (`template.read`).
#[utoipa::path(get, path = "/api/templates", tag = "templates", params(PageQuery), responses((status = 200, body = Paged<Template>)))]
async fn list_templates(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<Template>>> {
    Ok(Json(s.catalyst.list_templates(&who, q.page()).await?))
}

/// Create a template (`template.create`).
#[utoipa::path(post, path = "/api/templates", tag = "templates", request_body = NewTemplate, responses((status = 201, body = Template)))]
async fn create_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_template(&who, input).await?)))
}

/// One template (`template.read`).
#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates", params(("id" = TemplateId, Path)), responses((status = 200, body = Template)))]
async fn get_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TemplateId>,
) -> ApiResult<Json<Template>> {
    Ok(Json(s.catalyst.get_template(&who, id).await?))
}

/// Replace a template (`template.update`).
#[utoipa::path(put, path = "/api/templates/{id}", tag = "templates", params(("id" = TemplateId, Path)), request_body = NewTemplate, responses((status = 200, body = Template)))]
async fn update_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TemplateId>,
    Body(input): Body<NewTemplate>,
) -> ApiResult<Json<Template>> {
    Ok(Json(s.catalyst.update_template(&who, id, input).await?))
}

/// Delete a template no server uses (`template.delete`).
#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates", params(("id" = TemplateId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TemplateId>,
) -> ApiResult<StatusCode> {
    s.catalyst.delete_template(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
