//! Transfers node → node, driven by the control plane: check the target, stop the server,
//! lock it on the source, archive it there, relay the archive (and the server's node-local
//! backups) to the target in verified chunks, restore it on the target, switch the server's
//! node, and only then delete it on the source. Any failure before the switch rolls back: the
//! source is unlocked and the server started again if it was running; whatever reached the
//! target is deleted. Each step goes to the server's log and out as a `transfer_progress`
//! event.

use std::time::Duration;

use catalyst_core::events::{DomainEvent, TransferPhase};
use catalyst_core::id::{BackupId, NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{BackupStatus, BackupStorage, FileReply, LogStream, Server, ServerLog};
use catalyst_core::permission::{Grant, Permission, Principal, Scope, authorize};
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse, StoredArchive, WireError};
use catalyst_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use serde_json::json;

use super::spec::spec_for;
use super::{Catalyst, Who};

/// Node-local storage directory of transfer archives.
const TRANSFERS: &str = "transfers";
/// Bytes relayed per request.
const RELAY_CHUNK: u32 = 1 << 20;
/// Longest an archive or a restore may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(3600);

/// What reached the target, for the rollback.
#[derive(Default)]
struct Moved {
    configured: bool,
    archives: Vec<(String, BackupId)>,
}

impl Catalyst {
    /// Move a server to another node (`server.transfer`); it runs in the background.
    pub async fn transfer_server(&self, who: &Principal, id: ServerId, target: NodeId) -> Result<Server> {
        let (server, grant) = self.server_with(who, id, Permission::ServerTransfer).await?;
        if server.node_id == target {
            return Err(Error::invalid("node_id: the server is already on that node"));
        }
        self.inner.store.get_node(target).await?;
        if !self.inner.link.is_online(target) {
            return Err(Error::unavailable("the target node is offline"));
        }
        if !matches!(
            server.state,
            ServerState::Stopped | ServerState::Crashed | ServerState::Running | ServerState::Starting
        ) {
            return Err(Error::new(
                ErrorKind::InvalidTransition,
                format!("cannot transfer a server that is {}", server.state),
            ));
        }
        self.check_capacity(target, server.limits.memory_mb, server.limits.disk_mb).await?;
        self.audit(
            Who::Grant(&grant, who),
            "server.transfer",
            ("server", Some(id.to_string())),
            true,
            json!({ "from": server.node_id, "to": target }),
        )
        .await;
        if !self.inner.transfers.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return Err(Error::conflict("the server is already being transferred"));
        }
        let me = self.clone();
        let moving = server.clone();
        self.background().spawn(async move {
            me.run_transfer(moving, target).await;
            me.inner.transfers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
        Ok(server)
    }

    /// A node reports a server locked for a transfer that no longer runs (the control plane
    /// restarted midway): unlock it on that node, which still owns it.
    pub(super) fn abandoned_transfer(&self, node: NodeId, id: ServerId) {
        if self.inner.transfers.lock().unwrap_or_else(|p| p.into_inner()).contains(&id) {
            return;
        }
        let me = self.clone();
        self.background().spawn(async move {
            me.transfer_note(id, TransferPhase::Failed, "an interrupted transfer was rolled back".into()).await;
            if let Err(e) = me.inner.link.request(node, NodeRequest::EndTransfer { server_id: id }).await {
                tracing::warn!(%id, error = %e, "could not unlock an interrupted transfer");
            }
        });
    }

    async fn run_transfer(&self, server: Server, target: NodeId) {
        let (id, source) = (server.id, server.node_id);
        let was_running = matches!(server.state, ServerState::Running | ServerState::Starting);
        let mut moved = Moved::default();
        self.transfer_note(id, TransferPhase::Started, format!("transfer from node {source} to node {target} started"))
            .await;
        match self.transfer_steps(&server, target, &mut moved).await {
            Ok(()) => {
                self.transfer_note(
                    id,
                    TransferPhase::Completed,
                    format!("transfer complete: the server is on node {target}"),
                )
                .await;
                if was_running && let Ok(s) = self.inner.store.get_server(id).await {
                    let _ = self.send(&system_grant(), &s, NodeRequest::Start { server_id: id }).await;
                }
            }
            Err(e) => {
                let reason = e.message().to_string();
                self.transfer_note(id, TransferPhase::Failed, format!("transfer failed ({reason}); rolling back"))
                    .await;
                self.roll_back(&server, target, moved).await;
                if was_running {
                    let _ = self.send(&system_grant(), &server, NodeRequest::Start { server_id: id }).await;
                }
            }
        }
    }

    async fn transfer_steps(&self, server: &Server, target: NodeId, moved: &mut Moved) -> Result<()> {
        let (id, source) = (server.id, server.node_id);
        let link = &self.inner.link;
        let grant = system_grant();
        self.stopped(&grant, server.clone()).await?;
        link.request(source, NodeRequest::BeginTransfer { server_id: id }).await?;

        self.transfer_note(id, TransferPhase::Archiving, "archiving the server's files on the source".into()).await;
        let archive = BackupId::new();
        let storage = BackupStorage::Local { directory: TRANSFERS.into() };
        let request = NodeRequest::Backup { server_id: id, backup_id: archive, storage };
        let stored = self
            .request_then(source, request, "archiving", |event| match event {
                NodeEvent::BackupDone { backup_id, result, .. } if backup_id == archive => Some(result),
                _ => None,
            })
            .await?;

        self.transfer_note(id, TransferPhase::Copying, format!("copying {} bytes to the target", stored.size_bytes))
            .await;
        moved.archives.push((TRANSFERS.into(), archive));
        self.relay(id, source, target, TRANSFERS, archive, &stored).await?;
        // Backups kept on the source node travel too (shared storage needs no copy).
        if let BackupStorage::Local { directory } = &self.inner.backup_storage {
            for b in self.all_backups(id).await? {
                if b.status != BackupStatus::Completed || b.node_id != source {
                    continue;
                }
                let Some(checksum) = b.checksum.clone() else { continue };
                moved.archives.push((directory.clone(), b.id));
                let stored = StoredArchive { size_bytes: b.size_bytes, checksum };
                self.relay(id, source, target, directory, b.id, &stored).await?;
            }
        }

        self.transfer_note(id, TransferPhase::Restoring, "restoring the files on the target".into()).await;
        let template = self.inner.store.get_template(server.template_id).await?;
        moved.configured = true;
        let spec = spec_for(server, &template, &self.location_name(target).await?)?;
        link.request(target, NodeRequest::Configure { spec: Box::new(spec) }).await?;
        let storage = BackupStorage::Local { directory: TRANSFERS.into() };
        let restore = NodeRequest::Restore { server_id: id, backup_id: archive, storage, checksum: stored.checksum };
        self.request_then(target, restore, "restoring", |event| match event {
            NodeEvent::RestoreDone { backup_id, result, .. } if backup_id == archive => Some(result),
            _ => None,
        })
        .await?;

        // The switch: from here on the target owns the server, and nothing rolls back.
        self.transfer_note(id, TransferPhase::Switching, format!("switching the server to node {target}")).await;
        self.modify_server(id, |s| {
            s.node_id = target;
            s.state = ServerState::Stopped;
            true
        })
        .await?;
        self.after_switch(id, source, target, archive, &moved.archives).await;
        Ok(())
    }

    /// Best-effort follow-up once the target owns the server: its backups follow it (relayed
    /// ones now live there; shared storage is reachable from any node), then the source's copy
    /// and the transfer archives are deleted. Failures leave garbage, never damage.
    async fn after_switch(
        &self,
        id: ServerId,
        source: NodeId,
        target: NodeId,
        archive: BackupId,
        relayed: &[(String, BackupId)],
    ) {
        let link = &self.inner.link;
        match self.all_backups(id).await {
            Ok(backups) => {
                for b in backups.into_iter().filter(|b| b.node_id == source) {
                    let moved = self.modify_backup(b.id, |b| {
                        let from_source = b.node_id == source;
                        b.node_id = target;
                        from_source
                    });
                    match moved.await {
                        Ok(_) => {}
                        // Deleted meanwhile: nothing left to move.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(%id, backup = %b.id, error = %e, "a backup's node was not updated after a transfer")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(%id, error = %e, "backups not updated after a transfer"),
        }
        let _ = link.request(source, NodeRequest::EndTransfer { server_id: id }).await;
        let _ = link.request(source, NodeRequest::Delete { server_id: id }).await;
        for (directory, archive_id) in relayed {
            let storage = BackupStorage::Local { directory: directory.clone() };
            let _ = link
                .request(source, NodeRequest::DeleteBackup { server_id: id, backup_id: *archive_id, storage })
                .await;
        }
        let storage = BackupStorage::Local { directory: TRANSFERS.into() };
        let _ = link.request(target, NodeRequest::DeleteBackup { server_id: id, backup_id: archive, storage }).await;
    }

    /// Send `request` to `node`, then wait for the outcome `pick` finds among that node's events.
    async fn request_then<T>(
        &self,
        node: NodeId,
        request: NodeRequest,
        what: &str,
        mut pick: impl FnMut(NodeEvent) -> Option<std::result::Result<T, WireError>>,
    ) -> Result<T> {
        let link = &self.inner.link;
        // Subscribed before the request goes out, so a quick outcome is not missed.
        let mut events = link.subscribe();
        link.request(node, request).await?;
        tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some((from, event)) = events.next().await {
                if from == node
                    && let Some(outcome) = pick(event)
                {
                    return outcome.map_err(Error::from);
                }
            }
            Err(Error::unavailable("the node link closed"))
        })
        .await
        .map_err(|_| Error::timeout(format!("{what} took too long")))?
    }

    /// Copy one archive of node-local storage from `source` to `target`, verified on arrival.
    async fn relay(
        &self,
        id: ServerId,
        source: NodeId,
        target: NodeId,
        directory: &str,
        archive_id: BackupId,
        stored: &StoredArchive,
    ) -> Result<()> {
        let link = &self.inner.link;
        let mut offset = 0u64;
        let mut last_note = 0u64;
        loop {
            let read = NodeRequest::ReadArchive {
                server_id: id,
                directory: directory.into(),
                archive_id,
                offset,
                length: RELAY_CHUNK,
            };
            let data = match link.request(source, read).await? {
                NodeResponse::Files { reply: FileReply::Chunk { data, .. } } => data,
                other => {
                    return Err(Error::unexpected(format!("unexpected answer to a read: {other:?}")));
                }
            };
            let len = data.len() as u64;
            if len == 0 && offset > 0 {
                break;
            }
            let write =
                NodeRequest::WriteArchive { server_id: id, directory: directory.into(), archive_id, offset, data };
            link.request(target, write).await?;
            offset += len;
            if offset - last_note >= 64 << 20 {
                last_note = offset;
                self.publish(DomainEvent::TransferProgress {
                    server_id: id,
                    phase: TransferPhase::Copying,
                    bytes: offset,
                    total: stored.size_bytes,
                    message: None,
                });
            }
            if len == 0 || offset >= stored.size_bytes {
                break;
            }
        }
        let commit = NodeRequest::CommitArchive {
            server_id: id,
            directory: directory.into(),
            archive_id,
            checksum: stored.checksum.clone(),
        };
        link.request(target, commit).await.map(|_| ())
    }

    /// Undo what a failed transfer did: the target forgets the server, the source is unlocked.
    async fn roll_back(&self, server: &Server, target: NodeId, moved: Moved) {
        let (id, source) = (server.id, server.node_id);
        let link = &self.inner.link;
        if moved.configured {
            let _ = link.request(target, NodeRequest::Delete { server_id: id }).await;
        }
        for (directory, archive_id) in &moved.archives {
            let storage = BackupStorage::Local { directory: directory.clone() };
            let _ = link
                .request(target, NodeRequest::DeleteBackup { server_id: id, backup_id: *archive_id, storage })
                .await;
        }
        if let Some((_, archive)) = moved.archives.first() {
            let storage = BackupStorage::Local { directory: TRANSFERS.into() };
            let _ =
                link.request(source, NodeRequest::DeleteBackup { server_id: id, backup_id: *archive, storage }).await;
        }
        match link.request(source, NodeRequest::EndTransfer { server_id: id }).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::InvalidTransition => {}
            Err(e) => {
                tracing::error!(%id, error = %e, "could not unlock the server on its source after a failed transfer")
            }
        }
    }

    /// A step of a transfer: a line in the server's log and a `transfer_progress` event.
    async fn transfer_note(&self, id: ServerId, phase: TransferPhase, line: String) {
        let now = self.now();
        let log = ServerLog {
            server_id: id,
            seq: now.timestamp_micros(),
            stream: LogStream::System,
            line: line.clone(),
            at: now,
        };
        if let Err(e) = self.inner.store.append_logs(std::slice::from_ref(&log)).await {
            tracing::warn!(%id, error = %e, "could not store a transfer step");
        }
        self.publish(DomainEvent::ServerLog(log));
        let message = Some(line);
        self.publish(DomainEvent::TransferProgress { server_id: id, phase, bytes: 0, total: 0, message });
    }
}

pub(super) fn system_grant() -> Grant {
    authorize(&Principal::system(), Permission::ServerTransfer, Scope::Global)
        .expect("the system holds every permission")
}
