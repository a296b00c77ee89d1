//! The agent side of the node link: dial the control plane, say hello with the credential and
//! the inventory, answer requests with the local `NodeDaemon`, stream its events, and reconnect
//! with jittered exponential back-off. Containers keep running while disconnected.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalyst_core::id::NodeId;
use catalyst_core::protocol::{AgentFrame, ControlFrame, NodeRequest, NodeResponse, PROTOCOL_VERSION, WireError};
use catalyst_core::{Error, ErrorKind, Result};
use catalyst_runtime::node::NodeDaemon;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Where to connect and as whom.
#[derive(Clone)]
pub struct AgentConfig {
    /// `ws://` or `wss://` URL of `/api/agent/ws`.
    pub url: String,
    /// This node.
    pub node_id: NodeId,
    /// The credential from enrollment.
    pub credential: String,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig").field("url", &self.url).field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// Where events go: the live session, or (while disconnected) a bounded backlog that is sent
/// first on reconnect, so consoles resume without a gap after short outages.
#[derive(Debug, Default)]
struct Outlet {
    session: Option<mpsc::Sender<AgentFrame>>,
    backlog: std::collections::VecDeque<AgentFrame>,
}

/// Events kept while disconnected; older ones are dropped first.
const BACKLOG: usize = 10_000;

type Outbox = Arc<Mutex<Outlet>>;

/// Exchange a deployment token for this node's credential (`POST /api/agent/enroll`).
pub async fn enroll(base_url: &str, node_id: NodeId, token: &str) -> Result<String> {
    let url = format!("{}/api/agent/enroll", base_url.trim_end_matches('/'));
    let body = serde_json::json!({"node_id": node_id, "token": token}).to_string();
    let (status, text) = http_post(&url, &body).await?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| Error::unavailable("the control plane answered garbage"))?;
    if status != 200 {
        let message = v["error"]["message"].as_str().unwrap_or("enrollment failed").to_string();
        let kind = match status {
            401 => ErrorKind::Unauthenticated,
            400 | 404 | 422 => ErrorKind::InvalidInput,
            // Busy, rate-limited or failing for now: worth another try.
            _ => ErrorKind::Unavailable,
        };
        return Err(Error::new(kind, message));
    }
    v["token"].as_str().map(str::to_string).ok_or_else(|| Error::unavailable("no credential in the answer"))
}

/// [`enroll`], tried again with back-off while the control plane is unreachable, busy or
/// failing; a refused or malformed request ends it at once. A node started beside a control
/// plane that is still coming up (or briefly overloaded) then enrolls instead of exiting.
pub async fn enroll_with_retry(base_url: &str, node_id: NodeId, token: &str) -> Result<String> {
    let mut failures: u32 = 0;
    loop {
        match enroll(base_url, node_id, token).await {
            Ok(credential) => return Ok(credential),
            Err(e) if matches!(e.kind(), ErrorKind::Unauthenticated | ErrorKind::InvalidInput) => return Err(e),
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "enrollment failed; trying again");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

/// A minimal HTTP/1.1 POST over a plain TCP connection (enrollment is one request).
async fn http_post(url: &str, body: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::invalid("enrollment needs an http:// URL (put TLS in front of it)"))?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| Error::unavailable(format!("cannot reach {authority}")).with_source(e))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| Error::unavailable("enroll request").with_source(e))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(|e| Error::unavailable("enroll answer").with_source(e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Run the link until `shutdown` resolves or the control plane refuses the credential.
pub async fn run(
    config: AgentConfig,
    daemon: NodeDaemon,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let outbox: Outbox = Arc::default();
    let mut events = daemon.subscribe();
    let forward = outbox.clone();
    let forwarder = tokio::spawn(async move {
        while let Some((_, event)) = events.next().await {
            let frame = AgentFrame::Event { event };
            let mut out = forward.lock().unwrap_or_else(|p| p.into_inner());
            let frame = match &out.session {
                Some(tx) => match tx.try_send(frame) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f)) => f,
                },
                None => frame,
            };
            if out.backlog.len() >= BACKLOG {
                out.backlog.pop_front();
            }
            out.backlog.push_back(frame);
        }
    });
    let connect = async {
        let mut failures: u32 = 0;
        loop {
            match session(&config, &daemon, &outbox).await {
                Ok(()) => failures = 0,
                Err(e) if e.kind() == ErrorKind::Unauthenticated || e.kind() == ErrorKind::InvalidInput => {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control plane link lost");
                    failures = failures.saturating_add(1);
                }
            }
            outbox.lock().unwrap_or_else(|p| p.into_inner()).session = None;
            tokio::time::sleep(backoff(failures)).await;
        }
    };
    let result = tokio::select! {
        r = connect => r,
        () = shutdown => Ok(()),
    };
    forwarder.abort();
    result
}

/// 0.25 s doubling to 30 s, with ±50 % jitter so a fleet does not reconnect in lockstep.
fn backoff(failures: u32) -> Duration {
    let base = 250u64.saturating_mul(1u64 << failures.min(7)).min(30_000);
    let jitter = rand::rng().random_range(base / 2..=base + base / 2);
    Duration::from_millis(jitter)
}

