//! Embed the Catalyst control plane in your own program, on SQLite, with an in-process node
//! running the fake container runtime (swap in `ContainerdRuntime` on a real host).
//!
//! Run: `cargo run -p examples --example embed_sqlite`

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use catalyst_core::clock::SystemClock;
use catalyst_core::events::DomainEvent;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{DonePattern, InstallScript, Limits, StopAction};
use catalyst_core::testing::FakeRuntime;
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::auth::{AuthConfig, random_secret};
use catalyst_runtime::control::{LoginInput, NewLocation, NewNode, NewServer, NewTemplate};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::store::SqliteStore;
use tokio::sync::broadcast;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("catalyst-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(&dir.join("catalyst.db")).await?;
    let link = NodeHub::new();
    let catalyst = Catalyst::builder()
        .store(Arc::new(store))
        .link(Arc::new(link.clone()))
        .auth(AuthConfig::with_secret(random_secret())?)
        .build()
        .await?;

    // An operator account, then a login exactly as the HTTP API would do it.
    catalyst.bootstrap_admin("admin@example.com", "admin", "correct horse battery".into()).await?;
    let login = catalyst
        .login(LoginInput { email: "admin@example.com".into(), password: "correct horse battery".into() }, None)
        .await?;
    let admin = catalyst.authenticate(&login.access_token, None).await?;
    println!("logged in as {}", login.user.email);

    let location =
        catalyst.create_location(&admin, NewLocation { name: "eu-west".into(), description: String::new() }).await?;
    let node = catalyst
        .create_node(
            &admin,
            NewNode {
                name: "node-1".into(),
                location_id: location.id,
                fqdn: "node-1.example.com".into(),
                memory_mb: 8192,
                disk_mb: 100_000,
                overallocate_percent: 0,
            },
        )
        .await?;
    // The node's agent, in this process: a daemon over a container runtime.
    let runtime = Arc::new(FakeRuntime::new());
    link.add_node(NodeDaemon::new(node.id, runtime, Arc::new(SystemClock), DaemonConfig::new(dir.join("node"))));

    let template = catalyst
        .create_template(
            &admin,
            NewTemplate {
                name: "echo-server".into(),
                description: "Echoes commands, exits on stop".into(),
                image: "catalyst/echo:latest".into(),
                startup: "./server --port {{SERVER_PORT}}".into(),
                env: Default::default(),
                variables: vec![],
                install: Some(InstallScript {
                    image: "catalyst/installer:latest".into(),
                    entrypoint: "/bin/sh".into(),
                    script: "echo installing".into(),
                }),
                stop: StopAction::Command("stop".into()),
                done_patterns: vec![DonePattern::Substring("Done".into())],
                ..Default::default()
            },
        )
        .await?;

    let mut events = catalyst.events().subscribe();
    let server = catalyst
        .create_server(
            &admin,
            NewServer {
                name: "my-first-server".into(),
                description: String::new(),
                owner_id: login.user.id,
                node_id: Some(node.id),
                deploy: None,
                external_id: None,
                template_id: template.id,
                variables: Default::default(),
                limits: Limits { memory_mb: 1024, ..Limits::default() },
                allocations: vec![catalyst_core::model::Allocation {
                    ip: "0.0.0.0".into(),
                    port: 25565,
                    primary: true,
                }],
                restart_policy: Default::default(),
                image: None,
                startup_command: None,
            },
        )
        .await?;
    println!("created server {} ({})", server.name, server.state);
    wait_for(&mut events, ServerState::Stopped).await?;

    catalyst.start_server(&admin, server.id).await?;
    wait_for(&mut events, ServerState::Running).await?;

    catalyst.send_command(&admin, server.id, "say hello").await?;
    wait_for_line(&mut events, "> say hello").await?;

    catalyst.stop_server(&admin, server.id).await?;
    wait_for(&mut events, ServerState::Stopped).await?;

    let stored = catalyst.get_server(&admin, server.id).await?;
    println!("final state in the store: {}", stored.state);
    if stored.state != ServerState::Stopped {
        bail!("expected the stored state to be stopped");
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Print events until the server reaches `target`.
async fn wait_for(events: &mut broadcast::Receiver<DomainEvent>, target: ServerState) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await.context("event bus closed")? {
                DomainEvent::ServerStateUpdate { from, to, .. } => {
                    println!("state: {from} -> {to}");
                    if to == target {
                        return Ok(());
                    }
                }
                DomainEvent::ServerLog(l) => println!("console [{}]: {}", l.stream.as_str(), l.line),
                DomainEvent::InstallationProgress { line, .. } => println!("install: {line}"),
                _ => {}
            }
        }
    })
    .await
    .with_context(|| format!("timed out waiting for {target}"))?
}

/// Print events until a console line equals `want`.
async fn wait_for_line(events: &mut broadcast::Receiver<DomainEvent>, want: &str) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let DomainEvent::ServerLog(l) = events.recv().await.context("event bus closed")? {
                println!("console [{}]: {}", l.stream.as_str(), l.line);
                if l.line == want {
                    return Ok(());
                }
            }
        }
    })
    .await
    .with_context(|| format!("timed out waiting for {want:?}"))?
}
