//! A 1 GiB upload over REST (`POST /api/servers/:id/files/upload`, streamed through the facade
//! and the node link into the server's directory) against the same bytes streamed by a bare
//! hyper handler into a file, in the same run. Reports throughput and how much this process's
//! resident memory grew during each (goal for Catalyst: under 64 MB).
//!
//! Run: `cargo bench -p catalyst-http --bench upload` (`CATALYST_BENCH_UPLOAD_MIB` sets the size).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalyst_core::model::Limits;
use catalyst_runtime::testing::{OWNER_EMAIL, PASSWORD, TestWorld};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Peak resident memory above the level at the start, sampled every 10 ms while `work` runs.
async fn peak_growth<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    let base = rss_kib();
    let peak = Arc::new(AtomicU64::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    (out, peak.load(Ordering::Relaxed).saturating_sub(base) / 1024)
}

/// Send `mib` MiB as one request body (1 MiB writes, nothing held) and return the status line.
async fn send(addr: SocketAddr, head: String, mib: usize) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    for _ in 0..mib {
        s.write_all(&chunk).await.expect("body");
    }
    let mut answer = vec![0u8; 4096];
    let n = s.read(&mut answer).await.expect("answer");
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_string()
}

/// A bare hyper handler streaming each request body into a file.
async fn bare(file: std::path::PathBuf) -> SocketAddr {
    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let file = file.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let file = file.clone();
                    async move {
                        let mut out = tokio::fs::File::create(&file).await.expect("file");
                        let mut body = req.into_body();
                        while let Some(frame) = body.frame().await {
                            if let Ok(data) = frame.expect("frame").into_data() {
                                out.write_all(&data).await.expect("write");
                            }
                        }
                        out.flush().await.expect("flush");
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Empty::<
                            hyper::body::Bytes,
                        >::new()))
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
        let mib: usize = std::env::var("CATALYST_BENCH_UPLOAD_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
        let w = TestWorld::sqlite()
            .await
            .with_daemon_config(|c| c.server_user = None)
            .with_server_limits(Limits { disk_mb: 64 * 1024, ..Limits::default() })
            .build()
            .await;
        let token = w.login(OWNER_EMAIL, PASSWORD).await;
        let id = w.server();
        let config = catalyst_http::HttpConfig {
            rate_limits: catalyst_http::limits::RateLimits::unlimited(),
            ..Default::default()
        };
        let app = catalyst_http::router_with(w.catalyst.clone(), Some(w.hub.clone()), &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ours = listener.local_addr().expect("addr");
        tokio::spawn(catalyst_http::serve(listener, app, std::future::pending()));

        let bytes = (mib * MIB) as f64;
        let bare_file = w.dir.path().join("bare.bin");
        let bare_addr = bare(bare_file.clone()).await;
        let head = |path: &str, auth: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
                mib * MIB
            )
        };
        let t = Instant::now();
        let (status, bare_growth) = peak_growth(send(bare_addr, head("/upload", ""), mib)).await;
        let bare_secs = t.elapsed().as_secs_f64();
        assert!(status.contains("200"), "bare: {status}");

        let path = format!("/api/servers/{id}/files/upload?path=big.bin");
        let auth = format!("Authorization: Bearer {token}\r\nUpload-Length: {}\r\n", mib * MIB);
        let t = Instant::now();
        let (status, ours_growth) = peak_growth(send(ours, head(&path, &auth), mib)).await;
        let ours_secs = t.elapsed().as_secs_f64();
        assert!(status.contains("201"), "catalyst: {status}");
        let stored = std::fs::metadata(w.server_dir().join("big.bin")).expect("stored");
        assert_eq!(stored.len(), (mib * MIB) as u64, "the whole file arrived");

        println!("\n== upload of {mib} MiB over HTTP, streamed to disk ==");
        println!("bare hyper handler → file:  {:7.1} MB/s, memory growth {bare_growth} MB", bytes / bare_secs / 1e6);
        println!(
            "catalyst REST upload:       {:7.1} MB/s, memory growth {ours_growth} MB (goal < 64 MB)",
            bytes / ours_secs / 1e6
        );
        println!("throughput ratio: {:.2}x of bare", bare_secs / ours_secs);
    });
}
