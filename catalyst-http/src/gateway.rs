//! The client WebSocket gateway, `GET /api/ws`: authenticate with an access token (and refresh
//! it on the same socket), subscribe to servers the caller may read, receive `server_log`,
//! `server_state_update`, `resource_stats` and `installation_progress`, resume a console from a
//! sequence number, send commands and power actions. Revocation reaches open sockets at once:
//! logout, password or role change and user deletion close them (4401); a lost grant drops the
//! subscription; a suspension closes the owner's socket (4409).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use catalyst_core::Error;
use catalyst_core::events::DomainEvent;
use catalyst_core::follow::{Delivery, Follow, Step};
use catalyst_core::id::{ServerId, UserId};
use catalyst_core::permission::Principal;
pub use catalyst_core::protocol::gateway::close;
use catalyst_core::protocol::gateway::{ClientFrame, PowerAction, ServerFrame};
use catalyst_runtime::api::follow::{Outcome, Sink, access, carry_out};
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;

/// Largest frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 4096;
/// Read and write buffer per socket: idle dashboards are most sockets, and tungstenite's
/// 128 KiB defaults would cost over 100 MB per 1000 of them. Writes are flushed per event.
pub const SOCKET_BUFFER: usize = 4096;
/// Sockets one user may hold open.
pub const MAX_SOCKETS_PER_USER: usize = 30;
/// Servers one socket may follow.
pub const MAX_SUBSCRIPTIONS: usize = 30;
/// Commands and power actions per second per socket.
pub const MAX_ACTIONS_PER_SECOND: u32 = 10;

/// Open sockets per user, for the cap.
#[derive(Debug, Default, Clone)]
pub struct Sockets(Arc<Mutex<HashMap<UserId, usize>>>);

impl Sockets {
    fn enter(&self, user: UserId) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user).or_default();
        if *n >= MAX_SOCKETS_PER_USER {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, user: UserId) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&user) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The client WebSocket gateway: authenticate with an access token in the first frame, then
/// subscribe to servers for `server_log`, `server_state_update`, `resource_stats` and
/// `installation_progress`, send commands and power actions.
#[utoipa::path(get, path = "/api/ws", tag = "gateway", security(()), responses((status = 101, description = "Switching to the gateway protocol")))]
pub(crate) async fn ws(State(s): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .on_upgrade(move |socket| serve(s, socket))
}

struct Session {
    principal: Principal,
    /// The access token, re-verified when the user's sessions may have been revoked.
    token: String,
    user: UserId,
    expires_at: tokio::time::Instant,
    /// The servers followed, each by its own state machine.
    follows: HashMap<ServerId, Follow>,
    tokens: u32,
    refill: tokio::time::Instant,
}

async fn send(socket: &mut WebSocket, frame: ServerFrame) -> bool {
    socket.send(Message::Text(frame.to_json().into())).await.is_ok()
}

/// A socket as the sink of its follows.
struct Frames<'a>(&'a mut WebSocket);

impl Sink for Frames<'_> {
    async fn send(&mut self, frame: ServerFrame) -> bool {
        send(self.0, frame).await
    }
}

async fn close_with(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }))).await;
}

async fn authenticate(state: &AppState, token: &str) -> Result<(Principal, tokio::time::Instant), Error> {
    let principal = state.catalyst.authenticate(token, None).await?;
    let ttl = state.catalyst.credential_seconds_left(token).await.unwrap_or(0);
    Ok((principal, tokio::time::Instant::now() + Duration::from_secs(ttl)))
}

