//! Consumes node events: persists state changes and crash records, batches console lines and
//! resource samples into the store, and republishes everything on the event bus.

use std::time::Duration;

use catalyst_core::events::DomainEvent;
use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{ServerLog, ServerMetrics, Timestamp};
use catalyst_core::ports::Store;
use catalyst_core::protocol::{NodeEvent, NodeRequest};
use catalyst_core::{ErrorKind, Result};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::Catalyst;

/// Lines per store write, and the longest a line waits before it is written.
const LOG_BATCH: usize = 1000;
const FLUSH: Duration = Duration::from_millis(200);
/// Lines waiting for the store; beyond this, lines are dropped (and counted) rather than
/// growing memory without bound while the database is slow.
const LOG_QUEUE: usize = 50_000;
/// Resource samples waiting for the store (they are dropped beyond it, like lines).
const METRICS_QUEUE: usize = 10_000;

/// Start the event loop and its two store writers. The loop holds the control plane weakly
/// and is cancelled on shutdown; the writers drain what it queued, then end.
pub(super) fn spawn(owner: &Catalyst) {
    let background = owner.background();
    let (log_tx, log_rx) = mpsc::channel::<ServerLog>(LOG_QUEUE);
    background.spawn_draining(write_logs(owner.inner.store.clone(), log_rx));
    let (metrics_tx, metrics_rx) = mpsc::channel::<ServerMetrics>(METRICS_QUEUE);
    background.spawn_draining(write_metrics(owner.inner.store.clone(), metrics_rx));
    let mut events = owner.inner.link.subscribe();
    let weak = owner.downgrade();
    background.spawn(async move {
        let (mut dropped, mut dropped_samples): (u64, u64) = (0, 0);
        // Which node owns which server: a node may only report on its own servers.
        let mut owners: std::collections::HashMap<ServerId, catalyst_core::id::NodeId> = Default::default();
        while let Some((node, event)) = events.next().await {
            let Some(catalyst) = weak.upgrade() else { return };
            let server = match &event {
                NodeEvent::StateChanged { server_id, .. }
                | NodeEvent::Crashed { server_id, .. }
                | NodeEvent::Log { server_id, .. }
                | NodeEvent::InstallOutput { server_id, .. } => Some(*server_id),
                NodeEvent::BackupProgress { server_id, .. }
                | NodeEvent::BackupDone { server_id, .. }
                | NodeEvent::RestoreDone { server_id, .. }
                | NodeEvent::FileActivity { server_id, .. } => Some(*server_id),
                NodeEvent::Stats(m) => Some(m.server_id),
                NodeEvent::Health { .. } => None,
            };
            if let Some(server_id) = server {
                // A cached owner that disagrees is checked again: the server may have moved.
                let owner = match owners.get(&server_id) {
                    Some(o) if *o == node => Some(*o),
                    _ => catalyst.inner.store.get_server(server_id).await.ok().map(|s| s.node_id),
                };
                match owner {
                    Some(o) if o == node => {
                        if owners.len() > 100_000 {
                            owners.clear();
                        }
                        owners.insert(server_id, o);
                    }
                    _ => {
                        // Unknown server (deleted) or another node's: ignore, never apply.
                        owners.remove(&server_id);
                        continue;
                    }
                }
            }
            match event {
                NodeEvent::StateChanged { server_id, from, to, reason, at } => {
                    if let Err(e) = catalyst.record_state(server_id, to).await
                        && e.kind() != ErrorKind::NotFound
                    {
                        tracing::error!(%server_id, error = %e, "could not persist a state change");
                    }
                    catalyst.publish(DomainEvent::ServerStateUpdate { server_id, from, to, reason, at });
                }
                NodeEvent::Crashed { server_id, at, .. } => {
                    if let Err(e) = catalyst.record_crash(server_id, at).await
                        && e.kind() != ErrorKind::NotFound
                    {
                        tracing::error!(%server_id, error = %e, "could not record a crash");
                    }
                }
                NodeEvent::Log { server_id, seq, stream, line, at } => {
                    let log = ServerLog { server_id, seq, stream, line, at };
                    catalyst.publish(DomainEvent::ServerLog(log.clone()));
                    if log_tx.try_send(log).is_err() {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            tracing::warn!(dropped, "the log store is falling behind; console lines dropped");
                        }
                    }
                }
                NodeEvent::InstallOutput { server_id, line } => {
                    catalyst.publish(DomainEvent::InstallationProgress { server_id, line });
                }
                NodeEvent::Stats(m) => {
                    if metrics_tx.try_send(m.clone()).is_err() {
                        dropped_samples += 1;
                        if dropped_samples.is_power_of_two() {
                            tracing::warn!(dropped_samples, "the metrics store is falling behind; samples dropped");
                        }
                    }
                    catalyst.publish(DomainEvent::ResourceStats(m));
                }
                NodeEvent::BackupProgress { server_id, backup_id, bytes, total } => {
                    catalyst.publish(DomainEvent::BackupProgress {
                        server_id,
                        backup_id,
                        phase: catalyst_core::events::BackupPhase::Running,
                        bytes,
                        total,
                        error: None,
                    });
                }
                NodeEvent::BackupDone { server_id, backup_id, result } => {
                    // Retention may call the node: off the event loop.
                    let c = catalyst.clone();
                    catalyst
                        .background()
                        .spawn(async move { c.backup_finished(node, server_id, backup_id, result).await });
                }
                NodeEvent::RestoreDone { server_id, backup_id, result } => {
                    let c = catalyst.clone();
                    catalyst
                        .background()
                        .spawn(async move { c.restore_finished(node, server_id, backup_id, result).await });
                }
                NodeEvent::FileActivity { server_id, user_id, action, path, bytes } => {
                    // The node says who did it; only someone who may touch these files is named.
                    let user_id = match user_id {
                        Some(u) => may_touch_files(&catalyst, u, server_id).await.then_some(u),
                        None => None,
                    };
                    let action = if is_file_action(&action) { action } else { "file.unknown".to_string() };
                    let path: String = path.chars().take(4096).collect();
                    catalyst.record_file_activity(node, server_id, user_id, &action, &path, bytes).await;
                }
                NodeEvent::Health { .. } => {}
            }
        }
    });
}

