//! The file manager: every operation authorized against the server (`file.read`,
//! `file.write`, `file.delete`), refused while it is suspended, audited when it changes
//! something, and carried to the server's node. Downloads and uploads stream in chunks with
//! at most a few in flight, so no file is ever held whole in memory.

use bytes::Bytes;
use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{FileKind, FileOp, FileReply, Server};
use catalyst_core::permission::{Grant, Permission, Principal};
use catalyst_core::ports::{FileAccess, SftpAuthority};
use catalyst_core::protocol::{NodeRequest, NodeResponse};
use catalyst_core::{Error, ErrorKind, Result};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::json;

use super::{Catalyst, Who};

/// Bytes per chunk on the node link.
pub const CHUNK: usize = 1 << 20;
/// Chunks of a download in flight at once.
const READ_AHEAD: usize = 4;

/// A file being downloaded: its size, then its bytes in order.
pub struct Download {
    /// Size in bytes (the stream yields exactly this many, or an error).
    pub size: u64,
    /// The bytes.
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UploadStatus {
    /// Bytes received so far (where a resumed upload continues).
    pub offset: u64,
    /// The file is in place (the upload is over).
    pub complete: bool,
}

fn permission_for(op: &FileOp) -> Permission {
    match op {
        FileOp::List { .. } | FileOp::Stat { .. } | FileOp::Read { .. } | FileOp::Search { .. } | FileOp::Usage => {
            Permission::FileRead
        }
        FileOp::Delete { .. } => Permission::FileDelete,
        _ => Permission::FileWrite,
    }
}

/// The audit name and details of an operation that changes files (`None` for reads).
fn audited(op: &FileOp) -> Option<(&'static str, serde_json::Value)> {
    Some(match op {
        FileOp::Write { path, .. } => ("file.write", json!({ "path": path })),
        FileOp::Create { path, directory } => ("file.create", json!({ "path": path, "directory": directory })),
        FileOp::Delete { paths } => ("file.delete", json!({ "paths": paths })),
        FileOp::Rename { from, to } => ("file.rename", json!({ "from": from, "to": to })),
        FileOp::Copy { from, to } => ("file.copy", json!({ "from": from, "to": to })),
        FileOp::Chmod { path, mode } => ("file.chmod", json!({ "path": path, "mode": format!("{mode:o}") })),
        FileOp::Compress { paths, destination, format } => {
            ("file.compress", json!({ "paths": paths, "destination": destination, "format": format }))
        }
        FileOp::Decompress { path, destination } => {
            ("file.decompress", json!({ "path": path, "destination": destination }))
        }
        _ => return None,
    })
}

/// The hidden file an upload of `path` grows in until it is complete.
fn partial_of(path: &str) -> Result<String> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::invalid("path: names no file"));
    }
    Ok(format!("{parent}/.{name}.upload"))
}

impl Catalyst {
    async fn file_target(&self, who: &Principal, id: ServerId, permission: Permission) -> Result<(Server, Grant)> {
        let (server, grant) = self.server_with(who, id, permission).await?;
        if server.suspended() {
            return Err(Error::conflict("the server is suspended"));
        }
        if matches!(server.state, ServerState::Restoring | ServerState::Transferring | ServerState::Deleting) {
            return Err(Error::conflict(format!("the server's files are locked while it is {}", server.state)));
        }
        Ok((server, grant))
    }

    async fn node_files(&self, grant: &Grant, server: &Server, op: FileOp) -> Result<FileReply> {
        match self.send(grant, server, NodeRequest::Files { server_id: server.id, op }).await? {
            NodeResponse::Files { reply } => Ok(reply),
            other => Err(Error::unexpected(format!("the node answered a file operation with {other:?}"))),
        }
    }

    /// Run one file operation in a server's directory.
    pub async fn file_op(&self, who: &Principal, id: ServerId, op: FileOp) -> Result<FileReply> {
        let (server, grant) = self.file_target(who, id, permission_for(&op)).await?;
        let audit = audited(&op);
        let outcome = self.node_files(&grant, &server, op).await;
        if let Some((action, details)) = audit {
            self.audit(Who::Grant(&grant, who), action, ("server", Some(id.to_string())), outcome.is_ok(), details)
                .await;
        }
        outcome
    }

