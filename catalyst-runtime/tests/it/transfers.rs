//! Transfers between two nodes with real files: the server's files and its node-local backups
//! arrive on the target, it runs there again, and the source's copy is gone; a target that
//! fails midway leaves the server running on its source with its files intact.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::clock::SystemClock;
use catalyst_core::events::{BackupPhase, DomainEvent, TransferPhase};
use catalyst_core::id::{NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::BackupStorage;
use catalyst_core::permission::Principal;
use catalyst_core::ports::NodeEndpoint;
use catalyst_core::protocol::{NodeRequest, NodeResponse};
use catalyst_core::store::MemoryStore;
use catalyst_core::testing::FakeRuntime;
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::{NewLocation, NewNode};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing::{self, wait_for_state};

use crate::backups::snapshot;

/// A target whose archive writes fail once armed (a node dying midway through the copy).
#[derive(Debug)]
struct Failing {
    inner: NodeDaemon,
    armed: AtomicBool,
}

#[async_trait]
impl NodeEndpoint for Failing {
    async fn request(&self, request: NodeRequest) -> catalyst_core::Result<NodeResponse> {
        if self.armed.load(Ordering::SeqCst) && matches!(request, NodeRequest::WriteArchive { .. }) {
            return Err(catalyst_core::Error::unavailable("the node went away"));
        }
        self.inner.handle(request).await
    }
}

struct Two {
    catalyst: Catalyst,
    server: ServerId,
    a: NodeId,
    b: NodeId,
    target: Arc<Failing>,
    hub: NodeHub,
    data_a: tempfile::TempDir,
    data_b: tempfile::TempDir,
}

async fn two_nodes() -> Two {
    let store = Arc::new(MemoryStore::new());
    let system = Principal::system();
    let build = |hub: NodeHub| {
        testing::control_plane(store.clone(), &hub)
            .scheduler(None)
            .backup_storage(BackupStorage::Local { directory: String::new() })
            .build()
    };
    let bootstrap = build(NodeHub::new()).await.expect("bootstrap");
    let loc = bootstrap.create_location(&system, NewLocation { name: "l".into(), description: String::new() }).await;
    let loc = loc.expect("location").id;
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let node = NewNode {
            name: name.into(),
            location_id: loc,
            fqdn: format!("{name}.example.test"),
            memory_mb: 8192,
            disk_mb: 100_000,
            overallocate_percent: 0,
        };
        nodes.push(bootstrap.create_node(&system, node).await.expect("node").id);
    }
    let (data_a, data_b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let daemon = |id, dir: &tempfile::TempDir| {
        NodeDaemon::new(id, Arc::new(FakeRuntime::new()), Arc::new(SystemClock), DaemonConfig::new(dir.path()))
    };
    let (da, db) = (daemon(nodes[0], &data_a), daemon(nodes[1], &data_b));
    let hub = NodeHub::new();
    hub.add_node(da);
    hub.add_node(db.clone());
    let target = Arc::new(Failing { inner: db, armed: AtomicBool::new(false) });
    hub.attach(nodes[1], target.clone());
    let catalyst = build(hub.clone()).await.expect("catalyst");
    let template = catalyst.create_template(&system, testing::game_template()).await.expect("template");
    let admin = catalyst.bootstrap_admin("admin@example.test", "admin", "password-123".into()).await;
    let server = testing::new_server(admin.expect("admin").expect("new").id, nodes[0], template.id);
    let server = catalyst.create_server(&system, server).await.expect("server").id;
    wait_for_state(&catalyst, server, ServerState::Stopped).await;
    Two { catalyst, server, a: nodes[0], b: nodes[1], target, hub, data_a, data_b }
}

fn root(data: &tempfile::TempDir, server: ServerId) -> std::path::PathBuf {
    data.path().join("servers").join(server.to_string())
}

async fn wait_transfer(events: &mut tokio::sync::broadcast::Receiver<DomainEvent>) -> TransferPhase {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv()).await.expect("no transfer outcome").expect("bus");
        if let DomainEvent::TransferProgress { phase, .. } = e
            && matches!(phase, TransferPhase::Completed | TransferPhase::Failed)
        {
            return phase;
        }
    }
}

fn fill(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("world")).expect("world");
    std::fs::write(root.join("world/level.dat"), (0..3_000_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>())
        .expect("level");
    std::fs::write(root.join("server.properties"), b"motd=moving\n").expect("props");
}

fn files_in(dir: &std::path::Path) -> usize {
    walk_count(dir)
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.map(|e| {
            let p = e.expect("entry").path();
            if p.is_dir() { walk_count(&p) } else { 1 }
        })
        .sum()
    })
}

