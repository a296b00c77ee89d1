//! Deadlines and connection limits of the HTTP edge, over real sockets: stalled and trickled
//! bodies answer 408, idle keep-alive connections close, a client IP holds at most so many
//! connections, and neither uploads that keep moving nor WebSockets are cut.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Method;
use catalyst_http::HttpConfig;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::api::Api;

/// Far longer than any deadline under test: reaching it means the server never ended.
const GUARD: Duration = Duration::from_secs(20);

/// Short deadlines, so a test waits about a second.
fn quick() -> HttpConfig {
    HttpConfig {
        rate_limits: catalyst_http::limits::RateLimits::unlimited(),
        header_timeout: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        json_body_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

async fn serve(app: axum::Router, config: &HttpConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = config.clone();
    tokio::spawn(async move { catalyst_http::serve_with(listener, app, std::future::pending(), &config).await });
    addr
}

async fn plane(config: &HttpConfig) -> (SocketAddr, tempfile::TempDir) {
    let w = catalyst_runtime::testing::TestWorld::sqlite().await.build().await;
    (serve(catalyst_http::router_with(w.catalyst, Some(w.hub), config), config).await, w.dir)
}

/// Everything the server sends until it closes (a reset counts as the end).
async fn until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(GUARD, read).await.expect("the server never ended the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// One whole response (headers and a `content-length` body) on a connection that stays open.
async fn response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed mid-response: {}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(GUARD, read).await.expect("no response")
}

fn health(addr: SocketAddr) -> String {
    format!("GET /api/health HTTP/1.1\r\nHost: {addr}\r\n\r\n")
}

fn error_body(res: &str) -> serde_json::Value {
    let body = res.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {res}"))
}

#[tokio::test]
async fn a_json_body_that_stalls_answers_408_with_the_error_body() {
    let (addr, _dir) = plane(&quick()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("headers");
    s.write_all(br#"{"email":"#).await.expect("ten bytes");
    let res = until_closed(&mut s).await;
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    let v = error_body(&res);
    assert_eq!(v["error"]["code"], "timeout", "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");

    // A normal request on a new connection still works.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(health(addr).as_bytes()).await.expect("write");
    let res = response(&mut s).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

#[tokio::test]
async fn a_json_body_that_trickles_in_is_cut_at_the_total_deadline() {
    let config =
        HttpConfig { body_idle_timeout: Duration::from_secs(10), json_body_timeout: Duration::from_secs(1), ..quick() };
    let (addr, _dir) = plane(&config).await;
    let s = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = s.into_split();
    // 200 bytes, one every 200 ms: never idle for long, 40 s in all.
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.expect("headers");
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await
            && n > 0
        {
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server never ended the request");
    trickle.abort();
    let res = String::from_utf8_lossy(&out);
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    assert_eq!(error_body(&res)["error"]["code"], "timeout", "{res}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (addr, _dir) = plane(&quick()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for _ in 0..2 {
        s.write_all(health(addr).as_bytes()).await.expect("write");
        let res = response(&mut s).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }
    // Nothing more is sent: the server ends the connection by itself.
    let rest = until_closed(&mut s).await;
    assert!(!rest.starts_with("HTTP/1.1 200"), "{rest}");
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_are_refused_and_freed_slots_reused() {
    let config = HttpConfig { max_connections_per_ip: 2, header_timeout: Duration::from_secs(30), ..quick() };
    let (addr, _dir) = plane(&config).await;
    let mut first = TcpStream::connect(addr).await.expect("connect");
    let mut second = TcpStream::connect(addr).await.expect("connect");
    // Both are served (so both were accepted and counted) and stay open.
    for s in [&mut first, &mut second] {
        s.write_all(health(addr).as_bytes()).await.expect("write");
        let res = response(s).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }

    let mut third = TcpStream::connect(addr).await.expect("connect");
    let res = until_closed(&mut third).await;
    assert!(res.is_empty() || res.starts_with("HTTP/1.1 429"), "{res}");
    if !res.is_empty() {
        assert_eq!(error_body(&res)["error"]["code"], "rate_limited", "{res}");
    }
    // The open ones are untouched.
    second.write_all(health(addr).as_bytes()).await.expect("write");
    assert!(response(&mut second).await.starts_with("HTTP/1.1 200"));

    // Once one closes, its slot serves a new connection.
    drop(first);
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let _ = s
            .write_all(format!("GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await;
        let res = until_closed(&mut s).await;
        if res.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the closed connection's slot was never freed: {res}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The file routes through a served router with `config`: (address, token, server id).
async fn files(config: &HttpConfig) -> (Api, SocketAddr, String, String) {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (alice, token) = api.user("alice").await;
    let body = json!({"name": "files", "owner_id": alice, "node_id": node, "template_id": template,
        "allocations": [{"ip": "0.0.0.0", "port": 25565}], "limits": {"memory_mb": 512, "disk_mb": 1024}});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let server = server["id"].as_str().expect("id").to_string();
    api.wait_state(&server, &token, "stopped").await;
    std::fs::create_dir_all(api.dir.path().join("servers").join(&server)).expect("server directory");
    let app = catalyst_http::router_with(api.catalyst.clone(), Some(api.link.clone()), config);
    let addr = serve(app, config).await;
    (api, addr, token, server)
}

fn upload_head(addr: SocketAddr, token: &str, server: &str, length: usize) -> String {
    format!(
        "POST /api/servers/{server}/files/upload?path=big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn an_upload_that_stalls_answers_408_and_one_that_keeps_moving_is_never_cut() {
    let config = HttpConfig { json_body_timeout: Duration::from_secs(1), ..quick() };
    let (_api, addr, token, server) = files(&config).await;

    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(upload_head(addr, &token, &server, 1000).as_bytes()).await.expect("headers");
    s.write_all(&[7u8; 10]).await.expect("ten bytes");
    let res = until_closed(&mut s).await;
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    assert_eq!(error_body(&res)["error"]["code"], "timeout", "{res}");

    // Longer in all than the JSON deadline, never idle for the idle one.
    let chunk = vec![1u8; 64 << 10];
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(upload_head(addr, &token, &server, chunk.len() * 8).as_bytes()).await.expect("headers");
    for _ in 0..8 {
        s.write_all(&chunk).await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let res = until_closed(&mut s).await;
    assert!(res.starts_with("HTTP/1.1 201"), "{res}");
    assert_eq!(error_body(&res)["offset"], chunk.len() * 8, "{res}");
}

#[tokio::test]
async fn a_websocket_outlives_the_header_and_body_deadlines() {
    let api = Api::new().await;
    let config = quick();
    let addr = serve(catalyst_http::router_with(api.catalyst.clone(), Some(api.link.clone()), &config), &config).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws")).await.expect("connect");
    // Silent for longer than every HTTP deadline, then used.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ws.send(Message::Text(json!({"type": "auth", "token": api.admin}).to_string().into())).await.expect("send");
    let first = tokio::time::timeout(GUARD, ws.next()).await.expect("an answer").expect("open").expect("frame");
    let v: serde_json::Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(v["type"], "auth_ok", "{v}");
}
