//! The node link over a real WebSocket on loopback: enrollment, hello, requests and events,
//! offline nodes failing fast, reconnects with reconciliation, and nodes that lie.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::ErrorKind;
use catalyst_core::clock::SystemClock;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, LogQuery};
use catalyst_core::permission::Principal;
use catalyst_core::protocol::{AgentFrame, NodeEvent, PROTOCOL_VERSION};
use catalyst_core::testing::FakeRuntime;
use catalyst_http::agent_client::{self, AgentConfig};
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::{NewLocation, NewNode, NewServer};
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing::{self, TestWorld};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

struct Plane {
    catalyst: Catalyst,
    base: String,
    admin: Principal,
    _dir: tempfile::TempDir,
}

async fn plane() -> Plane {
    let w = TestWorld::sqlite().await.build().await;
    let addr = crate::support::serve(catalyst_http::router(w.catalyst.clone(), Some(w.hub))).await;
    Plane { catalyst: w.catalyst, base: format!("http://{addr}"), admin: w.admin, _dir: w.dir }
}

async fn node(p: &Plane, name: &str) -> (catalyst_core::model::Node, String) {
    let loc = match p.catalyst.list_locations(&p.admin).await.expect("locations").into_iter().next() {
        Some(l) => l,
        None => p
            .catalyst
            .create_location(&p.admin, NewLocation { name: "loc".into(), description: String::new() })
            .await
            .expect("loc"),
    };
    let node = p
        .catalyst
        .create_node(
            &p.admin,
            NewNode {
                name: name.into(),
                location_id: loc.id,
                fqdn: format!("{name}.example.test"),
                memory_mb: 8192,
                disk_mb: 100_000,
                overallocate_percent: 0,
            },
        )
        .await
        .expect("node");
    let token = p.catalyst.create_deployment_token(&p.admin, node.id).await.expect("token");
    let credential = agent_client::enroll(&p.base, node.id, &token.token).await.expect("enroll");
    assert_eq!(
        agent_client::enroll(&p.base, node.id, &token.token).await.expect_err("once").kind(),
        ErrorKind::Unauthenticated
    );
    (node, credential)
}

fn agent(
    p: &Plane,
    node: catalyst_core::id::NodeId,
    credential: &str,
    daemon: NodeDaemon,
) -> (tokio::task::JoinHandle<catalyst_core::Result<()>>, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = AgentConfig {
        url: format!("{}/api/agent/ws", p.base.replace("http://", "ws://")),
        node_id: node,
        credential: credential.into(),
    };
    let handle = tokio::spawn(agent_client::run(config, daemon, async move {
        let _ = stopped.await;
    }));
    (handle, stop)
}

