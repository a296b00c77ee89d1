//! `/api/servers/{id}/files…`: the file manager. Downloads and uploads stream; uploads resume
//! the way the tus protocol does (`HEAD` tells the offset, `PATCH` continues from it).

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalyst_core::Error;
use catalyst_core::id::ServerId;
use catalyst_core::model::{ArchiveFormat, FileEntry, FileOp, FileReply};
use catalyst_core::ports::FileAccess;
use catalyst_runtime::control::UploadStatus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files, delete_file))
        .routes(routes!(download_file))
        .routes(routes!(upload_file, upload_offset, resume_upload))
        .routes(routes!(create_file))
        .routes(routes!(rename_file))
        .routes(routes!(copy_file))
        .routes(routes!(chmod_file))
        .routes(routes!(compress_files))
        .routes(routes!(decompress_file))
        .routes(routes!(search_files))
        .routes(routes!(file_access))
}

/// What the caller may do with the server's files (agents check SFTP logins with it).
#[utoipa::path(get, path = "/api/servers/{id}/files/access", tag = "files", params(("id" = ServerId, Path)), responses((status = 200, body = FileAccess)))]
async fn file_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<FileAccess>> {
    Ok(Json(s.catalyst.file_permissions(&who, id).await?))
}

/// `?path=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PathQuery {
    /// A path in the server's directory (`/` is its root).
    #[serde(default = "root")]
    path: String,
}

fn root() -> String {
    "/".into()
}

fn unexpected(reply: FileReply) -> ApiError {
    Error::unexpected(format!("unexpected answer from the node: {reply:?}")).into()
}

fn entry(reply: FileReply) -> ApiResult<Json<FileEntry>> {
    match reply {
        FileReply::Entry { entry } => Ok(Json(entry)),
        other => Err(unexpected(other)),
    }
}

/// `?path=&offset=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The directory (`/` is the server's root).
    #[serde(default = "root")]
    path: String,
    /// Entries to skip (pages of 2000, by name).
    #[serde(default)]
    offset: u64,
}

/// Entries of a directory, by name, 2000 at a time (`file.read`).
#[utoipa::path(get, path = "/api/servers/{id}/files", tag = "files", params(("id" = ServerId, Path), ListQuery), responses((status = 200, body = Vec<FileEntry>)))]
async fn list_files(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<FileEntry>>> {
    match s.catalyst.file_op(&who, id, FileOp::List { path: q.path, offset: q.offset }).await? {
        FileReply::Entries { entries } => Ok(Json(entries)),
        other => Err(unexpected(other)),
    }
}

/// Delete a file, a link or a directory with its contents (`file.delete`).
#[utoipa::path(delete, path = "/api/servers/{id}/files", tag = "files", params(("id" = ServerId, Path), PathQuery), responses((status = 204, description = "Deleted")))]
async fn delete_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<PathQuery>,
) -> ApiResult<StatusCode> {
    s.catalyst.file_op(&who, id, FileOp::Delete { paths: vec![q.path] }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stream a file (`file.read`).
#[utoipa::path(get, path = "/api/servers/{id}/files/download", tag = "files", params(("id" = ServerId, Path), PathQuery), responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream")))]
async fn download_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<PathQuery>,
) -> ApiResult<Response> {
    let download = s.catalyst.download(&who, id, &q.path).await?;
    let name = q.path.rsplit('/').next().unwrap_or("download").replace(['"', '\\', '\r', '\n'], "_");
    let mut response = RawBody::from_stream(download.chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn number_header(headers: &HeaderMap, name: &str) -> ApiResult<Option<u64>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("{name}: not a number")).into()),
    }
}

fn upload_response(status: UploadStatus) -> Response {
    let code = if status.complete { StatusCode::CREATED } else { StatusCode::ACCEPTED };
    let mut response = (code, Json(&status)).into_response();
    response.headers_mut().insert("upload-offset", HeaderValue::from(status.offset));
    response.headers_mut().insert("tus-resumable", HeaderValue::from_static("1.0.0"));
    response
}