#[tokio::test]
async fn a_transfer_moves_files_and_backups_and_runs_on_the_target() {
    let t = two_nodes().await;
    let system = Principal::system();
    fill(&root(&t.data_a, t.server));
    let expected = snapshot(&root(&t.data_a, t.server));
    let mut events = t.catalyst.events().subscribe();
    let backup = t.catalyst.create_backup(&system, t.server, Some("before the move".into())).await.expect("backup");
    loop {
        if let Ok(DomainEvent::BackupProgress { phase: BackupPhase::Completed, backup_id, .. }) = events.recv().await
            && backup_id == backup.id
        {
            break;
        }
    }
    t.catalyst.start_server(&system, t.server).await.expect("start");
    wait_for_state(&t.catalyst, t.server, ServerState::Running).await;

    t.catalyst.transfer_server(&system, t.server, t.b).await.expect("transfer");
    assert_eq!(wait_transfer(&mut events).await, TransferPhase::Completed);
    let server = t.catalyst.get_server(&system, t.server).await.expect("server");
    assert_eq!(server.node_id, t.b);
    wait_for_state(&t.catalyst, t.server, ServerState::Running).await;
    assert_eq!(snapshot(&root(&t.data_b, t.server)), expected, "the files arrived intact");
    assert!(!root(&t.data_a, t.server).exists(), "the source's copy is gone");
    assert_eq!(files_in(&t.data_a.path().join("transfers")) + files_in(&t.data_b.path().join("transfers")), 0);

    // The backup travelled with it and restores on the target.
    let moved = t.catalyst.get_backup(&system, t.server, backup.id).await.expect("backup");
    assert_eq!(moved.node_id, t.b);
    let archive = |data: &tempfile::TempDir| {
        data.path().join("backups").join(t.server.to_string()).join(format!("{}.tar.zst", backup.id))
    };
    assert!(archive(&t.data_b).exists() && !archive(&t.data_a).exists());
    std::fs::write(root(&t.data_b, t.server).join("server.properties"), b"changed").expect("change");
    t.catalyst.restore_backup(&system, t.server, backup.id).await.expect("restore on the target");
    loop {
        if let Ok(DomainEvent::BackupProgress { phase, backup_id, .. }) = events.recv().await
            && backup_id == backup.id
            && matches!(phase, BackupPhase::Restored | BackupPhase::RestoreFailed)
        {
            assert_eq!(phase, BackupPhase::Restored);
            break;
        }
    }
    assert_eq!(snapshot(&root(&t.data_b, t.server)), expected);

    // Each step is in the server's log.
    let logs = t.catalyst.server_logs(&system, t.server, &Default::default()).await.expect("logs");
    let lines: Vec<&str> = logs.iter().map(|l| l.line.as_str()).collect();
    for step in ["transfer from node", "archiving", "copying", "restoring the files", "switching", "transfer complete"]
    {
        assert!(lines.iter().any(|l| l.contains(step)), "{step} not logged: {lines:?}");
    }
    let _ = t.a;
}

#[tokio::test]
async fn a_transfer_that_fails_midway_leaves_the_server_running_on_its_source() {
    let t = two_nodes().await;
    let system = Principal::system();
    fill(&root(&t.data_a, t.server));
    let expected = snapshot(&root(&t.data_a, t.server));
    t.catalyst.start_server(&system, t.server).await.expect("start");
    wait_for_state(&t.catalyst, t.server, ServerState::Running).await;

    t.target.armed.store(true, Ordering::SeqCst);
    let mut events = t.catalyst.events().subscribe();
    t.catalyst.transfer_server(&system, t.server, t.b).await.expect("accepted");
    assert_eq!(wait_transfer(&mut events).await, TransferPhase::Failed);
    let server = t.catalyst.get_server(&system, t.server).await.expect("server");
    assert_eq!(server.node_id, t.a, "still on its source");
    wait_for_state(&t.catalyst, t.server, ServerState::Running).await;
    assert_eq!(snapshot(&root(&t.data_a, t.server)), expected, "the source's files are intact");
    assert!(!root(&t.data_b, t.server).exists(), "nothing of it stayed on the target");
    assert_eq!(files_in(&t.data_a.path().join("transfers")) + files_in(&t.data_b.path().join("transfers")), 0);
}

#[tokio::test]
async fn a_transfer_interrupted_by_a_control_plane_restart_is_rolled_back() {
    use catalyst_core::ports::NodeLink;
    let t = two_nodes().await;
    // The source was locked for a transfer by a control plane that then died.
    t.hub.request(t.a, NodeRequest::BeginTransfer { server_id: t.server }).await.expect("lock");
    wait_for_state(&t.catalyst, t.server, ServerState::Transferring).await;
    // The node reconnects to a control plane that runs no transfer for it.
    t.catalyst.reconcile_node(t.a, &[(t.server, ServerState::Transferring)]).await.expect("reconcile");
    wait_for_state(&t.catalyst, t.server, ServerState::Stopped).await;
    t.catalyst.start_server(&Principal::system(), t.server).await.expect("it starts again");
}
