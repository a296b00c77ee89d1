//! Serving the router: HTTP/1.1 with upgrades (the WebSockets), `TCP_NODELAY` (console lines
//! and small JSON answers leave at once), the peer address for rate limits and audit entries,
//! a deadline on request headers that also closes idle keep-alive connections (slow-loris
//! clients), a cap on open connections per client IP, and graceful shutdown that lets open
//! requests finish. Leaner per request than `axum::serve`'s protocol-sniffing connection.
//! Request bodies have their own deadlines, in the router ([`crate::security`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::HttpConfig;

/// Longest a client may take to send a request's headers, counted from the connection's
/// opening or from the end of the previous response: so also how long an idle keep-alive
/// connection stays open (default of [`HttpConfig::header_timeout`]).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest shutdown waits for open requests and sockets before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Open connections per client IP (default of [`HttpConfig::max_connections_per_ip`]).
pub const MAX_CONNECTIONS_PER_IP: u32 = 256;

/// What a connection over the per-IP cap reads before it is closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 89\r\n\r\n\
{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many open connections from this address\"}}";

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting and give open
/// connections [`SHUTDOWN_GRACE`] to finish. Headers have [`HEADER_TIMEOUT`]; connections per
/// client IP are not capped (embedders and tools that limit elsewhere): the binaries use
/// [`serve_with`].
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    run(listener, app, shutdown, HEADER_TIMEOUT, None).await;
}

/// [`serve`] with `config`'s header deadline and cap on open connections per client IP
/// (body deadlines are the router's: pass the same config to [`crate::router_with`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    config: &HttpConfig,
) {
    run(listener, app, shutdown, config.header_timeout, Some(config.max_connections_per_ip.max(1))).await;
}

async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    header_timeout: Duration,
    max_per_ip: Option<u32>,
) {
    // `stop` tells connections to finish; every connection holds a `done` receiver, so
    // `done_tx.closed()` resolves when the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let open = PerIp::new(max_per_ip);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over the cap: a best-effort answer (never waits: the socket's buffer is empty) and
        // the socket closes here, with no task spawned.
        let Some(slot) = open.admit(peer.ip()) else {
            let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            tracing::debug!(%peer, "too many connections from this address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        // The slot travels with the socket, so an upgraded connection (a WebSocket) keeps
        // counting until it closes.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(Counted { stream, _slot: slot }), service)
            .with_upgrades();
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let _done = done;
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop((listener, done_rx));
    let _ = stop_tx.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, done_tx.closed()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

/// Open connections by client IP.
type OpenByIp = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// The most connections per client IP and those open; `None` when uncapped.
#[derive(Debug, Clone)]
struct PerIp(Option<(u32, OpenByIp)>);

impl PerIp {
    fn new(max: Option<u32>) -> Self {
        Self(max.map(|m| (m, Arc::default())))
    }

    /// A slot for one more connection from `ip`, `None` when it already has the maximum.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let Some((max, open)) = &self.0 else { return Some(Slot(None)) };
        // An IPv4 client of a dual-stack listener counts as its IPv4 address.
        let ip = ip.to_canonical();
        let mut map = open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= *max {
            return None;
        }
        *n += 1;
        Some(Slot(Some((ip, open.clone()))))
    }
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
struct Slot(Option<(IpAddr, OpenByIp)>);

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((ip, open)) = self.0.take() else { return };
        let mut map = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// A socket holding its connection's [`Slot`].
#[derive(Debug)]
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "rate_limited");
    }

    #[test]
    fn slots_are_counted_per_ip_and_freed() {
        let open = PerIp::new(Some(2));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        let (s1, s2) = (open.admit(a).expect("first"), open.admit(mapped).expect("second"));
        assert!(open.admit(a).is_none(), "a third from the same address");
        assert!(open.admit("10.0.0.2".parse().expect("ip")).is_some(), "another address");
        drop(s1);
        let s3 = open.admit(a).expect("a freed slot");
        drop((s2, s3));
        assert!(open.0.as_ref().expect("capped").1.lock().expect("lock").is_empty(), "nothing left behind");
        assert!(PerIp::new(None).admit(a).is_some());
    }
}
