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
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

struct Plane {
    catalyst: Catalyst,
    base: String,
    admin: Principal,
    _dir: tempfile::TempDir,
}

async fn plane() -> Plane {
    let (catalyst, hub, dir) = crate::support::control_plane().await;
    let addr = crate::support::serve(catalyst_http::router(catalyst.clone(), Some(hub))).await;
    Plane { catalyst, base: format!("http://{addr}"), admin: Principal::system(), _dir: dir }
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
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon =
        NodeDaemon::new(n1.id, Arc::new(FakeRuntime::new()), Arc::new(SystemClock), DaemonConfig::new(dir.path()));
    let (handle, stop) = agent(&p, n1.id, &credential, daemon.clone());
    until("the agent to connect", async || p.catalyst.node_online(n1.id)).await;

    let owner = p
        .catalyst
        .bootstrap_admin("owner@example.test", "owner", "owner-password".into())
        .await
        .expect("user")
        .expect("new");
    let template = p.catalyst.create_template(&p.admin, crate::support::game_template("game")).await.expect("template");
    let server = p
        .catalyst
        .create_server(
            &p.admin,
            NewServer {
                name: "s".into(),
                description: String::new(),
                owner_id: owner.id,
                node_id: n1.id,
                template_id: template.id,
                variables: Default::default(),
                limits: Default::default(),
                allocations: vec![Allocation { ip: "0.0.0.0".into(), port: 25565, primary: true }],
                restart_policy: Default::default(),
            },
        )
        .await
        .expect("server");
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
