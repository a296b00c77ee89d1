//! Authenticated `GET /api/servers/:id` through the whole stack (JWT, session check, RBAC, SQLite
//! with 1000 servers, JSON) against a bare hyper handler returning the same bytes, in the same run,
//! with the same in-process keep-alive load. Goal (issue #4): at least half the bare rate.
//!
//! Run: `cargo bench -p catalyst-http --bench http`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalyst_core::model::Limits;
use catalyst_core::testing::conformance::fixtures;
use catalyst_runtime::testing::{ADMIN_EMAIL, ADMIN_PASSWORD, TestWorld};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 16;
const SECONDS: u64 = 2;
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

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
                read_response(&mut s, &mut buf).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / SECONDS as f64
}

/// Read one `200` response (headers, then Content-Length bytes of body) into `buf`; returns
/// where the body starts and ends.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut [u8]) -> (usize, usize) {
    let mut have = 0;
    let (head_end, length) = loop {
        let n = s.read(&mut buf[have..]).await.expect("read");
        assert!(n > 0, "connection closed");
        have += n;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = &buf[..i];
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(head));
            const KEY: &[u8] = b"\r\ncontent-length:";
            let at = head.windows(KEY.len()).position(|w| w.eq_ignore_ascii_case(KEY)).expect("content-length");
            let digits = head[at + KEY.len()..].iter().skip_while(|b| **b == b' ').take_while(|b| b.is_ascii_digit());
            break (i + 4, digits.fold(0usize, |n, d| n * 10 + usize::from(d - b'0')));
        }
    };
    while have < head_end + length {
        let n = s.read(&mut buf[have..]).await.expect("read body");
        assert!(n > 0, "connection closed");
        have += n;
    }
    (head_end, head_end + length)
}

/// A bare hyper handler answering every request with `body` as JSON.
async fn bare(body: hyper::body::Bytes) -> SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        let mut res = hyper::Response::new(http_body_util::Full::new(body));
                        res.headers_mut()
                            .insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
                        Ok::<_, std::convert::Infallible>(res)
                    }
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
        let w = TestWorld::sqlite().await.with_admin().build().await;
        let token = w.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let owner = w.admin.user_id().expect("the admin is a user");
        let store = w.store.as_ref();
        let loc = fixtures::location("bench");
        catalyst_core::ports::NodeStore::create_location(store, &loc).await.expect("loc");
        let mut node = fixtures::node("bench", loc.id);
        node.memory_mb = 1 << 30;
        node.disk_mb = 1 << 40;
        catalyst_core::ports::NodeStore::create_node(store, &node).await.expect("node");
        let template = fixtures::template("bench");
        catalyst_core::ports::TemplateStore::create_template(store, &template).await.expect("template");
        let mut target = None;
        for i in 0..1000u16 {
            let mut s = fixtures::server(&format!("s{i}"), owner, node.id, template.id, 10_000 + i);
            s.limits = Limits::default();
            catalyst_core::ports::ServerStore::create_server(store, &s).await.expect("server");
            if i == 500 {
                target = Some(s.id);
            }
        }
        let target = target.expect("target");
        let config = catalyst_http::HttpConfig {
            rate_limits: catalyst_http::limits::RateLimits::unlimited(),
            ..Default::default()
        };
        let app = catalyst_http::router_with(w.catalyst.clone(), Some(w.hub.clone()), &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ours = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            catalyst_http::serve(listener, app, std::future::pending()).await;
        });
        let path = format!("/api/servers/{target}");
        let ours_req =
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n");
        // The baseline answers with the very bytes Catalyst sends for this server.
        let mut s = tokio::net::TcpStream::connect(ours).await.expect("connect");
        s.write_all(ours_req.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 64 * 1024];
        let (start, end) = read_response(&mut s, &mut buf).await;
        let bare = bare(hyper::body::Bytes::copy_from_slice(&buf[start..end])).await;
        let bare_req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        // Interleaved rounds, medians: a noisy neighbour slows both sides alike.
        load(bare, bare_req.clone()).await; // warm up
        let (mut bare_runs, mut ours_runs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            bare_runs.push(load(bare, bare_req.clone()).await);
            ours_runs.push(load(ours, ours_req.clone()).await);
        }
        let (bare_rps, ours_rps) = (median(bare_runs), median(ours_runs));
        println!(
            "\n== authenticated GET /api/servers/:id, 1000 servers, {CONNECTIONS} keep-alive connections, median of {ROUNDS} interleaved rounds =="
        );
        println!("bare hyper handler (same response bytes): {bare_rps:.0} req/s");
        println!("Catalyst (JWT + session + RBAC + rate limit + SQLite + JSON): {ours_rps:.0} req/s");
        println!("ratio: {:.2} of bare (goal >= 0.5)", ours_rps / bare_rps);
    });
}
