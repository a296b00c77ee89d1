//! `/api/client/servers/{server}/files/*`: list, contents, write, rename, delete, compress,
//! decompress and create-folder, over the facade's file operations (the node's sandbox keeps
//! every path inside the server).

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use catalyst_core::Error;
use catalyst_core::model::{ArchiveFormat, FileEntry, FileKind, FileOp, FileReply};
use serde_json::{Value, json};

use super::Target;
use crate::AppState;
use crate::pterodactyl::{Input, PResult, Params, item, no_content, time};

crate::pterodactyl::routes! {
    get "/api/client/servers/{server}/files/list" => list, 200, "A directory (`?directory=`)";
    get "/api/client/servers/{server}/files/contents" => contents, 200, "A file's bytes (`?file=`)";
    post "/api/client/servers/{server}/files/write" => write, 204, "Replace a file with the raw body (`?file=`)";
    put "/api/client/servers/{server}/files/rename" => rename, 204, "Rename `{root, files: [{from, to}]}`";
    post "/api/client/servers/{server}/files/delete" => delete, 204, "Delete `{root, files}`";
    post "/api/client/servers/{server}/files/compress" => compress, 200, "Pack `{root, files}` into a .tar.gz in root";
    post "/api/client/servers/{server}/files/decompress" => decompress, 204, "Unpack `{root, file}` into root";
    post "/api/client/servers/{server}/files/create-folder" => create_folder, 204, "Create `{root, name}`";
}

/// `root` joined with a name given relative to it.
fn join(root: &str, name: &str) -> String {
    format!("{}/{}", root.trim_end_matches('/'), name.trim_start_matches('/'))
}

/// A `file_object`.
fn file_view(e: &FileEntry) -> Value {
    let is_file = e.kind == FileKind::File;
    let kind = match e.kind {
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        _ => '-',
    };
    let bits = |shift: u32| {
        let m = (e.mode >> shift) & 7;
        format!(
            "{}{}{}",
            if m & 4 != 0 { 'r' } else { '-' },
            if m & 2 != 0 { 'w' } else { '-' },
            if m & 1 != 0 { 'x' } else { '-' }
        )
    };
    let modified = chrono::DateTime::from_timestamp(e.modified, 0).map(time);
    let mimetype = match e.kind {
        FileKind::Directory => "inode/directory",
        FileKind::Symlink => "inode/symlink",
        _ => "application/octet-stream",
    };
    item(
        "file_object",
        json!({"name": e.name, "mode": format!("{kind}{}{}{}", bits(6), bits(3), bits(0)),
               "mode_bits": format!("{:o}", e.mode & 0o777), "size": e.size, "is_file": is_file,
               "is_symlink": e.kind == FileKind::Symlink, "mimetype": mimetype,
               "created_at": modified, "modified_at": modified}),
    )
}

#[derive(serde::Deserialize)]
struct DirectoryQuery {
    #[serde(default)]
    directory: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Params(q): Params<DirectoryQuery>,
) -> PResult<Json<Value>> {
    let path = q.directory.unwrap_or_else(|| "/".into());
    match s.catalyst.file_op(&who, server.id, FileOp::List { path, offset: 0 }).await? {
        FileReply::Entries { entries } => {
            Ok(Json(json!({"object": "list", "data": entries.iter().map(file_view).collect::<Vec<_>>()})))
        }
        other => Err(Error::unexpected(format!("the node answered a listing with {other:?}")).into()),
    }
}

#[derive(serde::Deserialize)]
struct FileQuery {
    file: String,
}

/// The file's bytes, as Pterodactyl sends them (`text/plain`).
async fn contents(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Params(q): Params<FileQuery>,
) -> PResult<Response> {
    let download = s.catalyst.download(&who, server.id, &q.file).await?;
    let mut response = RawBody::from_stream(download.chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    Ok(response)
}

/// The raw body replaces the file (pydactyl sends `Content-Type: application/text`).
async fn write(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Params(q): Params<FileQuery>,
    body: RawBody,
) -> PResult<Response> {
    s.catalyst.upload(&who, server.id, &q.file, 0, None, body.into_data_stream()).await?;
    Ok(no_content())
}

#[derive(serde::Deserialize)]
struct Move {
    from: String,
    to: String,
}

#[derive(serde::Deserialize)]
struct RenameInput {
    #[serde(default)]
    root: String,
    files: Vec<Move>,
}

async fn rename(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<RenameInput>,
) -> PResult<Response> {
    for m in input.files {
        let op = FileOp::Rename { from: join(&input.root, &m.from), to: join(&input.root, &m.to) };
        s.catalyst.file_op(&who, server.id, op).await?;
    }
    Ok(no_content())
}

#[derive(serde::Deserialize)]
struct FilesInput {
    #[serde(default)]
    root: String,
    files: Vec<String>,
}

async fn delete(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<FilesInput>,
) -> PResult<Response> {
    let paths = input.files.iter().map(|f| join(&input.root, f)).collect();
    s.catalyst.file_op(&who, server.id, FileOp::Delete { paths }).await?;
    Ok(no_content())
}

/// A `.tar.gz` named like Wings names it, in `root`; answers its `file_object`.
async fn compress(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<FilesInput>,
) -> PResult<Json<Value>> {
    let name = format!("archive-{}.tar.gz", chrono::Utc::now().format("%Y-%m-%d-%H%M%S"));
    let op = FileOp::Compress {
        paths: input.files.iter().map(|f| join(&input.root, f)).collect(),
        destination: join(&input.root, &name),
        format: ArchiveFormat::TarGz,
    };
    match s.catalyst.file_op(&who, server.id, op).await? {
        FileReply::Entry { entry } => Ok(Json(file_view(&entry))),
        other => Err(Error::unexpected(format!("the node answered compress with {other:?}")).into()),
    }
}

#[derive(serde::Deserialize)]
struct DecompressInput {
    #[serde(default)]
    root: String,
    file: String,
}

/// Unpacks into `root`.
async fn decompress(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<DecompressInput>,
) -> PResult<Response> {
    let root = if input.root.is_empty() { "/".to_string() } else { input.root.clone() };
    let op = FileOp::Decompress { path: join(&input.root, &input.file), destination: root };
    s.catalyst.file_op(&who, server.id, op).await?;
    Ok(no_content())
}

#[derive(serde::Deserialize)]
struct FolderInput {
    #[serde(default)]
    root: String,
    name: String,
}

async fn create_folder(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<FolderInput>,
) -> PResult<Response> {
    let op = FileOp::Create { path: join(&input.root, &input.name), directory: true };
    s.catalyst.file_op(&who, server.id, op).await?;
    Ok(no_content())
}