/// Upload a file: the raw body streams into place (`file.write`). With an `Upload-Length`
/// header the file is put in place only once that many bytes arrived; a body cut short
/// leaves an upload that `PATCH` resumes. A `multipart/form-data` body (browsers) puts each
/// file field into the directory `path` under its file name, streamed the same way.
#[utoipa::path(post, path = "/api/servers/{id}/files/upload", tag = "files", params(("id" = ServerId, Path), PathQuery, ("upload-length" = Option<u64>, Header, description = "The file's full size")), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 201, body = UploadStatus, description = "In place"), (status = 202, body = UploadStatus, description = "Partly received")))]
async fn upload_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type).map_err(|_| Error::invalid("multipart: no boundary"))?;
        let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut last = None;
        while let Some(field) = form.next_field().await.map_err(|e| Error::invalid(format!("multipart: {e}")))? {
            let Some(name) = field.file_name().map(str::to_string) else { continue };
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                return Err(Error::invalid(format!("multipart: {name:?} is not a file name")).into());
            }
            let target = format!("{}/{name}", q.path.trim_end_matches('/'));
            last = Some(s.catalyst.upload(&who, id, &target, 0, None, field).await?);
        }
        return last.map(upload_response).ok_or_else(|| Error::invalid("multipart: no file field").into());
    }
    let length = number_header(&headers, "upload-length")?;
    let status = s.catalyst.upload(&who, id, &q.path, 0, length, body.into_data_stream()).await?;
    Ok(upload_response(status))
}

/// How much of an interrupted upload arrived, as `Upload-Offset` (`file.write`).
#[utoipa::path(head, path = "/api/servers/{id}/files/upload", tag = "files", params(("id" = ServerId, Path), PathQuery), responses((status = 204, description = "`Upload-Offset` holds the bytes received")))]
async fn upload_offset(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<PathQuery>,
) -> ApiResult<Response> {
    let offset = s.catalyst.upload_offset(&who, id, &q.path).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert("upload-offset", HeaderValue::from(offset));
    response.headers_mut().insert("tus-resumable", HeaderValue::from_static("1.0.0"));
    Ok(response)
}

/// Continue an interrupted upload from `Upload-Offset` up to `Upload-Length` (`file.write`).
#[utoipa::path(patch, path = "/api/servers/{id}/files/upload", tag = "files", params(("id" = ServerId, Path), PathQuery, ("upload-offset" = u64, Header, description = "Bytes already received"), ("upload-length" = u64, Header, description = "The file's full size")), request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"), responses((status = 201, body = UploadStatus, description = "In place"), (status = 202, body = UploadStatus, description = "Partly received")))]
async fn resume_upload(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<Response> {
    let offset = number_header(&headers, "upload-offset")?.ok_or_else(|| Error::invalid("Upload-Offset: required"))?;
    let length = number_header(&headers, "upload-length")?.ok_or_else(|| Error::invalid("Upload-Length: required"))?;
    let status = s.catalyst.upload(&who, id, &q.path, offset, Some(length), body.into_data_stream()).await?;
    Ok(upload_response(status))
}

/// A file or directory to create.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateInput {
    /// Path to create, from the server root; a file must not exist yet, an existing directory is kept.
    path: String,
    /// A directory (with its parents) rather than an empty file.
    #[serde(default)]
    directory: bool,
}

/// Create an empty file or a directory (`file.write`).
#[utoipa::path(post, path = "/api/servers/{id}/files/create", tag = "files", params(("id" = ServerId, Path)), request_body = CreateInput, responses((status = 201, body = FileEntry)))]
async fn create_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<CreateInput>,
) -> ApiResult<(StatusCode, Json<FileEntry>)> {
    let reply = s.catalyst.file_op(&who, id, FileOp::Create { path: input.path, directory: input.directory }).await?;
    Ok((StatusCode::CREATED, entry(reply)?))
}

/// A source and a destination.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveInput {
    /// Existing file or directory, from the server root.
    from: String,
    /// Destination path, from the server root; for a copy it must not exist.
    to: String,
}

