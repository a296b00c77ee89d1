//! Backups: taken by the server's node into the configured storage, recorded here, restored
//! onto a stopped server, locked against deletion, and rotated by the retention policy after
//! each new one. Progress reaches observers as `backup_progress` events.

use std::time::Duration;

use catalyst_core::events::{BackupPhase, DomainEvent};
use catalyst_core::id::{BackupId, NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Backup, BackupStatus, Page, Server};
use catalyst_core::permission::{Grant, Permission, Principal};
use catalyst_core::protocol::{NodeRequest, StoredArchive, WireError};
use catalyst_core::{Error, ErrorKind, Result};
use serde_json::json;

use super::{Catalyst, Who};

/// An in-progress backup older than this is taken for abandoned (its node went away).
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(6);
/// How long a restore waits for the server to stop.
const STOP_WAIT: Duration = Duration::from_secs(120);
/// Read-modify-write rounds before a backup that keeps changing is given up on.
const MODIFY_TRIES: usize = 8;

impl Catalyst {
    /// Every backup of a server, newest first, read page by page: retention, limits and
    /// transfers need them all, and a server keeps few.
    pub(super) async fn all_backups(&self, server_id: ServerId) -> Result<Vec<Backup>> {
        let mut all = Vec::new();
        loop {
            let page = Page::new(all.len() as u64, Page::MAX_LIMIT);
            let got = self.inner.store.list_backups(server_id, page).await?;
            let last = got.items.len() < Page::MAX_LIMIT as usize;
            all.extend(got.items);
            if last || all.len() as u64 >= got.total {
                return Ok(all);
            }
        }
    }

    /// Read a backup, apply `change`, and write it back by compare-and-swap, re-reading and
    /// retrying when a node's report and a user's action race. `change` returns false to
    /// leave the backup as it is; the result is the backup as stored.
    pub(super) async fn modify_backup(
        &self,
        id: BackupId,
        mut change: impl FnMut(&mut Backup) -> bool,
    ) -> Result<Backup> {
        for _ in 0..MODIFY_TRIES {
            let mut backup = self.inner.store.get_backup(id).await?;
            if !change(&mut backup) {
                return Ok(backup);
            }
            match self.inner.store.update_backup(&backup).await {
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                stored => return stored,
            }
        }
        Err(Error::conflict("the backup is changing too fast; retry"))
    }

    async fn backup_of(
        &self,
        who: &Principal,
        server_id: ServerId,
        backup_id: BackupId,
        permission: Permission,
    ) -> Result<(Server, Grant, Backup)> {
        let (server, grant) = self.server_with(who, server_id, permission).await?;
        let backup = self.inner.store.get_backup(backup_id).await?;
        if backup.server_id != server_id {
            return Err(Error::not_found("backup"));
        }
        Ok((server, grant, backup))
    }

    /// Mark a running backup failed for `reason`; one the node finished meanwhile stays as it is.
    async fn fail_running(&self, id: BackupId, reason: &str) -> Result<Backup> {
        let now = self.now();
        self.modify_backup(id, |b| {
            if b.status != BackupStatus::InProgress {
                return false;
            }
            b.status = BackupStatus::Failed;
            b.error = Some(reason.into());
            b.completed_at = Some(now);
            true
        })
        .await
    }

    /// Start a backup of a server (`backup.create`); it completes in the background.
    pub async fn create_backup(&self, who: &Principal, server_id: ServerId, name: Option<String>) -> Result<Backup> {
        let (server, grant) = self.server_with(who, server_id, Permission::BackupCreate).await?;
        if matches!(server.state, ServerState::Restoring | ServerState::Transferring | ServerState::Deleting) {
            return Err(Error::conflict(format!("cannot back up a server that is {}", server.state)));
        }
        let now = self.now();
        let name = match name.map(|n| n.trim().to_string()) {
            Some(n) if n.is_empty() || n.len() > 100 => return Err(Error::invalid("name: 1 to 100 characters")),
            Some(n) => n,
            None => format!("Backup {}", now.format("%Y-%m-%d %H:%M:%S")),
        };
        let mut existing = self.all_backups(server_id).await?;
        for running in existing.iter_mut() {
            if running.status != BackupStatus::InProgress {
                continue;
            }
            if now - running.created_at < ABANDONED_AFTER {
                return Err(Error::conflict("a backup of this server is already running"));
            }
            *running = self.fail_running(running.id, "abandoned: the node never reported an outcome").await?;
        }
        catalyst_core::model::check_backup_room(&server.limits, &existing)?;
        let backup = Backup {
            id: BackupId::new(),
            server_id,
            node_id: server.node_id,
            name,
            status: BackupStatus::InProgress,
            storage: self.inner.backup_storage.kind(),
            size_bytes: 0,
            checksum: None,
            locked: false,
            error: None,
            created_at: now,
            completed_at: None,
            version: 0,
        };
        self.inner.store.create_backup(&backup).await?;
        let request =
            NodeRequest::Backup { server_id, backup_id: backup.id, storage: self.inner.backup_storage.clone() };
        let sent = self.send(&grant, &server, request).await;
        self.audit(
            Who::Grant(&grant, who),
            "backup.create",
            ("backup", Some(backup.id.to_string())),
            sent.is_ok(),
            json!({ "server_id": server_id, "name": backup.name }),
        )
        .await;
        if let Err(e) = sent {
            let _ = self.inner.store.delete_backup(backup.id).await;
            return Err(e);
        }
        Ok(backup)
    }

