//! The agent endpoint: `POST /api/agent/enroll` exchanges a deployment token for a credential,
//! and `GET /api/agent/ws` is the node link. The agent dials out; after a versioned hello
//! with its credential and inventory, the control plane sends requests (with ids, answered
//! within a timeout) and the agent streams events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use catalyst_core::id::NodeId;
use catalyst_core::ports::NodeEndpoint;
use catalyst_core::protocol::{AgentFrame, ControlFrame, NodeRequest, NodeResponse, PROTOCOL_VERSION, WireError};
use catalyst_core::{Error, Result};
use catalyst_runtime::control::NodeCredential;
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Body;

/// How long a request may wait for the agent's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence before the connection is considered dead (pings go every third of it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Largest frame accepted from an agent.
pub const MAX_FRAME: usize = 4 << 20;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enroll)).routes(routes!(ws))
}

/// A deployment token for a node.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EnrollInput {
    node_id: NodeId,
    token: String,
}

/// Exchange a node's one-time deployment token for its long-lived credential (agents only).
#[utoipa::path(post, path = "/api/agent/enroll", tag = "agent", security(()), request_body = EnrollInput, responses((status = 200, body = NodeCredential)))]
async fn enroll(State(s): State<AppState>, Body(input): Body<EnrollInput>) -> ApiResult<Json<NodeCredential>> {
    Ok(Json(s.catalyst.enroll_node(input.node_id, &input.token).await?))
}

/// The node link: a WebSocket the agent dials; it authenticates in its first frame.
#[utoipa::path(get, path = "/api/agent/ws", tag = "agent", security(()), responses((status = 101, description = "Switching to the node link protocol")))]
async fn ws(State(s): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.max_message_size(MAX_FRAME).on_upgrade(move |socket| serve(s, socket))
}

/// A connected agent, as the hub sees it.
#[derive(Debug)]
struct RemoteAgent {
    tx: mpsc::Sender<ControlFrame>,
    pending: Mutex<HashMap<u64, oneshot::Sender<std::result::Result<NodeResponse, WireError>>>>,
    next_id: AtomicU64,
}

#[async_trait]
impl NodeEndpoint for RemoteAgent {
    async fn request(&self, request: NodeRequest) -> Result<NodeResponse> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        if self.tx.send(ControlFrame::Request { id, request }).await.is_err() {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return Err(Error::unavailable("the node disconnected"));
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(result)) => result.map_err(Error::from),
            Ok(Err(_)) => Err(Error::unavailable("the node disconnected")),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                Err(Error::timeout("the node did not answer in time"))
            }
        }
    }
}

async fn send(socket: &mut WebSocket, frame: &ControlFrame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn refuse(mut socket: WebSocket, error: Error) {
    let _ = send(&mut socket, &ControlFrame::Error { error: WireError::from(&error) }).await;
    let _ = socket.close().await;
}

async fn serve(state: AppState, mut socket: WebSocket) {
    // The hello, within a deadline.
    let hello = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<AgentFrame>(&text).ok(),
        _ => None,
    };
    let Some(AgentFrame::Hello { protocol, node_id, credential, inventory }) = hello else {
        return refuse(socket, Error::invalid("the first frame must be a hello")).await;
    };
    if protocol != PROTOCOL_VERSION {
        return refuse(
            socket,
            Error::invalid(format!(
                "protocol {protocol} is not supported (this control plane speaks {PROTOCOL_VERSION})"
            )),
        )
        .await;
    }
    if let Err(e) = state.catalyst.authenticate_node(node_id, &credential).await {
        return refuse(socket, e).await;
    }
    let Some(hub) = state.hub.clone() else {
        return refuse(socket, Error::unavailable("this control plane does not accept agents")).await;
    };
    if let Err(e) = state.catalyst.reconcile_node(node_id, &inventory).await {
        tracing::warn!(%node_id, error = %e, "reconcile after connect");
    }
    if !send(&mut socket, &ControlFrame::Welcome { protocol: PROTOCOL_VERSION }).await {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<ControlFrame>(256);
    let agent = Arc::new(RemoteAgent { tx, pending: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1) });
    let endpoint: Arc<dyn NodeEndpoint> = agent.clone();
    hub.attach(node_id, endpoint.clone());
    tracing::info!(%node_id, "agent connected");
    // What was decided while the node was away needs the link running: below.
    let catalyst = state.catalyst.clone();
    state.catalyst.background().spawn(async move { catalyst.settle_node(node_id, &inventory).await });
    let mut ping = tokio::time::interval(IDLE_TIMEOUT / 3);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => if !send(&mut socket, &frame).await { break },
                None => break,
            },
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = tokio::time::Instant::now();
                    match serde_json::from_str::<AgentFrame>(&text) {
                        Ok(AgentFrame::Response { id, result }) => {
                            if let Some(waiter) = agent.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                                let _ = waiter.send(result);
                            }
                        }
                        Ok(AgentFrame::Event { event }) => hub.publish(node_id, event),
                        Ok(AgentFrame::Hello { .. }) | Err(_) => {
                            tracing::warn!(%node_id, "unexpected frame from agent; closing");
                            break;
                        }
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = tokio::time::Instant::now(),
                Some(Ok(Message::Binary(_))) => break,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT || socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    hub.detach(node_id, &endpoint);
    // Fail whatever still waits: the node is gone.
    agent.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    tracing::info!(%node_id, "agent disconnected");
}