/// A daemon over the fake runtime for `node`, linked by a running agent.
async fn connected(
    p: &Plane,
    node: &catalyst_core::model::Node,
    credential: &str,
) -> (NodeDaemon, tokio::task::JoinHandle<catalyst_core::Result<()>>, tokio::sync::oneshot::Sender<()>, tempfile::TempDir)
{
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon =
        NodeDaemon::new(node.id, Arc::new(FakeRuntime::new()), Arc::new(SystemClock), DaemonConfig::new(dir.path()));
    let (handle, stop) = agent(p, node.id, credential, daemon.clone());
    until("the agent to connect", async || p.catalyst.node_online(node.id)).await;
    (daemon, handle, stop, dir)
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_link_end_to_end() {
    let p = plane().await;
    let (n1, credential) = node(&p, "n1").await;
    let (daemon, handle, stop, _dir) = connected(&p, &n1, &credential).await;

    let owner = p
        .catalyst
        .bootstrap_admin("owner@example.test", "owner", "owner-password".into())
        .await
        .expect("user")
        .expect("new");
    let template = p.catalyst.create_template(&p.admin, testing::game_template()).await.expect("template");
    let server = testing::new_server(owner.id, n1.id, template.id);
    let server = p.catalyst.create_server(&p.admin, server).await.expect("server");
    let state = async || p.catalyst.get_server(&p.admin, server.id).await.expect("get").state;
    until("installed over the link", async || state().await == ServerState::Stopped).await;
    p.catalyst.start_server(&p.admin, server.id).await.expect("start over the link");
    until("running", async || state().await == ServerState::Running).await;
    p.catalyst.send_command(&p.admin, server.id, "over the wire").await.expect("command");
    until("the echo stored from an event", async || {
        p.catalyst
            .server_logs(&p.admin, server.id, &LogQuery::default())
            .await
            .expect("logs")
            .iter()
            .any(|l| l.line == "> over the wire")
    })
    .await;

    // The agent goes away: requests fail fast; the container keeps its state on the node.
    let _ = stop.send(());
    let _ = handle.await;
    until("the node to go offline", async || !p.catalyst.node_online(n1.id)).await;
    let started = tokio::time::Instant::now();
    let err = p.catalyst.stop_server(&p.admin, server.id).await.expect_err("offline");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5), "offline nodes fail fast");

    // The server stops on the node while the link is down; the reconnect reconciles.
    daemon.handle(catalyst_core::protocol::NodeRequest::Stop { server_id: server.id }).await.expect("local stop");
    until("stopped on the node", async || daemon.state(server.id).await.ok() == Some(ServerState::Stopped)).await;
    assert_eq!(state().await, ServerState::Running, "the control plane has not heard yet");
    let (handle, stop) = agent(&p, n1.id, &credential, daemon.clone());
    until("reconnected", async || p.catalyst.node_online(n1.id)).await;
    until("reconciled from the inventory", async || state().await == ServerState::Stopped).await;

    // Another node cannot report on this node's server.
    let (n2, credential2) = node(&p, "n2").await;
    let url = format!("{}/api/agent/ws", p.base.replace("http://", "ws://"));
    let (mut liar, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    let hello = AgentFrame::Hello {
        protocol: PROTOCOL_VERSION,
        node_id: n2.id,
        credential: credential2,
        inventory: vec![(server.id, ServerState::Suspended)],
    };
    liar.send(Message::Text(serde_json::to_string(&hello).expect("json").into())).await.expect("hello");
    let lie = AgentFrame::Event {
        event: NodeEvent::StateChanged {
            server_id: server.id,
            from: ServerState::Stopped,
            to: ServerState::Running,
            reason: None,
            at: chrono::Utc::now(),
        },
    };
    liar.send(Message::Text(serde_json::to_string(&lie).expect("json").into())).await.expect("lie");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state().await, ServerState::Stopped, "lies from another node are ignored");

    // A wrong credential is refused and the agent gives up instead of retrying forever.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let other =
        NodeDaemon::new(n2.id, Arc::new(FakeRuntime::new()), Arc::new(SystemClock), DaemonConfig::new(dir2.path()));
    let (bad, _keep) = agent(&p, n2.id, "wrong-credential", other);
    let result = tokio::time::timeout(Duration::from_secs(10), bad).await.expect("gives up").expect("join");
    assert_eq!(result.expect_err("refused").kind(), ErrorKind::Unauthenticated);

    let _ = stop.send(());
    let _ = handle.await;
}