    /// Stream a file out of a server's directory (`file.read`).
    pub async fn download(&self, who: &Principal, id: ServerId, path: &str) -> Result<Download> {
        let (server, grant) = self.file_target(who, id, Permission::FileRead).await?;
        let entry = match self.node_files(&grant, &server, FileOp::Stat { path: path.into() }).await? {
            FileReply::Entry { entry } => entry,
            other => return Err(Error::unexpected(format!("unexpected answer to stat: {other:?}"))),
        };
        if entry.kind != FileKind::File {
            return Err(Error::invalid(format!("{path} is not a file")));
        }
        self.audit(
            Who::Grant(&grant, who),
            "file.download",
            ("server", Some(id.to_string())),
            true,
            json!({ "path": path }),
        )
        .await;
        let (me, path, size) = (self.clone(), path.to_string(), entry.size);
        let chunks = futures::stream::iter((0..size).step_by(CHUNK))
            .map(move |offset| {
                let (me, grant, server, path) = (me.clone(), grant.clone(), server.clone(), path.clone());
                async move {
                    let length = (size - offset).min(CHUNK as u64) as u32;
                    match me.node_files(&grant, &server, FileOp::Read { path, offset, length }).await? {
                        FileReply::Chunk { data, .. } if data.len() == length as usize => Ok(Bytes::from(data)),
                        FileReply::Chunk { .. } => Err(Error::conflict("the file changed while it was downloaded")),
                        other => Err(Error::unexpected(format!("unexpected answer to read: {other:?}"))),
                    }
                }
            })
            .buffered(READ_AHEAD)
            .boxed();
        Ok(Download { size, chunks })
    }

    /// How much of an interrupted upload of `path` arrived (`file.write`).
    pub async fn upload_offset(&self, who: &Principal, id: ServerId, path: &str) -> Result<u64> {
        let (server, grant) = self.file_target(who, id, Permission::FileWrite).await?;
        match self.node_files(&grant, &server, FileOp::Stat { path: partial_of(path)? }).await? {
            FileReply::Entry { entry } => Ok(entry.size),
            other => Err(Error::unexpected(format!("unexpected answer to stat: {other:?}"))),
        }
    }

    /// Stream `body` into `path` (`file.write`). With `offset` 0 the upload starts over;
    /// otherwise it continues an interrupted one, whose received size must equal `offset`.
    /// When `length` is given the file is put in place once that many bytes arrived (a body that
    /// ends early leaves a resumable upload); without it, when the body ends.
    ///
    /// What becomes of the hidden partial file when the upload does not complete:
    /// - the body broke (the client went away) or ended before `length`: it stays, for a `HEAD`
    ///   and a `PATCH` to resume. It counts against the disk limit like any file (every chunk
    ///   was reserved, so it never takes more than the limit), and the node deletes a partial
    ///   nobody wrote to for 24 hours (`node::files::PARTIAL_TTL`) when it next measures the
    ///   server's directory.
    /// - anything else (the disk limit, a body longer than `Upload-Length`, a refused write, a
    ///   refused final rename): it is deleted at once, since no resume could succeed from there.
    pub async fn upload<E: std::fmt::Display>(
        &self,
        who: &Principal,
        id: ServerId,
        path: &str,
        offset: u64,
        length: Option<u64>,
        body: impl Stream<Item = std::result::Result<Bytes, E>> + Send,
    ) -> Result<UploadStatus> {
        let (server, grant) = self.file_target(who, id, Permission::FileWrite).await?;
        let partial = partial_of(path)?;
        if offset > 0 {
            let have = match self.node_files(&grant, &server, FileOp::Stat { path: partial.clone() }).await? {
                FileReply::Entry { entry } => entry.size,
                _ => 0,
            };
            if have != offset {
                return Err(Error::conflict(format!("the upload has {have} bytes, not {offset}")));
            }
        } else if let Ok(FileReply::Entry { entry }) =
            self.node_files(&grant, &server, FileOp::Stat { path: path.into() }).await
            && entry.kind == FileKind::Directory
        {
            // Refused before the bytes travel, rather than at the final rename.
            return Err(Error::conflict(format!("{path} is a directory: an upload cannot replace it")));
        }
        let mut at = offset;
        let received = self.receive(&grant, &server, &partial, &mut at, length, body).await;
        let (broken, complete) = match received {
            Ok((broken, complete)) if complete => {
                match self.node_files(&grant, &server, FileOp::Rename { from: partial.clone(), to: path.into() }).await
                {
                    Ok(_) => (broken, true),
                    Err(e) => {
                        self.drop_partial(&grant, &server, &partial).await;
                        return Err(e);
                    }
                }
            }
            Ok(received) => received,
            Err(e) => {
                self.drop_partial(&grant, &server, &partial).await;
                return Err(e);
            }
        };
        self.audit(
            Who::Grant(&grant, who),
            "file.upload",
            ("server", Some(id.to_string())),
            complete,
            json!({ "path": path, "bytes": at - offset, "offset": at }),
        )
        .await;
        match broken {
            Some(e) => Err(Error::unavailable(format!("the upload was interrupted at {at} bytes: {e}"))),
            None => Ok(UploadStatus { offset: at, complete }),
        }
    }