/// Does `user` hold file access on `server` (what an SFTP session needs to have acted)?
async fn may_touch_files(catalyst: &Catalyst, user: catalyst_core::id::UserId, server: ServerId) -> bool {
    match catalyst.principal_for(user).await {
        Ok(who) => catalyst.file_permissions(&who, server).await.is_ok(),
        Err(_) => false,
    }
}

/// The audit actions an SFTP session reports: `file.` and a short lowercase word.
fn is_file_action(action: &str) -> bool {
    action.strip_prefix("file.").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// The next batch from `rx`: at most `max` items, none waiting longer than `FLUSH`; `None`
/// when the channel is closed.
async fn next_batch<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().await?];
    let deadline = tokio::time::Instant::now() + FLUSH;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => batch.push(item),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

async fn write_logs(store: std::sync::Arc<dyn Store>, mut rx: mpsc::Receiver<ServerLog>) {
    while let Some(batch) = next_batch(&mut rx, LOG_BATCH).await {
        let Err(e) = store.append_logs(&batch).await else { continue };
        // A deleted server's lines are refused; write the rest one server at a time.
        if e.kind() == ErrorKind::NotFound {
            let mut by_server: std::collections::BTreeMap<ServerId, Vec<ServerLog>> = Default::default();
            for l in batch {
                by_server.entry(l.server_id).or_default().push(l);
            }
            for lines in by_server.values() {
                if let Err(e) = store.append_logs(lines).await
                    && e.kind() != ErrorKind::NotFound
                {
                    tracing::error!(error = %e, lines = lines.len(), "could not store console lines");
                }
            }
        } else {
            tracing::error!(error = %e, lines = batch.len(), "could not store console lines");
        }
    }
}

async fn write_metrics(store: std::sync::Arc<dyn Store>, mut rx: mpsc::Receiver<ServerMetrics>) {
    while let Some(batch) = next_batch(&mut rx, LOG_BATCH).await {
        if let Err(e) = store.append_metrics(&batch).await {
            tracing::error!(error = %e, samples = batch.len(), "could not store resource samples");
        }
    }
}

