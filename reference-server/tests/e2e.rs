//! End to end with real processes on real containerd: `catalyst-server` and `catalyst-agent`
//! as separate processes, everything over REST and the agent link. The agent is killed and
//! restarted (the game keeps running), then the server is restarted (the agent reconnects).
//!
//! The binaries come from `cargo build --workspace --bins` (the README's test command does it).

#[path = "../../catalyst-runtime/tests/it/images.rs"]
#[allow(dead_code)]
mod images;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use catalyst_core::ports::ContainerRuntime;
use catalyst_runtime::node::{ContainerdConfig, ContainerdRuntime};
use serde_json::{Value, json};

const IMAGE: &str = "catalyst.e2e/game:1";
const NAMESPACE: &str = "catalyst-e2e";
const GAME: &str = include_str!("../../catalyst-runtime/tests/fixtures/game.sh");

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on, never handed out twice in this run (the tests run in parallel and
/// start processes that bind later).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// One HTTP/1.1 request with a JSON body; returns status and JSON.
async fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return (0, Value::Null) };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, Value::Null);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn ok(port: u16, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, v) = http(port, method, path, Some(token), body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
    v
}

/// How often a wait asks again: 120 requests a minute stay under the server's default limit
/// of 200 per IP (a slow enrolment once ran into it at 10 a second).
const POLL: Duration = Duration::from_millis(500);

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`until`], showing what the processes logged to `logs` if the wait fails.
async fn until_logged(what: &str, secs: u64, logs: &[std::path::PathBuf], mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            let said: Vec<String> = logs
                .iter()
                .map(|log| format!("{} said:\n{}", log.display(), std::fs::read_to_string(log).unwrap_or_default()))
                .collect();
            panic!("timed out waiting for {what}; {}", said.join("\n"));
        }
        tokio::time::sleep(POLL).await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket");
    ws_send(&mut ws, json!({"type": "auth", "token": token})).await;
    ws_until(&mut ws, |v| v["type"] == "auth_ok").await;
    ws
}

async fn ws_send(ws: &mut Ws, v: Value) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(v.to_string().into())).await.expect("send");
}

async fn ws_until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.expect("the frame in time");
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                if pred(&v) {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// Wait for the control plane, then log in as the bootstrap administrator.
async fn admin_token(port: u16) -> String {
    until("catalyst-server", 20, async || http(port, "GET", "/api/health", None, None).await.0 == 200).await;
    let body = json!({"email": "admin@example.test", "password": "admin-password"});
    let (status, login) = http(port, "POST", "/api/auth/login", None, Some(body)).await;
    login["access_token"].as_str().unwrap_or_else(|| panic!("log in: {status} {login}")).to_string()
}

fn server(port: u16, data: &std::path::Path) -> Proc {
    Proc(
        Command::new(bin("catalyst-server"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                &data.to_string_lossy(),
                "--local-runtime",
                "none",
            ])
            .env_remove("CATALYST_TEST_POSTGRES_URL")
            .env("CATALYST_ADMIN_EMAIL", "admin@example.test")
            .env("CATALYST_ADMIN_PASSWORD", "admin-password")
            .stdout(Stdio::null())
            // What the server says goes to a file beside its data, shown when a wait fails.
            .stderr(std::fs::File::create(data.join("server.log")).expect("server log"))
            .spawn()
            .expect("start catalyst-server"),
    )
}

fn agent(port: u16, node: &str, token: Option<&str>, data: &std::path::Path, metrics: u16, sftp: u16) -> Proc {
    agent_on(port, node, token, data, metrics, sftp, "containerd")
}

fn agent_on(
    port: u16,
    node: &str,
    token: Option<&str>,
    data: &std::path::Path,
    metrics: u16,
    sftp: u16,
    runtime: &str,
) -> Proc {
    let mut cmd = Command::new(bin("catalyst-agent"));
    cmd.args([
        "--control-url",
        &format!("http://127.0.0.1:{port}"),
        "--node-id",
        node,
        "--data-dir",
        &data.to_string_lossy(),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics}"),
        "--sftp-listen",
        &format!("127.0.0.1:{sftp}"),
    ])
    .args(["--runtime", runtime, "--namespace", NAMESPACE])
    .stdout(Stdio::null())
    // What the agent says goes to a file, shown when a wait for it fails.
    .stderr(std::fs::File::create(data.join("agent.log")).expect("agent log"));
    if let Some(t) = token {
        cmd.args(["--deployment-token", t]);
    }
    Proc(cmd.spawn().expect("start catalyst-agent"))
}