    /// Write `body` into `partial` from `*at` in chunks. Returns why the body broke (if it did)
    /// and whether the upload is complete; an error when a write was refused.
    async fn receive<E: std::fmt::Display>(
        &self,
        grant: &Grant,
        server: &Server,
        partial: &str,
        at: &mut u64,
        length: Option<u64>,
        body: impl Stream<Item = std::result::Result<Bytes, E>> + Send,
    ) -> Result<(Option<String>, bool)> {
        let mut buffer = Vec::with_capacity(CHUNK);
        let mut body = std::pin::pin!(body);
        let flush = async |buffer: &mut Vec<u8>, at: &mut u64| -> Result<()> {
            if buffer.is_empty() && *at > 0 {
                return Ok(());
            }
            let data = std::mem::replace(buffer, Vec::with_capacity(CHUNK));
            let len = data.len() as u64;
            let op = FileOp::Write { path: partial.to_string(), offset: *at, data, truncate: *at == 0 };
            self.node_files(grant, server, op).await?;
            *at += len;
            Ok(())
        };
        let mut broken = None;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(bytes) => {
                    if length.is_some_and(|l| *at + (buffer.len() + bytes.len()) as u64 > l) {
                        return Err(Error::invalid("the body is longer than Upload-Length"));
                    }
                    buffer.extend_from_slice(&bytes);
                    if buffer.len() >= CHUNK {
                        flush(&mut buffer, at).await?;
                    }
                }
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        flush(&mut buffer, at).await?;
        let complete = broken.is_none() && length.is_none_or(|l| *at == l);
        Ok((broken, complete))
    }

    /// Delete the partial file of an upload that failed (best effort: it is hidden, and expires).
    async fn drop_partial(&self, grant: &Grant, server: &Server, partial: &str) {
        let op = FileOp::Delete { paths: vec![partial.to_string()] };
        if let Err(e) = self.node_files(grant, server, op).await
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(server = %server.id, partial, error = %e, "the partial file of a failed upload stays");
        }
    }
}

impl Catalyst {
    /// What `who` may do with a server's files (needs only to see the server; refused while it
    /// is suspended).
    pub async fn file_permissions(&self, who: &Principal, id: ServerId) -> Result<FileAccess> {
        let (server, authz) = self.load_server(who, id).await?;
        let may =
            |p| catalyst_core::permission::authorize(who, p, catalyst_core::permission::Scope::Server(&authz)).is_ok();
        if !may(Permission::ServerRead) && !may(Permission::FileRead) {
            return Err(Error::not_found("server"));
        }
        if server.suspended() {
            return Err(Error::conflict("the server is suspended"));
        }
        if server.state == ServerState::Deleting {
            return Err(Error::conflict("the server is being deleted"));
        }
        Ok(FileAccess {
            user_id: who.user_id(),
            read: may(Permission::FileRead),
            write: may(Permission::FileWrite),
            delete: may(Permission::FileDelete),
        })
    }

    /// Audit a change a node reports (SFTP), as the user behind the credential.
    pub(super) async fn record_file_activity(
        &self,
        node: catalyst_core::id::NodeId,
        server_id: ServerId,
        user_id: Option<catalyst_core::id::UserId>,
        action: &str,
        path: &str,
        bytes: u64,
    ) {
        use catalyst_core::model::{ActorRef, AuditLog};
        let entry = AuditLog {
            id: catalyst_core::id::AuditId::new(),
            actor: user_id.map_or(ActorRef::Node(node), ActorRef::User),
            user_id,
            action: action.to_string(),
            target_type: "server".into(),
            target_id: Some(server_id.to_string()),
            success: true,
            details: json!({ "path": path, "bytes": bytes, "via": "sftp", "node_id": node }),
            ip: None,
            at: self.now(),
        };
        if let Err(e) = self.inner.store.append_audit(&entry).await {
            tracing::error!(action, error = %e, "audit entry could not be written");
        }
    }
}

#[async_trait::async_trait]
impl SftpAuthority for Catalyst {
    async fn file_access(&self, server: ServerId, credential: &str) -> Result<FileAccess> {
        let who = self.authenticate(credential, None).await?;
        self.file_permissions(&who, server).await
    }
}