impl Catalyst {
    /// A node (re)connected: store the states it reports for its own servers, except where the
    /// control plane decided while the node was away (a suspension or its lifting, a forced
    /// deletion): those wait for [`Catalyst::settle_node`], which tells the node. Deleting rows
    /// the node no longer has go at once.
    pub async fn reconcile_node(
        &self,
        node: catalyst_core::id::NodeId,
        inventory: &[(ServerId, ServerState)],
    ) -> Result<()> {
        for (server_id, state) in inventory {
            match self.inner.store.get_server(*server_id).await {
                Ok(s) if s.node_id == node && decided_while_away(s.state, *state) => {}
                Ok(s) if s.node_id == node => {
                    self.record_state(*server_id, *state).await?;
                    self.interrupted_backups(*server_id).await?;
                    if *state == ServerState::Transferring {
                        self.abandoned_transfer(node, *server_id);
                    }
                }
                Ok(_) | Err(_) => tracing::warn!(%node, %server_id, "a node reported a server that is not its own"),
            }
        }
        for s in self.node_servers(node).await? {
            if s.state == ServerState::Deleting && !inventory.iter().any(|(id, _)| *id == s.id) {
                self.drop_server(s.id).await?;
            }
        }
        Ok(())
    }

    /// Once a reconnected node takes requests: carry out what was decided while it was away
    /// (finish forced deletions, suspend or unsuspend), as its inventory shows is needed.
    pub async fn settle_node(&self, node: catalyst_core::id::NodeId, inventory: &[(ServerId, ServerState)]) {
        let grant = super::transfers::system_grant();
        for (server_id, reported) in inventory {
            let Ok(s) = self.inner.store.get_server(*server_id).await else { continue };
            if s.node_id != node || !decided_while_away(s.state, *reported) {
                continue;
            }
            let done = match s.state {
                ServerState::Deleting => self.finish_deletion(&s).await,
                ServerState::Suspended => {
                    self.send(&grant, &s, NodeRequest::Suspend { server_id: s.id }).await.map(|_| ())
                }
                _ => self.send(&grant, &s, NodeRequest::Unsuspend { server_id: s.id }).await.map(|_| ()),
            };
            if let Err(e) = done {
                tracing::warn!(%node, %server_id, error = %e, "could not carry out what was decided while the node was away");
            }
        }
    }

    /// Every server row of a node.
    async fn node_servers(&self, node: catalyst_core::id::NodeId) -> Result<Vec<catalyst_core::model::Server>> {
        let filter = catalyst_core::ports::ServerFilter { node_id: Some(node), ..Default::default() };
        let mut all = Vec::new();
        loop {
            let page =
                self.inner.store.list_servers(&filter, catalyst_core::model::Page::new(all.len() as u64, 500)).await?;
            let done = page.items.is_empty() || all.len() + page.items.len() >= page.total as usize;
            all.extend(page.items);
            if done {
                return Ok(all);
            }
        }
    }

    /// The node is authoritative for runtime states: store what it reports (but a deletion
    /// the control plane forced stays).
    async fn record_state(&self, id: ServerId, to: ServerState) -> Result<()> {
        self.modify_server(id, |s| {
            if s.state == ServerState::Deleting && to != ServerState::Deleting {
                return false;
            }
            let changed = s.state != to;
            s.state = to;
            changed
        })
        .await
        .map(|_| ())
    }

    async fn record_crash(&self, id: ServerId, at: Timestamp) -> Result<()> {
        self.modify_server(id, |s| {
            s.crash_count = s.crash_count.saturating_add(1);
            s.crash_history.push(at);
            let policy = s.restart_policy;
            policy.prune(&mut s.crash_history, at);
            true
        })
        .await
        .map(|_| ())
    }
}

/// Did the control plane decide this server's state while its node was away? A forced
/// deletion; a suspension the node has not applied; a suspension lifted at rest.
fn decided_while_away(stored: ServerState, reported: ServerState) -> bool {
    match stored {
        ServerState::Deleting => true,
        ServerState::Suspended => reported != ServerState::Suspended,
        ServerState::Stopped => reported == ServerState::Suspended,
        _ => false,
    }
}