async fn session(config: &AgentConfig, daemon: &NodeDaemon, outbox: &Outbox) -> Result<()> {
    // No Nagle: console lines and answers are small and must leave at once.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(config.url.as_str(), None, true)
        .await
        .map_err(|e| Error::unavailable(format!("cannot connect to {}", config.url)).with_source(e))?;
    let inventory = match daemon.handle(NodeRequest::Inventory).await? {
        NodeResponse::Inventory { servers } => servers,
        _ => Vec::new(),
    };
    let hello = AgentFrame::Hello {
        protocol: PROTOCOL_VERSION,
        node_id: config.node_id,
        credential: config.credential.clone(),
        inventory,
    };
    ws.send(Message::Text(serde_json::to_string(&hello).unwrap_or_default().into()))
        .await
        .map_err(|e| Error::unavailable("hello").with_source(e))?;
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<ControlFrame>(&text) {
            Ok(ControlFrame::Welcome { .. }) => {}
            Ok(ControlFrame::Error { error }) => return Err(Error::from(error)),
            _ => return Err(Error::unavailable("unexpected answer to hello")),
        },
        _ => return Err(Error::unavailable("no answer to hello")),
    }
    tracing::info!(url = %config.url, "connected to the control plane");
    let (tx, mut rx) = mpsc::channel::<AgentFrame>(4096);
    // What happened while we were away goes first, in order.
    // Take the backlog and open the session under one lock: later events queue behind it.
    let backlog: Vec<AgentFrame> = {
        let mut out = outbox.lock().unwrap_or_else(|p| p.into_inner());
        out.session = Some(tx.clone());
        out.backlog.drain(..).collect()
    };
    for frame in backlog {
        let text = serde_json::to_string(&frame).unwrap_or_default();
        ws.send(Message::Text(text.into())).await.map_err(|e| Error::unavailable("send").with_source(e))?;
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { return Ok(()) };
                let text = serde_json::to_string(&frame).unwrap_or_default();
                ws.send(Message::Text(text.into())).await.map_err(|e| Error::unavailable("send").with_source(e))?;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ControlFrame>(&text) {
                    Ok(ControlFrame::Request { id, request }) => {
                        let (daemon, tx) = (daemon.clone(), tx.clone());
                        tokio::spawn(async move {
                            let result = daemon.handle(request).await.map_err(|e| WireError::from(&e));
                            let _ = tx.send(AgentFrame::Response { id, result }).await;
                        });
                    }
                    Ok(ControlFrame::Error { error }) => return Err(Error::from(error)),
                    Ok(ControlFrame::Welcome { .. }) | Err(_) => return Err(Error::unavailable("unexpected frame")),
                },
                Some(Ok(Message::Close(_))) | None => return Err(Error::unavailable("the control plane closed the link")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Error::unavailable("link error").with_source(e)),
            },
        }
    }
}

/// SFTP logins on an agent, checked by the control plane's REST API with the login's password
/// as the bearer credential.
#[derive(Debug, Clone)]
pub struct RemoteSftpAuthority {
    base: String,
    client: reqwest::Client,
}

impl RemoteSftpAuthority {
    /// Ask the control plane at `control_url`.
    pub fn new(control_url: &str) -> Self {
        catalyst_runtime::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { base: control_url.trim_end_matches('/').to_string(), client }
    }
}

#[async_trait::async_trait]
impl catalyst_core::ports::SftpAuthority for RemoteSftpAuthority {
    async fn file_access(
        &self,
        server: catalyst_core::id::ServerId,
        credential: &str,
    ) -> catalyst_core::Result<catalyst_core::ports::FileAccess> {
        let url = format!("{}/api/servers/{server}/files/access", self.base);
        let res = self
            .client
            .get(&url)
            .bearer_auth(credential)
            .send()
            .await
            .map_err(|e| catalyst_core::Error::unavailable(format!("the control plane is unreachable: {e}")))?;
        let status = res.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(catalyst_core::Error::unavailable(format!("the control plane answered {status}")));
        }
        if !status.is_success() {
            return Err(catalyst_core::Error::unauthenticated(format!("refused by the control plane ({status})")));
        }
        res.json()
            .await
            .map_err(|e| catalyst_core::Error::unavailable(format!("bad answer from the control plane: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A control plane that answers enrollments with `answers`, one per connection, in order.
    async fn control_plane(answers: Vec<(u16, &'static str)>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                socket.write_all(answer.as_bytes()).await.expect("answer");
            }
        });
        url
    }

    #[tokio::test]
    async fn a_busy_control_plane_is_asked_again_and_a_refusal_is_final() {
        let busy = r#"{"error":{"code":"unavailable","message":"busy"}}"#;
        let url = control_plane(vec![(503, busy), (429, busy), (200, r#"{"token":"credential"}"#)]).await;
        assert_eq!(enroll_with_retry(&url, NodeId::new(), "t").await.expect("enrolled"), "credential");

        let refused = r#"{"error":{"code":"unauthenticated","message":"the deployment token is invalid or expired"}}"#;
        let url = control_plane(vec![(401, refused), (200, r#"{"token":"never asked"}"#)]).await;
        let e = enroll_with_retry(&url, NodeId::new(), "t").await.expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    }
}
