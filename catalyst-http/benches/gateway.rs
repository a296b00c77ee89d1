//! The client WebSocket gateway against raw tokio-tungstenite on loopback, in the same run:
//!
//! 1. Console line latency: a line printed by a container on a remote node (its agent on the
//!    node-link WebSocket) until a client subscribed on `/api/ws` reads it, at 1000 lines/s;
//!    against the same lines written to one raw WebSocket. Goal (issue #4): p99 added < 1 ms.
//! 2. Memory per 1000 idle client sockets, authenticated and subscribed, on the server's side
//!    (the clients live in a child process); against a raw tokio-tungstenite server with its
//!    default settings. Goal: under 30 MB.
//!
//! Run: `cargo bench -p catalyst-http --bench gateway`

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_core::clock::SystemClock;
use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::testing::FakeRuntime;
use catalyst_http::agent_client::{self, AgentConfig};
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::{GrantAccess, LoginInput, NewLocation, NewNode, RegisterInput};
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing::{self, ADMIN_EMAIL, ADMIN_PASSWORD, TestWorld};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const LINES: usize = 3000;
const SOCKETS: usize = 1000;
const CLIENT_URL: &str = "CATALYST_BENCH_CLIENT_URL";
const CLIENT_TOKENS: &str = "CATALYST_BENCH_CLIENT_TOKENS";
const CLIENT_SERVER: &str = "CATALYST_BENCH_CLIENT_SERVER";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn main() {
    if let Ok(url) = std::env::var(CLIENT_URL) {
        return clients(&url);
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let plane = Plane::start().await;
        latency(&plane).await;
        memory(&plane).await;
    });
}

/// A control plane on loopback with one remote node (agent over the real link, fake runtime)
/// and one running server.
struct Plane {
    catalyst: Catalyst,
    base: String,
    fake: Arc<FakeRuntime>,
    server: ServerId,
    admin_token: String,
    _world: TestWorld,
}

impl Plane {
    async fn start() -> Self {
        let w = TestWorld::sqlite().await.with_admin().build().await;
        let (catalyst, system) = (w.catalyst.clone(), Principal::system());
        let config = catalyst_http::HttpConfig {
            rate_limits: catalyst_http::limits::RateLimits::unlimited(),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = catalyst_http::router_with(catalyst.clone(), Some(w.hub.clone()), &config);
        tokio::spawn(catalyst_http::serve(listener, app, std::future::pending()));
        let base = format!("http://{addr}");

        // The node is remote: its daemon is reached over the agent link, not attached in-process.
        let loc = catalyst
            .create_location(&system, NewLocation { name: "loc".into(), description: String::new() })
            .await
            .expect("location");
        let node = NewNode {
            name: "n1".into(),
            location_id: loc.id,
            fqdn: "n1.example.test".into(),
            memory_mb: 1 << 20,
            disk_mb: 1 << 30,
            overallocate_percent: 0,
        };
        let node = catalyst.create_node(&system, node).await.expect("node");
        let token = catalyst.create_deployment_token(&system, node.id).await.expect("token");
        let credential = agent_client::enroll(&base, node.id, &token.token).await.expect("enroll");
        let fake = Arc::new(FakeRuntime::new());
        let node_dir = w.dir.path().join("node");
        let daemon = NodeDaemon::new(node.id, fake.clone(), Arc::new(SystemClock), DaemonConfig::new(node_dir));
        let agent = AgentConfig {
            url: format!("{}/api/agent/ws", base.replace("http://", "ws://")),
            node_id: node.id,
            credential,
        };
        tokio::spawn(agent_client::run(agent, daemon, std::future::pending()));
        while !catalyst.node_online(node.id) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let template = catalyst.create_template(&system, testing::game_template()).await.expect("template");
        let admin = w.admin.user_id().expect("the admin is a user");
        let server = testing::new_server(admin, node.id, template.id);
        let server = catalyst.create_server(&system, server).await.expect("server").id;
        w.wait_for_state(server, ServerState::Stopped).await;
        catalyst.start_server(&system, server).await.expect("start");
        w.wait_for_state(server, ServerState::Running).await;
        let admin_token = w.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        Self { catalyst, base, fake, server, admin_token, _world: w }
    }

    fn ws_url(&self) -> String {
        format!("{}/api/ws", self.base.replace("http://", "ws://"))
    }
}

async fn connect(url: &str) -> Socket {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.expect("connect");
    ws
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        match ws.next().await.expect("open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).expect("json"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Authenticate and subscribe, as a dashboard does.
async fn open_console(url: &str, token: &str, server: &str) -> Socket {
    let mut ws = connect(url).await;
    ws.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "auth_ok");
    if !server.is_empty() {
        let subscribe = json!({"type": "subscribe", "server_id": server});
        ws.send(Message::Text(subscribe.to_string().into())).await.expect("send");
        loop {
            if next_json(&mut ws).await["type"] == "subscribed" {
                break;
            }
        }
    }
    ws
}

/// Print `LINES` lines at 1000/s with `print`, each carrying its send time; `ws` reads them.
async fn measure(base: Instant, ws: &mut Socket, print: impl Fn(String) + Send + 'static) -> Vec<Duration> {
    let printer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for _ in 0..LINES {
            tick.tick().await;
            print(format!("t={}", base.elapsed().as_nanos()));
        }
    });
    let mut samples = Vec::with_capacity(LINES);
    while samples.len() < LINES {
        let Message::Text(text) = ws.next().await.expect("open").expect("frame") else { continue };
        let received = base.elapsed();
        // Raw lines arrive as they are; the gateway wraps them in a `server_log` event.
        let event: Option<Value> = serde_json::from_str(&text).ok();
        let line = event.as_ref().and_then(|v| v.get("line")).and_then(Value::as_str).unwrap_or(&text);
        if let Some(sent) = line.strip_prefix("t=").and_then(|t| t.parse::<u64>().ok()) {
            samples.push(received.saturating_sub(Duration::from_nanos(sent)));
        }
    }
    printer.await.expect("printer");
    samples.sort();
    samples
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(plane: &Plane) {
    let base = Instant::now();

    // Baseline: the same lines over one raw WebSocket on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_url = format!("ws://{}", listener.local_addr().expect("addr"));
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut ws = tokio_tungstenite::accept_async(stream).await.expect("handshake");
        while let Some(line) = line_rx.recv().await {
            ws.send(Message::Text(line.into())).await.expect("send");
        }
    });
    let mut raw = connect(&raw_url).await;
    let raw_samples = measure(base, &mut raw, move |l| line_tx.send(l).expect("raw line")).await;

    // Catalyst: container stdout → node daemon → agent link → control plane → gateway → client.
    let mut ours = open_console(&plane.ws_url(), &plane.admin_token, &plane.server.to_string()).await;
    let (fake, id) = (plane.fake.clone(), plane.server.to_string());
    let ours_samples = measure(base, &mut ours, move |l| fake.print(&id, &l).expect("print")).await;

    println!("\n== console line latency, {LINES} lines at 1000 lines/s on loopback ==");
    for (name, s) in [("raw WebSocket", &raw_samples), ("Catalyst agent → /api/ws", &ours_samples)] {
        println!("{name:<28} p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}", pct(s, 0.5), pct(s, 0.99), s[s.len() - 1]);
    }
    let added = pct(&ours_samples, 0.99).saturating_sub(pct(&raw_samples, 0.99));
    println!("p99 added by Catalyst: {added:.3?} (goal < 1 ms)");
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("rss");
    pages * 4096
}

