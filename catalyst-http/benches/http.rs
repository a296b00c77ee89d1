//! Authenticated `GET /api/servers/:id` through the whole stack (JWT, session check, RBAC, SQLite
//! with 1000 servers, JSON) against a bare hyper handler returning a fixed body, in the same run,
//! with the same in-process keep-alive load. Goal (issue #4): at least half the bare rate.
//!
//! Run: `cargo bench -p catalyst-http --bench http`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalyst_core::model::Limits;
use catalyst_core::permission::Principal;
use catalyst_core::testing::conformance::fixtures;
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::LoginInput;
use catalyst_runtime::control::auth::AuthConfig;
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::store::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 16;
const SECONDS: u64 = 3;

/// Requests per second from `CONNECTIONS` keep-alive clients sending `request` for `SECONDS`.
async fn load(addr: SocketAddr, request: String) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (done, request) = (done.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut buf = vec![0u8; 64 * 1024];
            while Instant::now() < deadline {
                s.write_all(request.as_bytes()).await.expect("write");
                // Read one response: headers, then Content-Length bytes of body.
                let mut have = 0;
                let (head_end, length) = loop {
                    let n = s.read(&mut buf[have..]).await.expect("read");
                    assert!(n > 0, "connection closed");
                    have += n;
                    if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        assert!(head.starts_with("http/1.1 200"), "{head}");
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while have < head_end + length {
                    let n = s.read(&mut buf[have..]).await.expect("read body");
                    assert!(n > 0, "connection closed");
                    have += n;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / SECONDS as f64
}

async fn bare() -> SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from_static(br#"{"id":"x","state":"running"}"#),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await.expect("sqlite"));
        let hub = NodeHub::new();
        let catalyst = Catalyst::builder()
            .store(store.clone())
            .link(Arc::new(hub.clone()))
            .auth(AuthConfig::with_secret(vec![2u8; 32]).expect("secret"))
            .build()
            .await
            .expect("build");
        catalyst.bootstrap_admin("owner@example.test", "owner", "owner-password".into()).await.expect("user");
        let owner = catalyst
            .login(LoginInput { email: "owner@example.test".into(), password: "owner-password".into() }, None)
            .await
            .expect("login");
        let _ = Principal::system();
        let loc = fixtures::location("bench");
        catalyst_core::ports::NodeStore::create_location(store.as_ref(), &loc).await.expect("loc");
        let mut node = fixtures::node("bench", loc.id);
        node.memory_mb = 1 << 30;
        node.disk_mb = 1 << 40;
        catalyst_core::ports::NodeStore::create_node(store.as_ref(), &node).await.expect("node");
        let template = fixtures::template("bench");
        catalyst_core::ports::TemplateStore::create_template(store.as_ref(), &template).await.expect("template");
        let mut target = None;
        for i in 0..1000u16 {
            let mut s = fixtures::server(&format!("s{i}"), owner.user.id, node.id, template.id, 10_000 + i);
            s.limits = Limits::default();
            catalyst_core::ports::ServerStore::create_server(store.as_ref(), &s).await.expect("server");
            if i == 500 {
                target = Some(s.id);
            }
        }
        let target = target.expect("target");
        let config = catalyst_http::HttpConfig {
            rate_limits: catalyst_http::limits::RateLimits {
                per_minute: u32::MAX,
                auth_per_minute: u32::MAX,
                health_per_minute: u32::MAX,
            },
            ..Default::default()
        };
        let app = catalyst_http::router_with(catalyst, Some(hub), &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ours = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        let bare = bare().await;

        let path = format!("/api/servers/{target}");
        let ours_req =
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\r\n", owner.access_token);
        let bare_req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        load(bare, bare_req.clone()).await; // warm up
        let bare_rps = load(bare, bare_req).await;
        let ours_rps = load(ours, ours_req).await;
        println!("\n== authenticated GET /api/servers/:id, 1000 servers, {CONNECTIONS} keep-alive connections ==");
        println!("bare hyper handler: {bare_rps:.0} req/s");
        println!("Catalyst (JWT + session + RBAC + SQLite + JSON): {ours_rps:.0} req/s");
        println!("ratio: {:.2} of bare (goal >= 0.5)", ours_rps / bare_rps);
    });
}
