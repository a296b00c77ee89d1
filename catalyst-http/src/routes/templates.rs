//! `/api/templates`.

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalyst_core::egg::{EggFormat, MAX_EGG_BYTES};
use catalyst_core::id::TemplateId;
use catalyst_core::model::{Paged, Template};
use catalyst_core::{Error, ErrorKind};
use catalyst_runtime::control::NewTemplate;
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(import_template))
        .routes(routes!(export_template))
}

/// Import a Pterodactyl or Pelican egg (PTDL_v1, PTDL_v2, PLCN_v1–v3; JSON or YAML) as the raw
/// body or the first file of a `multipart/form-data` upload, at most 4 MiB (`template.create`;
/// `template.update` too when a template from the same egg exists: it is updated, 200). A
/// refused egg changes nothing; the message names the field and the reason.
#[utoipa::path(post, path = "/api/templates/import", tag = "templates", request_body(content = String, content_type = "application/json", description = "The egg file (JSON or YAML), raw or as a multipart/form-data file"), responses((status = 201, body = Template, description = "Created"), (status = 200, body = Template, description = "The template from the same egg, updated")))]
async fn import_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let egg = read_egg(&headers, body).await?;
    let t = s.catalyst.import_template(&who, &egg).await?;
    // A created template is at version 0; an update moved it on.
    let status = if t.version == 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(t)))
}

/// The egg in the request, read up to [`MAX_EGG_BYTES`] (one byte more is a 413, not a wait for the rest).
async fn read_egg(headers: &HeaderMap, body: RawBody) -> Result<Vec<u8>, Error> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("multipart/form-data") {
        return read_capped(body.into_data_stream()).await;
    }
    let boundary = multer::parse_boundary(content_type).map_err(|_| Error::invalid("multipart: no boundary"))?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    while let Some(field) = form.next_field().await.map_err(|e| Error::invalid(format!("multipart: {e}")))? {
        if field.file_name().is_some() || form_is_single(&field) {
            return read_capped(field).await;
        }
    }
    Err(Error::invalid("multipart: no file field holds the egg"))
}

/// A field named `egg` or `file` counts even without a file name (curl `-F egg=<file`).
fn form_is_single(field: &multer::Field<'_>) -> bool {
    matches!(field.name(), Some("egg" | "file"))
}

async fn read_capped<E: std::fmt::Display>(
    mut chunks: impl futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| Error::invalid(format!("the request body broke off: {e}")))?;
        if out.len() + chunk.len() > MAX_EGG_BYTES {
            return Err(Error::new(ErrorKind::QuotaExceeded, format!("an egg is at most {MAX_EGG_BYTES} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `?format=` of an export.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// `ptdl_v2` (Pterodactyl, the default) or `plcn_v3` (Pelican).
    #[serde(default)]
    format: Option<String>,
}

/// Write a template as an egg file (`template.read`).
#[utoipa::path(get, path = "/api/templates/{id}/export", tag = "templates", params(("id" = TemplateId, Path), ExportQuery), responses((status = 200, content_type = "application/json", body = String, description = "The egg file")))]
async fn export_template(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TemplateId>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = EggFormat::parse(q.format.as_deref().unwrap_or("ptdl_v2"))?;
    let text = s.catalyst.export_template(&who, id, format).await?;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    let name = format!("attachment; filename=\"egg-{id}.json\"");
    if let Ok(value) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
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