/// An enrolled node reports on its own server, but names another server's backup and a user
/// who has no access: neither the backup nor the audit log may change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_rewrite_backups_or_audit_in_other_names() {
    use catalyst_core::model::{AuditQuery, BackupStatus, Page};
    use catalyst_core::protocol::{StoredArchive, WireError};
    let p = plane().await;
    let (n1, credential) = node(&p, "n1").await;
    let (_daemon, handle, stop, _dir) = connected(&p, &n1, &credential).await;
    let template = p.catalyst.create_template(&p.admin, testing::game_template()).await.expect("template");
    let mut servers = Vec::new();
    for (name, port) in [("alice", 25565), ("bob", 25566)] {
        let owner = p
            .catalyst
            .bootstrap_admin(&format!("{name}@example.test"), name, "owner-password".into())
            .await
            .expect("user")
            .expect("new");
        let allocations = vec![Allocation { ip: "0.0.0.0".into(), port, primary: true }];
        let input = NewServer { name: name.into(), allocations, ..testing::new_server(owner.id, n1.id, template.id) };
        let s = p.catalyst.create_server(&p.admin, input).await.expect("server");
        until("installed", async || {
            p.catalyst.get_server(&p.admin, s.id).await.expect("get").state == ServerState::Stopped
        })
        .await;
        servers.push(s);
    }
    let (mine, theirs) = (&servers[0], &servers[1]);
    let backup = p.catalyst.create_backup(&p.admin, theirs.id, None).await.expect("backup");
    let completed = async || {
        let b = p.catalyst.get_backup(&p.admin, theirs.id, backup.id).await.expect("get backup");
        (b.status == BackupStatus::Completed).then_some(b)
    };
    until("the backup to complete", async || completed().await.is_some()).await;
    let before = completed().await.expect("completed");
    let _ = stop.send(());
    let _ = handle.await;
    until("the agent to go", async || !p.catalyst.node_online(n1.id)).await;

    let stranger = catalyst_runtime::control::RegisterInput {
        email: "stranger@example.test".into(),
        username: "stranger".into(),
        password: "stranger-password".into(),
    };
    let stranger = p.catalyst.register(stranger).await.expect("a customer without access");
    let url = format!("{}/api/agent/ws", p.base.replace("http://", "ws://"));
    let (mut liar, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    let hello = AgentFrame::Hello {
        protocol: PROTOCOL_VERSION,
        node_id: n1.id,
        credential: credential.clone(),
        inventory: vec![(mine.id, ServerState::Stopped), (theirs.id, ServerState::Stopped)],
    };
    liar.send(Message::Text(serde_json::to_string(&hello).expect("json").into())).await.expect("hello");
    let forged = StoredArchive { size_bytes: 1, checksum: "0".repeat(64) };
    let lies = [
        // Another server's backup, reported through a server of this node.
        NodeEvent::BackupDone { server_id: mine.id, backup_id: backup.id, result: Ok(forged.clone()) },
        // Its own server's backup, finished a second time.
        NodeEvent::BackupDone { server_id: theirs.id, backup_id: backup.id, result: Ok(forged) },
        NodeEvent::BackupDone {
            server_id: theirs.id,
            backup_id: backup.id,
            result: Err(WireError { code: catalyst_core::ErrorKind::Internal, message: "forged".into() }),
        },
        NodeEvent::RestoreDone { server_id: mine.id, backup_id: backup.id, result: Ok(()) },
        // An audit entry in the name of someone without access.
        NodeEvent::FileActivity {
            server_id: mine.id,
            user_id: Some(stranger.id),
            action: "file.delete".into(),
            path: "world".into(),
            bytes: 0,
        },
    ];
    for event in lies {
        let frame = AgentFrame::Event { event };
        liar.send(Message::Text(serde_json::to_string(&frame).expect("json").into())).await.expect("lie");
    }
    // The same socket proves the lies were read: a true report behind them arrives.
    let truth = NodeEvent::StateChanged {
        server_id: mine.id,
        from: ServerState::Stopped,
        to: ServerState::Crashed,
        reason: None,
        at: chrono::Utc::now(),
    };
    liar.send(Message::Text(serde_json::to_string(&AgentFrame::Event { event: truth }).expect("json").into()))
        .await
        .expect("truth");
    until("the true report", async || {
        p.catalyst.get_server(&p.admin, mine.id).await.expect("get").state == ServerState::Crashed
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = p.catalyst.get_backup(&p.admin, theirs.id, backup.id).await.expect("backup");
    assert_eq!((after.status, &after.checksum, after.size_bytes), (before.status, &before.checksum, before.size_bytes));
    let query = AuditQuery { user_id: Some(stranger.id), ..Default::default() };
    let named = p.catalyst.audit_logs(&p.admin, &query, Page::default()).await.expect("audit");
    assert!(named.items.iter().all(|e| !e.action.starts_with("file.")), "{:?}", named.items);
    let restored = AuditQuery { action: Some("backup.restored".into()), ..Default::default() };
    assert_eq!(p.catalyst.audit_logs(&p.admin, &restored, Page::default()).await.expect("audit").total, 0);
}