async fn serve(state: AppState, mut socket: WebSocket) {
    // Everything starts with an auth frame.
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    let token = match first {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ClientFrame>(&t) {
            Ok(ClientFrame::Auth { token }) => token,
            _ => return close_with(socket, close::UNAUTHENTICATED, "the first frame must be auth").await,
        },
        _ => return close_with(socket, close::UNAUTHENTICATED, "no auth frame").await,
    };
    let (principal, expires_at) = match authenticate(&state, &token).await {
        Ok(p) => p,
        Err(e) => return close_with(socket, close::UNAUTHENTICATED, e.message()).await,
    };
    let Some(user) = principal.user_id() else { return close_with(socket, close::UNAUTHENTICATED, "no user").await };
    if !state.sockets.enter(user) {
        return close_with(socket, close::REFUSED, "too many open sockets").await;
    }
    let mut s = Session {
        principal,
        token,
        user,
        expires_at,
        follows: HashMap::new(),
        tokens: MAX_ACTIONS_PER_SECOND,
        refill: tokio::time::Instant::now(),
    };
    let mut bus = state.catalyst.events().subscribe();
    if send(&mut socket, ServerFrame::AuthOk).await {
        let code = run(&state, &mut socket, &mut s, &mut bus).await;
        if let Some((code, reason)) = code {
            let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
    }
    state.sockets.leave(user);
}

/// The session loop; returns the close code and reason when the server ends it.
async fn run(
    state: &AppState,
    socket: &mut WebSocket,
    s: &mut Session,
    bus: &mut tokio::sync::broadcast::Receiver<DomainEvent>,
) -> Option<(u16, String)> {
    let mut warned = false;
    loop {
        let warn_at = s.expires_at.checked_sub(Duration::from_secs(60)).unwrap_or(s.expires_at);
        tokio::select! {
            () = tokio::time::sleep_until(s.expires_at) => return Some((close::UNAUTHENTICATED, "token expired".into())),
            () = tokio::time::sleep_until(warn_at), if !warned => {
                warned = true;
                if !send(socket, ServerFrame::TokenExpiring).await { return None; }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<ClientFrame>(&text) {
                        Ok(frame) => {
                            if let Some(end) = handle(state, socket, s, frame, &mut warned).await { return Some(end); }
                        }
                        Err(e) => {
                            if !send(socket, ServerFrame::error(&Error::invalid(format!("bad frame: {e}")))).await { return None; }
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => return Some((close::REFUSED, "text frames only".into())),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            },
            event = bus.recv() => match event {
                Ok(event) => if let Some(end) = deliver(state, socket, s, event).await { return Some(end); },
                Err(RecvError::Lagged(n)) => {
                    // What was missed may have been a revocation: check everything again first.
                    if let Some(end) = recheck(state, socket, s).await { return Some(end); }
                    if !send(socket, ServerFrame::Lagged { missed: n }).await { return None; }
                }
                Err(RecvError::Closed) => return None,
            },
        }
    }
}

/// After missed events: the credential and every subscription, as if each revocation, grant
/// change, suspension and deletion had been heard.
async fn recheck(state: &AppState, socket: &mut WebSocket, s: &mut Session) -> Option<(u16, String)> {
    match state.catalyst.authenticate(&s.token, None).await {
        Ok(p) if p.user_id() == Some(s.user) => s.principal = p,
        _ => return Some((close::UNAUTHENTICATED, "the session was revoked".into())),
    }
    let followed: Vec<ServerId> = s.follows.keys().copied().collect();
    for server_id in followed {
        let Some(follow) = s.follows.get_mut(&server_id) else { continue };
        let step = follow.on_lagged();
        if let Some(end) = carry(state, socket, s, server_id, step).await {
            return Some(end);
        }
    }
    None
}

/// Carry out a step of the follow of `server_id`; returns the close when it ends the socket.
async fn carry(
    state: &AppState,
    socket: &mut WebSocket,
    s: &mut Session,
    server_id: ServerId,
    step: Step,
) -> Option<(u16, String)> {
    let follow = s.follows.get_mut(&server_id)?;
    match carry_out(&state.catalyst, &s.principal, follow, step, &mut Frames(socket)).await {
        Outcome::Going => None,
        Outcome::Gone => Some((close::REFUSED, String::new())),
        Outcome::Ended(end) => {
            if let Some((code, reason)) = end.close() {
                return Some((code, reason.into()));
            }
            s.follows.remove(&server_id);
            let sent = match end.frame(server_id) {
                Some(frame) => send(socket, frame).await,
                None => true,
            };
            if sent { None } else { Some((close::REFUSED, String::new())) }
        }
    }
}

async fn handle(
    state: &AppState,
    socket: &mut WebSocket,
    s: &mut Session,
    frame: ClientFrame,
    warned: &mut bool,
) -> Option<(u16, String)> {
    let c = &state.catalyst;
    let reply = match frame {
        ClientFrame::Auth { token } => match authenticate(state, &token).await {
            Ok((p, expires_at)) if p.user_id() == Some(s.user) => {
                s.principal = p;
                s.token = token;
                s.expires_at = expires_at;
                *warned = false;
                ServerFrame::AuthOk
            }
            Ok(_) => return Some((close::UNAUTHENTICATED, "a socket belongs to one user".into())),
            Err(e) => return Some((close::UNAUTHENTICATED, e.message().to_string())),
        },
        ClientFrame::Subscribe { server_id, since } => {
            if s.follows.len() >= MAX_SUBSCRIPTIONS && !s.follows.contains_key(&server_id) {
                ServerFrame::error(&Error::quota_exceeded("too many subscriptions"))
            } else {
                match access(c, &s.principal, server_id).await {
                    Err(e) => ServerFrame::error(&e),
                    Ok(access) => {
                        let follow = Follow::new(server_id, Delivery::Gateway, since, access);
                        let history = follow.history();
                        s.follows.insert(server_id, follow);
                        if !send(socket, ServerFrame::Subscribed { server_id, state: access.state }).await {
                            return None;
                        }
                        // Console history: stored lines after `since` (or the recent ones), oldest first.
                        return match history {
                            Some(query) => carry(state, socket, s, server_id, Step::Replay(query)).await,
                            None => None,
                        };
                    }
                }
            }
        }
        ClientFrame::Unsubscribe { server_id } => {
            s.follows.remove(&server_id);
            ServerFrame::Unsubscribed { server_id, reason: None }
        }
        ClientFrame::Command { server_id, command } => {
            if !take_token(s) {
                ServerFrame::error(&Error::rate_limited("too many actions"))
            } else {
                match c.send_command(&s.principal, server_id, &command).await {
                    Ok(()) => ServerFrame::Ok { state: None },
                    Err(e) => ServerFrame::error(&e),
                }
            }
        }
        ClientFrame::Power { server_id, action } => {
            if !take_token(s) {
                ServerFrame::error(&Error::rate_limited("too many actions"))
            } else {
                let r = match action {
                    PowerAction::Start => c.start_server(&s.principal, server_id).await,
                    PowerAction::Stop => c.stop_server(&s.principal, server_id).await,
                    PowerAction::Restart => c.restart_server(&s.principal, server_id).await,
                    PowerAction::Kill => c.kill_server(&s.principal, server_id).await,
                };
                match r {
                    Ok(server) => ServerFrame::Ok { state: Some(server.state) },
                    Err(e) => ServerFrame::error(&e),
                }
            }
        }
    };
    if send(socket, reply).await { None } else { Some((close::REFUSED, "send failed".into())) }
}

fn take_token(s: &mut Session) -> bool {
    let now = tokio::time::Instant::now();
    if now.duration_since(s.refill) >= Duration::from_secs(1) {
        s.tokens = MAX_ACTIONS_PER_SECOND;
        s.refill = now;
    }
    if s.tokens == 0 {
        return false;
    }
    s.tokens -= 1;
    true
}

async fn deliver(
    state: &AppState,
    socket: &mut WebSocket,
    s: &mut Session,
    event: DomainEvent,
) -> Option<(u16, String)> {
    if let DomainEvent::UserRevoked { user_id } = event {
        if user_id != s.user {
            return None;
        }
        // Logout, password or role change, deletion: re-check the token now.
        return match state.catalyst.authenticate(&s.token, None).await {
            Ok(p) => {
                s.principal = p;
                None
            }
            Err(_) => Some((close::UNAUTHENTICATED, "the session was revoked".into())),
        };
    }
    let server_id = event.server_id()?;
    let step = s.follows.get_mut(&server_id)?.on_event(&s.principal, event);
    carry(state, socket, s, server_id, step).await
}