    /// A server's backups, newest first (`backup.read`).
    pub async fn list_backups(&self, who: &Principal, server_id: ServerId) -> Result<Vec<Backup>> {
        self.server_with(who, server_id, Permission::BackupRead).await?;
        self.all_backups(server_id).await
    }

    /// One backup (`backup.read`).
    pub async fn get_backup(&self, who: &Principal, server_id: ServerId, backup_id: BackupId) -> Result<Backup> {
        Ok(self.backup_of(who, server_id, backup_id, Permission::BackupRead).await?.2)
    }

    /// Lock or unlock a backup (`backup.delete`): locked backups are neither deleted nor
    /// rotated out.
    pub async fn lock_backup(
        &self,
        who: &Principal,
        server_id: ServerId,
        backup_id: BackupId,
        locked: bool,
    ) -> Result<Backup> {
        let (_, grant, _) = self.backup_of(who, server_id, backup_id, Permission::BackupDelete).await?;
        let backup = self
            .modify_backup(backup_id, |b| {
                b.locked = locked;
                true
            })
            .await?;
        let action = if locked { "backup.lock" } else { "backup.unlock" };
        self.audit(Who::Grant(&grant, who), action, ("backup", Some(backup_id.to_string())), true, json!({})).await;
        Ok(backup)
    }

    /// Delete a backup and its stored archive (`backup.delete`; not while locked or running).
    pub async fn delete_backup(&self, who: &Principal, server_id: ServerId, backup_id: BackupId) -> Result<()> {
        let (server, grant, backup) = self.backup_of(who, server_id, backup_id, Permission::BackupDelete).await?;
        if backup.locked {
            return Err(Error::conflict("the backup is locked"));
        }
        if backup.status == BackupStatus::InProgress {
            return Err(Error::conflict("the backup is still running"));
        }
        let outcome = self.remove_backup(&server, &backup).await;
        self.audit(
            Who::Grant(&grant, who),
            "backup.delete",
            ("backup", Some(backup_id.to_string())),
            outcome.is_ok(),
            json!({ "server_id": server_id }),
        )
        .await;
        outcome
    }