/// Server-side memory for `SOCKETS` client sockets opened by a child process.
async fn held_by_clients(url: &str, tokens: &[String], server: &str) -> u64 {
    let file = tempfile::NamedTempFile::new().expect("tokens file");
    std::fs::write(file.path(), tokens.join("\n")).expect("write tokens");
    let before = rss_bytes();
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .env(CLIENT_URL, url)
        .env(CLIENT_TOKENS, file.path())
        .env(CLIENT_SERVER, server)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("client process");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line).await.expect("ready line");
    assert_eq!(line.trim(), "ready", "the client process failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    drop(child.stdin.take());
    child.wait().await.expect("client exit");
    after.saturating_sub(before)
}

async fn memory(plane: &Plane) {
    // Users, each allowed 30 sockets, each with console access to the server.
    let system = Principal::system();
    let mut tokens = Vec::with_capacity(SOCKETS);
    let per_user = catalyst_http::gateway::MAX_SOCKETS_PER_USER;
    for u in 0..SOCKETS.div_ceil(per_user) {
        let email = format!("viewer{u}@example.test");
        let input =
            RegisterInput { email: email.clone(), username: format!("viewer{u}"), password: "viewer-password".into() };
        let user = plane.catalyst.register(input).await.expect("register");
        let grant =
            GrantAccess { user_id: user.id, permissions: vec![Permission::ServerRead, Permission::ConsoleRead] };
        plane.catalyst.grant_access(&system, plane.server, grant).await.expect("grant");
        let login = LoginInput { email, password: "viewer-password".into() };
        let token = plane.catalyst.login(login, None).await.expect("login").access_token;
        tokens.extend(std::iter::repeat_n(token, per_user.min(SOCKETS - tokens.len())));
    }
    let ours = held_by_clients(&plane.ws_url(), &tokens, &plane.server.to_string()).await;

    // Baseline: a raw tokio-tungstenite server with its default buffers, answering the same
    // handshake frames.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_url = format!("ws://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    let answer = if v["type"] == "auth" { "auth_ok" } else { "subscribed" };
                    if ws.send(Message::Text(json!({"type": answer}).to_string().into())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let raw = held_by_clients(&raw_url, &tokens, &plane.server.to_string()).await;

    let mb = |b: u64| b as f64 / (1 << 20) as f64 * 1000.0 / SOCKETS as f64;
    println!("\n== server memory for {SOCKETS} idle client sockets (authenticated, subscribed) ==");
    println!("raw tokio-tungstenite, default buffers: {:.1} MB per 1000", mb(raw));
    println!("Catalyst /api/ws: {:.1} MB per 1000 (goal < 30 MB)", mb(ours));
    println!("ratio: {:.2} of raw", mb(ours) / mb(raw).max(f64::MIN_POSITIVE));
}

/// Child-process mode: open one authenticated, subscribed socket per token, say `ready`, and
/// hold them until stdin closes.
fn clients(url: &str) {
    let tokens = std::fs::read_to_string(std::env::var(CLIENT_TOKENS).expect("tokens")).expect("read tokens");
    let server = std::env::var(CLIENT_SERVER).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    rt.block_on(async {
        let mut held = Vec::new();
        for token in tokens.lines() {
            held.push(open_console(url, token, &server).await);
        }
        let mut out = std::io::stdout();
        writeln!(out, "ready").expect("stdout");
        out.flush().expect("flush");
        // Keep reading (pings, events) so the server never sees a dead peer, until stdin closes.
        let drain = async {
            let mut sockets: futures::stream::SelectAll<_> = held.into_iter().collect();
            while sockets.next().await.is_some() {}
        };
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().lock().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        tokio::select! {
            () = drain => {}
            _ = stdin_closed => {}
        }
    });
}