/// Move or rename (`file.write`).
#[utoipa::path(post, path = "/api/servers/{id}/files/rename", tag = "files", params(("id" = ServerId, Path)), request_body = MoveInput, responses((status = 204, description = "Moved")))]
async fn rename_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<MoveInput>,
) -> ApiResult<StatusCode> {
    s.catalyst.file_op(&who, id, FileOp::Rename { from: input.from, to: input.to }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Copy a file or a directory tree (`file.write`; counted against the disk limit).
#[utoipa::path(post, path = "/api/servers/{id}/files/copy", tag = "files", params(("id" = ServerId, Path)), request_body = MoveInput, responses((status = 201, body = FileEntry)))]
async fn copy_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<MoveInput>,
) -> ApiResult<(StatusCode, Json<FileEntry>)> {
    let reply = s.catalyst.file_op(&who, id, FileOp::Copy { from: input.from, to: input.to }).await?;
    Ok((StatusCode::CREATED, entry(reply)?))
}

/// Permission bits to set.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChmodInput {
    /// File or directory, from the server root.
    path: String,
    /// Octal mode as a string (`"644"`); setuid, setgid and sticky bits are dropped.
    mode: String,
}

/// Change permission bits (`file.write`).
#[utoipa::path(post, path = "/api/servers/{id}/files/chmod", tag = "files", params(("id" = ServerId, Path)), request_body = ChmodInput, responses((status = 204, description = "Changed")))]
async fn chmod_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<ChmodInput>,
) -> ApiResult<StatusCode> {
    let mode = u32::from_str_radix(input.mode.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::invalid("mode: an octal mode such as 644"))?;
    s.catalyst.file_op(&who, id, FileOp::Chmod { path: input.path, mode }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Entries to pack.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CompressInput {
    /// Paths to pack.
    paths: Vec<String>,
    /// The archive to write; its extension picks the format unless `format` is given.
    destination: String,
    /// Format (default: from the destination's name, else tar.gz).
    #[serde(default)]
    format: Option<ArchiveFormat>,
}

/// Pack files into an archive (`file.write`; counted against the disk limit).
#[utoipa::path(post, path = "/api/servers/{id}/files/compress", tag = "files", params(("id" = ServerId, Path)), request_body = CompressInput, responses((status = 201, body = FileEntry)))]
async fn compress_files(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<CompressInput>,
) -> ApiResult<(StatusCode, Json<FileEntry>)> {
    let format = input.format.or(ArchiveFormat::from_name(&input.destination)).unwrap_or(ArchiveFormat::TarGz);
    let op = FileOp::Compress { paths: input.paths, destination: input.destination, format };
    Ok((StatusCode::CREATED, entry(s.catalyst.file_op(&who, id, op).await?)?))
}

/// An archive to unpack.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecompressInput {
    /// The archive (.tar, .tar.gz, .tgz, .tar.zst, .zip).
    path: String,
    /// Directory to unpack into (default: the root).
    #[serde(default = "root")]
    destination: String,
}

/// What an unpack wrote.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Extracted {
    /// Files and directories written.
    entries: u64,
    /// Bytes written.
    bytes: u64,
    /// Links, devices and other entries left out.
    skipped: u64,
}

/// Unpack an archive safely: no entry lands outside the destination, links and devices are
/// skipped, setuid bits dropped, and the disk limit stops it (`file.write`).
#[utoipa::path(post, path = "/api/servers/{id}/files/decompress", tag = "files", params(("id" = ServerId, Path)), request_body = DecompressInput, responses((status = 200, body = Extracted)))]
async fn decompress_file(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<DecompressInput>,
) -> ApiResult<Json<Extracted>> {
    let op = FileOp::Decompress { path: input.path, destination: input.destination };
    match s.catalyst.file_op(&who, id, op).await? {
        FileReply::Extracted { entries, bytes, skipped } => Ok(Json(Extracted { entries, bytes, skipped })),
        other => Err(unexpected(other)),
    }
}

/// `?query=&path=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Part of a name (case-insensitive).
    #[serde(default)]
    query: String,
    /// Where to look (default: everywhere).
    #[serde(default = "root")]
    path: String,
}

/// Entries whose name contains the query, as paths from the root (`file.read`; at most 500).
#[utoipa::path(get, path = "/api/servers/{id}/files/search", tag = "files", params(("id" = ServerId, Path), SearchQuery), responses((status = 200, body = Vec<FileEntry>)))]
async fn search_files(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Vec<FileEntry>>> {
    match s.catalyst.file_op(&who, id, FileOp::Search { path: q.path, query: q.query }).await? {
        FileReply::Entries { entries } => Ok(Json(entries)),
        other => Err(unexpected(other)),
    }
}