async fn logs_contain(port: u16, token: &str, id: &str, want: &str) -> bool {
    let (_, v) = http(port, "GET", &format!("/api/servers/{id}/logs?limit=200"), Some(token), None).await;
    v.as_array().is_some_and(|l| l.iter().any(|x| x["line"] == want))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_agent_processes_on_containerd() {
    if !std::path::Path::new("/run/containerd/containerd.sock").exists() {
        assert!(std::env::var("CI").is_err(), "containerd is required in CI");
        eprintln!("!!! SKIPPED: end-to-end test (no containerd)");
        return;
    }
    // The image, imported into the agent's namespace; leftovers of interrupted runs removed.
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut cc = ContainerdConfig::new(scratch.path().join("state"));
    cc.namespace = NAMESPACE.into();
    let rt = ContainerdRuntime::connect(cc).await.expect("containerd");
    for c in rt.list().await.expect("list") {
        let _ = rt.signal(&c.id, catalyst_core::ports::Signal::Kill).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), rt.wait(&c.id)).await;
        let _ = rt.remove(&c.id).await;
    }
    let layout = images::build_game_image(scratch.path(), IMAGE, GAME);
    rt.import_oci_layout(&layout, IMAGE).await.expect("import");

    let port = free_port();
    let server_data = tempfile::tempdir().expect("tempdir");
    let agent_data = tempfile::tempdir().expect("tempdir");
    let mut cp = server(port, server_data.path());
    let t = admin_token(port).await;
    // Registration is closed by default: nobody signs up, the operator creates the customer.
    let player = json!({"email": "player@example.test", "username": "player", "password": "player-password"});
    let (status, refused) = http(port, "POST", "/api/auth/register", None, Some(player.clone())).await;
    assert_eq!(status, 403, "registration is closed: {refused}");
    let (status, customer) = http(port, "POST", "/api/admin/users", Some(&t), Some(player)).await;
    assert_eq!(status, 201, "create the customer: {customer}");

    let loc = ok(port, "POST", "/api/locations", &t, Some(json!({"name": "e2e"}))).await;
    let node = ok(port, "POST", "/api/nodes", &t, Some(json!({"name": "e2e-node", "location_id": loc["id"], "fqdn": "127.0.0.1", "memory_mb": 4096, "disk_mb": 50000}))).await;
    let node_id = node["id"].as_str().expect("id").to_string();
    let deploy = ok(port, "POST", &format!("/api/nodes/{node_id}/deployment-token"), &t, None).await;
    let template = ok(
        port,
        "POST",
        "/api/templates",
        &t,
        Some(json!({
            "name": "busybox-game", "image": IMAGE, "startup": "exec /usr/local/bin/game",
            "install": {"image": IMAGE, "script": "echo installed > /mnt/server/installed.txt"},
            "stop": {"type": "command", "value": "stop"}, "done_patterns": [{"type": "regex", "value": "^Done"}]
        })),
    )
    .await;

    let (metrics_port, sftp_port) = (free_port(), free_port());
    let mut ag = agent(port, &node_id, deploy["token"].as_str(), agent_data.path(), metrics_port, sftp_port);
    let online = async || ok(port, "GET", &format!("/api/nodes/{node_id}"), &t, None).await["online"] == true;
    let logs = [agent_data.path().join("agent.log"), server_data.path().join("server.log")];
    until_logged("the agent to enroll and connect", 30, &logs, online).await;

    let game_port = free_port();
    let srv = ok(
        port,
        "POST",
        "/api/servers",
        &t,
        Some(json!({"name": "e2e", "owner_id": customer["id"], "node_id": node_id, "template_id": template["id"],
                    "limits": {"memory_mb": 128, "disk_mb": 1024}, "allocations": [{"ip": "127.0.0.1", "port": game_port}]})),
    )
    .await;
    let id = srv["id"].as_str().expect("id").to_string();
    let state = async || {
        ok(port, "GET", &format!("/api/servers/{id}"), &t, None).await["state"].as_str().unwrap_or_default().to_string()
    };
    until("installed", 60, async || state().await == "stopped").await;
    ok(port, "POST", &format!("/api/servers/{id}/start"), &t, None).await;
    until("running", 30, async || state().await == "running").await;

    // The agent's own metrics: its servers by state and their samples, valid exposition text.
    let mut text = String::new();
    until("agent metrics", 20, async || {
        text = raw_get(metrics_port, "/metrics").await;
        text.contains("catalyst_agent_servers{state=\"running\"} 1")
            && text.contains("catalyst_agent_server_cpu_percent")
    })
    .await;
    promtool_accepts(&text);
    ok(port, "POST", &format!("/api/servers/{id}/command"), &t, Some(json!({"command": "hello e2e"}))).await;
    until("the echo", 30, async || logs_contain(port, &t, &id, "> hello e2e").await).await;

    // The agent dies hard; the game keeps running; a new agent (stored credential) re-attaches.
    let _ = ag.0.kill();
    let _ = ag.0.wait();
    assert!(
        rt.list().await.expect("list").iter().any(|c| c.id == id && c.running),
        "the game kept running without its agent"
    );
    ag = agent(port, &node_id, None, agent_data.path(), metrics_port, sftp_port);
    until_logged("the agent to come back", 30, &logs, online).await;
    assert_eq!(state().await, "running", "reported running after the agent restart");
    ok(port, "POST", &format!("/api/servers/{id}/command"), &t, Some(json!({"command": "after agent restart"}))).await;
    until("the echo after the agent restart", 30, async || logs_contain(port, &t, &id, "> after agent restart").await)
        .await;

    // Console over the client WebSocket: subscribe, command, echo.
    let ws_url = format!("ws://127.0.0.1:{port}/api/ws");
    let mut ws = ws_connect(&ws_url, &t).await;
    ws_send(&mut ws, json!({"type": "subscribe", "server_id": id})).await;
    ws_until(&mut ws, |v| v["type"] == "subscribed").await;
    ws_send(&mut ws, json!({"type": "command", "server_id": id, "command": "over the socket"})).await;
    let echo = ws_until(&mut ws, |v| v["type"] == "server_log" && v["line"] == "> over the socket").await;
    // Ask for a line that is printed while the control plane is down.
    ws_send(&mut ws, json!({"type": "command", "server_id": id, "command": "later"})).await;
    ws_until(&mut ws, |v| v["type"] == "ok").await;
    let last_seq = echo["seq"].as_i64().expect("seq");
    drop(ws);

    // The control plane restarts; the agent reconnects by itself.
    drop(cp);
    tokio::time::sleep(Duration::from_millis(2500)).await; // "later line" is printed now
    cp = server(port, server_data.path());
    let t = admin_token(port).await;
    until("the agent to reconnect", 60, async || {
        ok(port, "GET", &format!("/api/nodes/{node_id}"), &t, None).await["online"] == true
    })
    .await;
    // The line printed while the control plane was down arrives from the agent's backlog...
    until("the backlog to be stored", 30, async || logs_contain(port, &t, &id, "later line").await).await;
    // ...and the console resumes from the last sequence seen, with it.
    let mut ws = ws_connect(&ws_url, &t).await;
    ws_send(&mut ws, json!({"type": "subscribe", "server_id": id, "since": last_seq})).await;
    ws_until(&mut ws, |v| v["type"] == "subscribed").await;
    ws_until(&mut ws, |v| v["type"] == "server_log" && v["line"] == "later line").await;
    ok(port, "POST", &format!("/api/servers/{id}/command"), &t, Some(json!({"command": "after server restart"}))).await;
    until("the echo after the server restart", 30, async || {
        logs_contain(port, &t, &id, "> after server restart").await
    })
    .await;

    // The agent's SFTP server, the customer's token as the password (checked by the control
    // plane's REST API), and a backup on the agent restored over the modified file.
    let (_, login) = http(
        port,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "player@example.test", "password": "player-password"})),
    )
    .await;
    let player = login["access_token"].as_str().expect("player token").to_string();
    let local = tempfile::tempdir().expect("tempdir");
    std::fs::write(local.path().join("notes.txt"), b"original notes").expect("notes");
    let user = format!("player.{id}");
    let (done, out) = sftp_batch(sftp_port, &user, &player, local.path(), "put notes.txt\nget installed.txt\n").await;
    assert!(done, "sftp on the agent: {out}");
    assert_eq!(std::fs::read_to_string(local.path().join("installed.txt")).expect("fetched"), "installed\n");
    // The file manager over REST, through the control plane and the link to the agent (curl).
    let rest = local.path().join("rest.bin");
    std::fs::write(&rest, (0..3_000_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>()).expect("rest.bin");
    let files = format!("http://127.0.0.1:{port}/api/servers/{id}/files");
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-f", "-H", &format!("Authorization: Bearer {player}")])
            .args(args)
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    curl(&["--data-binary", &format!("@{}", rest.display()), &format!("{files}/upload?path=rest.bin")]);
    let back = curl(&[&format!("{files}/download?path=rest.bin")]);
    assert!(back == std::fs::read(&rest).expect("rest"), "a REST round trip through the agent changed the bytes");
    let listing: Value = serde_json::from_slice(&curl(&[&format!("{files}?path=/")])).expect("listing");
    assert!(listing.as_array().expect("entries").iter().any(|e| e["name"] == "rest.bin" && e["size"] == 3_000_000));

    let backup = ok(port, "POST", &format!("/api/servers/{id}/backups"), &player, Some(json!({"name": "e2e"}))).await;
    let backup_url = format!("/api/servers/{id}/backups/{}", backup["id"].as_str().expect("backup id"));
    until("the backup", 60, async || ok(port, "GET", &backup_url, &player, None).await["status"] == "completed").await;
    std::fs::write(local.path().join("notes.txt"), b"overwritten").expect("notes");
    assert!(sftp_batch(sftp_port, &user, &player, local.path(), "put notes.txt\n").await.0);
    ok(port, "POST", &format!("{backup_url}/restore"), &player, None).await;
    until("the restore", 60, async || {
        let _ = std::fs::remove_file(local.path().join("notes.txt"));
        sftp_batch(sftp_port, &user, &player, local.path(), "get notes.txt\n").await.0
            && std::fs::read(local.path().join("notes.txt")).is_ok_and(|b| b == b"original notes")
    })
    .await;
    until("stopped", 30, async || ok(port, "GET", &format!("/api/servers/{id}"), &t, None).await["state"] == "stopped")
        .await;

    // A backup killed midway (the agent dies) leaves the earlier one restorable.
    let big = local.path().join("big.bin");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c 200M /dev/urandom > {}", big.display()))
        .status()
        .expect("big file");
    assert!(made.success());
    assert!(sftp_batch(sftp_port, &user, &player, local.path(), "put big.bin\n").await.0);
    let killed =
        ok(port, "POST", &format!("/api/servers/{id}/backups"), &player, Some(json!({"name": "killed"}))).await;
    let killed_url = format!("/api/servers/{id}/backups/{}", killed["id"].as_str().expect("id"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ok(port, "GET", &killed_url, &player, None).await["status"], "in_progress", "killed midway");
    let _ = ag.0.kill();
    let _ = ag.0.wait();
    ag = agent(port, &node_id, None, agent_data.path(), metrics_port, sftp_port);
    until_logged("the agent after the kill", 30, &logs, online).await;
    until("the killed backup marked failed", 30, async || {
        ok(port, "GET", &killed_url, &player, None).await["status"] == "failed"
    })
    .await;
    let stored = agent_data.path().join("node/backups").join(&id);
    let killed_file = format!("{}.tar.zst", killed["id"].as_str().expect("id"));
    assert!(!stored.join(&killed_file).exists(), "no partial backup is visible");
    ok(port, "POST", &format!("{backup_url}/restore"), &player, None).await;
    until("the earlier backup restored", 60, async || {
        let _ = std::fs::remove_file(local.path().join("notes.txt"));
        let (done, listing) = sftp_batch(sftp_port, &user, &player, local.path(), "get notes.txt\nls\n").await;
        done && !listing.contains("big.bin")
            && std::fs::read(local.path().join("notes.txt")).is_ok_and(|b| b == b"original notes")
    })
    .await;
    let (status, _) = http(port, "DELETE", &format!("/api/servers/{id}"), Some(&t), None).await;
    assert_eq!(status, 204);
    drop(ag);
    drop(cp);
}

/// Two agent processes: a server moves from one to the other with its files and backup and
/// runs there; a transfer whose target agent is killed midway leaves it running on its source.
#[tokio::test]
async fn transfers_between_two_agent_processes() {
    let port = free_port();
    let (server_data, data_a, data_b) =
        (tempfile::tempdir().expect("cp"), tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let _cp = server(port, server_data.path());
    let t = admin_token(port).await;
    let loc = ok(port, "POST", "/api/locations", &t, Some(json!({"name": "moves"}))).await;
    let mut nodes = Vec::new();
    let mut agents = Vec::new();
    for (name, data) in [("from", &data_a), ("to", &data_b)] {
        let node = ok(port, "POST", "/api/nodes", &t, Some(json!({"name": name, "location_id": loc["id"], "fqdn": "127.0.0.1", "memory_mb": 4096, "disk_mb": 50000}))).await;
        let id = node["id"].as_str().expect("id").to_string();
        let deploy = ok(port, "POST", &format!("/api/nodes/{id}/deployment-token"), &t, None).await;
        agents.push(agent_on(port, &id, deploy["token"].as_str(), data.path(), free_port(), free_port(), "process"));
        nodes.push(id);
    }
    for (n, data) in nodes.iter().zip([&data_a, &data_b]) {
        let online = async || ok(port, "GET", &format!("/api/nodes/{n}"), &t, None).await["online"] == true;
        let logs = [data.path().join("agent.log"), server_data.path().join("server.log")];
        until_logged("the agents", 60, &logs, online).await;
    }
    let template = ok(
        port,
        "POST",
        "/api/templates",
        &t,
        Some(json!({"name": "echo", "image": "none", "startup": "echo Done; while read l; do echo \"> $l\"; done",
                    "stop": {"type": "signal", "value": "SIGTERM"}, "done_patterns": [{"type": "substring", "value": "Done"}]})),
    )
    .await;
    let me = ok(port, "GET", "/api/auth/me", &t, None).await;
    let srv = ok(
        port,
        "POST",
        "/api/servers",
        &t,
        Some(json!({"name": "mover", "owner_id": me["user"]["id"], "node_id": nodes[0], "template_id": template["id"],
                    "limits": {"memory_mb": 128, "disk_mb": 2048}, "allocations": [{"ip": "127.0.0.1", "port": free_port()}]})),
    )
    .await;
    let id = srv["id"].as_str().expect("id").to_string();
    let get = async || ok(port, "GET", &format!("/api/servers/{id}"), &t, None).await;
    until("stopped", 30, async || get().await["state"] == "stopped").await;
    let root = |data: &tempfile::TempDir| data.path().join("node/servers").join(&id);
    std::fs::create_dir_all(root(&data_a).join("world")).expect("world");
    std::fs::write(root(&data_a).join("world/level.dat"), vec![7u8; 1 << 20]).expect("level");
    let backup = ok(port, "POST", &format!("/api/servers/{id}/backups"), &t, Some(json!({}))).await;
    let backup_id = backup["id"].as_str().expect("backup").to_string();
    let backup_url = format!("/api/servers/{id}/backups/{backup_id}");
    until("the backup", 30, async || ok(port, "GET", &backup_url, &t, None).await["status"] == "completed").await;
    ok(port, "POST", &format!("/api/servers/{id}/start"), &t, None).await;
    until("running", 30, async || get().await["state"] == "running").await;

    let (status, body) =
        http(port, "POST", &format!("/api/servers/{id}/transfer"), Some(&t), Some(json!({"node_id": nodes[1]}))).await;
    assert_eq!(status, 202, "{body}");
    until("moved and running", 60, async || {
        let s = get().await;
        s["node_id"] == nodes[1].as_str() && s["state"] == "running"
    })
    .await;
    assert_eq!(std::fs::read(root(&data_b).join("world/level.dat")).expect("moved"), vec![7u8; 1 << 20]);
    assert!(!root(&data_a).exists(), "deleted on the source");
    let moved = ok(port, "GET", &backup_url, &t, None).await;
    let (_, logs) = http(port, "GET", &format!("/api/servers/{id}/logs?limit=200"), Some(&t), None).await;
    assert_eq!(moved["node_id"], nodes[1].as_str(), "the backup moved along: {moved} {logs}");
    assert!(data_b.path().join("node/backups").join(&id).join(format!("{backup_id}.tar.zst")).exists());

    // Back again, but the target (the first agent) dies midway: the server stays, running.
    std::fs::write(root(&data_b).join("big.bin"), vec![0u8; 0]).expect("big");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c 150M /dev/urandom > {}", root(&data_b).join("big.bin").display()))
        .status()
        .expect("big");
    assert!(made.success());
    let (status, body) =
        http(port, "POST", &format!("/api/servers/{id}/transfer"), Some(&t), Some(json!({"node_id": nodes[0]}))).await;
    assert_eq!(status, 202, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(agents.remove(0));
    until("rolled back and running on its source", 60, async || {
        let s = get().await;
        s["node_id"] == nodes[1].as_str() && s["state"] == "running"
    })
    .await;
    assert_eq!(std::fs::read(root(&data_b).join("world/level.dat")).expect("intact"), vec![7u8; 1 << 20]);
    assert_eq!(std::fs::metadata(root(&data_b).join("big.bin")).expect("big").len(), 150 << 20);
    let (_, logs) = http(port, "GET", &format!("/api/servers/{id}/logs?limit=200"), Some(&t), None).await;
    let text = logs.to_string();
    assert!(text.contains("transfer complete") && text.contains("transfer failed"), "steps logged: {text}");
}

/// Run an OpenSSH `sftp` batch against `port` in `dir`, the password through `sshpass`.
async fn sftp_batch(port: u16, user: &str, password: &str, dir: &std::path::Path, commands: &str) -> (bool, String) {
    let batch = dir.join("batch");
    std::fs::write(&batch, commands).expect("batch");
    let out = tokio::process::Command::new("sshpass")
        .arg("-e")
        .arg("sftp")
        .args(["-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "LogLevel=ERROR", "-P", &port.to_string(), "-b"])
        .arg(&batch)
        .arg(format!("{user}@127.0.0.1"))
        .env("SSHPASS", password)
        .current_dir(dir)
        .output()
        .await
        .expect("sshpass sftp (Debian's sshpass and openssh-client)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Configuration: a file with unknown keys and an unknown `CATALYST_*` variable are refused
/// with a message naming them; flags and environment win over the file.
#[tokio::test]
async fn configuration_is_strict_and_layered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:1\"\nlistn = \"typo\"\n").expect("write");
    let out = Command::new(bin("catalyst-server"))
        .arg("--config")
        .arg(&bad)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field `listn`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("catalyst-server"))
        .env("CATALYST_LISTN", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting CATALYST_LISTN"));

    let (file_port, env_port) = (free_port(), free_port());
    let good = dir.path().join("good.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &good,
        format!("listen = \"127.0.0.1:{file_port}\"\ndata_dir = \"{}\"\nlocal_runtime = \"none\"\n", data.display()),
    )
    .expect("write");
    let _p = Proc(
        Command::new(bin("catalyst-server"))
            .arg("--config")
            .arg(&good)
            .env_remove("CATALYST_TEST_POSTGRES_URL")
            .env("CATALYST_LISTEN", format!("127.0.0.1:{env_port}"))
            .env("CATALYST_ADMIN_PASSWORD", "admin-password")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    until("the server on the environment's port", 20, async || {
        http(env_port, "GET", "/api/health", None, None).await.0 == 200
    })
    .await;
    assert!(data.join("catalyst.db").exists(), "the file's data_dir applies");
    assert_eq!(http(file_port, "GET", "/api/health", None, None).await.0, 0, "the file's port lost to the environment");
}

/// The README's curl walkthrough, extracted and run as it is against a fresh catalyst-server
/// (plain processes as the local runtime, so no image pull is needed).
#[tokio::test]
async fn readme_quickstart_runs_as_written() {
    let readme = include_str!("../../README.md");
    let start = readme.find("<!-- quickstart:begin -->").expect("quickstart block");
    let end = readme.find("<!-- quickstart:end -->").expect("quickstart end");
    let block = &readme[start..end];
    let script = block.split_once("```sh\n").and_then(|(_, rest)| rest.rsplit_once("```")).expect("sh block").0;

    let port = free_port();
    let data = tempfile::tempdir().expect("tempdir");
    let _server = Proc(
        Command::new(bin("catalyst-server"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", &data.path().to_string_lossy()])
            .args(["--local-runtime", "process"])
            .env_remove("CATALYST_TEST_POSTGRES_URL")
            .env("CATALYST_ADMIN_PASSWORD", "quickstart-password")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start catalyst-server"),
    );
    until("catalyst-server", 20, async || http(port, "GET", "/api/health", None, None).await.0 == 200).await;
    let out = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("CATALYST", format!("http://127.0.0.1:{port}"))
        .env("PASSWORD", "quickstart-password")
        .output()
        .await
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the walkthrough failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("you said: hello"), "{stdout}");
}

/// The body of `GET path` on 127.0.0.1:`port` ("" when it does not answer).
async fn raw_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return String::new() };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// `promtool check metrics` accepts `text` (Debian's prometheus package; required in CI).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var("CI").is_err(), "promtool is required in CI");
        eprintln!("!!! SKIPPED: promtool check (install Debian's prometheus package)");
        return;
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