    async fn remove_backup(&self, server: &Server, backup: &Backup) -> Result<()> {
        if backup.status == BackupStatus::Completed {
            let request = NodeRequest::DeleteBackup {
                server_id: server.id,
                backup_id: backup.id,
                storage: self.inner.backup_storage.clone(),
            };
            // Ask the node that made it (local storage lives there).
            let node = backup.node_id;
            match self.inner.link.request(node, request).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.store.delete_backup(backup.id).await
    }

    /// Replace a server's files with a backup (`backup.restore`): the server is stopped first;
    /// the node verifies the checksum before touching anything.
    pub async fn restore_backup(&self, who: &Principal, server_id: ServerId, backup_id: BackupId) -> Result<Backup> {
        let (server, grant, backup) = self.backup_of(who, server_id, backup_id, Permission::BackupRestore).await?;
        let checksum = match (&backup.status, &backup.checksum) {
            (BackupStatus::Completed, Some(c)) => c.clone(),
            _ => return Err(Error::conflict("only a completed backup can be restored")),
        };
        if server.suspended() {
            return Err(Error::conflict("the server is suspended"));
        }
        if backup.node_id != server.node_id {
            return Err(Error::conflict("the backup was taken on another node"));
        }
        let server = self.stopped(&grant, server).await?;
        let request =
            NodeRequest::Restore { server_id, backup_id, storage: self.inner.backup_storage.clone(), checksum };
        let sent = self.send(&grant, &server, request).await;
        self.audit(
            Who::Grant(&grant, who),
            "backup.restore",
            ("backup", Some(backup_id.to_string())),
            sent.is_ok(),
            json!({ "server_id": server_id }),
        )
        .await;
        sent?;
        self.publish(DomainEvent::BackupProgress {
            server_id,
            backup_id,
            phase: BackupPhase::Restoring,
            bytes: 0,
            total: backup.size_bytes,
            error: None,
        });
        Ok(backup)
    }

    /// Stop a running server and wait until its node says it stopped.
    pub(super) async fn stopped(&self, grant: &Grant, server: Server) -> Result<Server> {
        if matches!(server.state, ServerState::Stopped | ServerState::Crashed | ServerState::InstallFailed) {
            return Ok(server);
        }
        self.send(grant, &server, NodeRequest::Stop { server_id: server.id }).await?;
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        loop {
            let s = self.inner.store.get_server(server.id).await?;
            if matches!(s.state, ServerState::Stopped | ServerState::Crashed) {
                return Ok(s);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::timeout("the server did not stop in time"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A node reconnected: its running backups of this server may have died with it. They are
    /// marked failed; one that was still running and finishes later is recorded then.
    pub(super) async fn interrupted_backups(&self, server_id: ServerId) -> Result<()> {
        for b in self.all_backups(server_id).await? {
            if b.status != BackupStatus::InProgress {
                continue;
            }
            self.fail_running(b.id, "interrupted: the node reconnected while it ran").await?;
        }
        Ok(())
    }

    /// Record a backup's outcome, tell observers, and rotate old backups out.
    pub(super) async fn backup_finished(
        &self,
        node: NodeId,
        server_id: ServerId,
        backup_id: BackupId,
        result: std::result::Result<StoredArchive, WireError>,
    ) {
        let now = self.now();
        let mut ours = true;
        let recorded = self
            .modify_backup(backup_id, |b| {
                // Only the node writing this server's backup may finish it, once.
                ours = b.server_id == server_id && b.node_id == node && b.status == BackupStatus::InProgress;
                if !ours {
                    return false;
                }
                b.completed_at = Some(now);
                match &result {
                    Ok(stored) => {
                        b.status = BackupStatus::Completed;
                        b.size_bytes = stored.size_bytes;
                        b.checksum = Some(stored.checksum.clone());
                    }
                    Err(e) => {
                        b.status = BackupStatus::Failed;
                        b.error = Some(e.message.clone());
                    }
                }
                true
            })
            .await;
        let backup = match recorded {
            Ok(_) if !ours => {
                tracing::warn!(%node, %backup_id, "a node reported on a backup that is not its to finish; ignored");
                return;
            }
            Ok(backup) => backup,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => {
                tracing::error!(%backup_id, error = %e, "could not record a backup's outcome");
                return;
            }
        };
        let (phase, error) = match result {
            Ok(_) => (BackupPhase::Completed, None),
            Err(e) => (BackupPhase::Failed, Some(e.message)),
        };
        self.publish(DomainEvent::BackupProgress {
            server_id,
            backup_id,
            phase,
            bytes: backup.size_bytes,
            total: backup.size_bytes,
            error,
        });
        if backup.status == BackupStatus::Completed
            && let Err(e) = self.apply_retention(server_id).await
        {
            tracing::warn!(%server_id, error = %e, "backup retention failed");
        }
    }

    /// Tell observers how a restore ended (and say it in the server's console).
    pub(super) async fn restore_finished(
        &self,
        node: NodeId,
        server_id: ServerId,
        backup_id: BackupId,
        result: std::result::Result<(), WireError>,
    ) {
        match self.inner.store.get_backup(backup_id).await {
            Ok(b) if b.server_id == server_id => {}
            _ => {
                tracing::warn!(%node, %backup_id, "a node reported a restore of another server's backup; ignored");
                return;
            }
        }
        let (phase, error) = match result {
            Ok(()) => (BackupPhase::Restored, None),
            Err(e) => (BackupPhase::RestoreFailed, Some(e.message)),
        };
        self.audit(
            Who::Principal(&Principal::system()),
            if error.is_none() { "backup.restored" } else { "backup.restore_failed" },
            ("backup", Some(backup_id.to_string())),
            error.is_none(),
            json!({ "server_id": server_id, "error": error }),
        )
        .await;
        self.publish(DomainEvent::BackupProgress { server_id, backup_id, phase, bytes: 0, total: 0, error });
    }

    /// Delete what the retention policy no longer keeps.
    async fn apply_retention(&self, server_id: ServerId) -> Result<()> {
        let policy = self.inner.backup_retention;
        if policy == Default::default() {
            return Ok(());
        }
        let backups = self.all_backups(server_id).await?;
        let server = self.inner.store.get_server(server_id).await?;
        let system = Principal::system();
        for old in policy.expired(&backups, self.now()) {
            let outcome = self.remove_backup(&server, old).await;
            self.audit(
                Who::Principal(&system),
                "backup.rotate",
                ("backup", Some(old.id.to_string())),
                outcome.is_ok(),
                json!({ "server_id": server_id, "name": old.name }),
            )
            .await;
            outcome?;
        }
        Ok(())
    }
}
