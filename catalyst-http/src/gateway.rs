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
use catalyst_core::id::{ServerId, UserId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::LogQuery;
use catalyst_core::permission::{Permission, Principal};
use futures::StreamExt;
use serde_json::{Value, json};
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

/// Close codes (4xxx, as Wings does).
pub mod close {
    /// Not (or no longer) authenticated.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// Too many sockets or a protocol violation.
    pub const REFUSED: u16 = 4429;
    /// The server was suspended.
    pub const SUSPENDED: u16 = 4409;
}

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

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
enum ClientFrame {
    Auth {
        token: String,
    },
    Subscribe {
        server_id: ServerId,
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        server_id: ServerId,
    },
    Command {
        server_id: ServerId,
        command: String,
    },
    Power {
        server_id: ServerId,
        action: String,
    },
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
    /// Subscribed servers and whether the caller may read their console.
    subs: HashMap<ServerId, bool>,
    tokens: u32,
    refill: tokio::time::Instant,
}

async fn send(socket: &mut WebSocket, v: Value) -> bool {
    socket.send(Message::Text(v.to_string().into())).await.is_ok()
}

async fn error(socket: &mut WebSocket, e: &Error) -> bool {
    send(socket, json!({"type": "error", "code": e.code(), "message": e.message()})).await
}

async fn close_with(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }))).await;
}

async fn authenticate(state: &AppState, token: &str) -> Result<(Principal, tokio::time::Instant), Error> {
    let principal = state.catalyst.authenticate(token).await?;
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
        subs: HashMap::new(),
        tokens: MAX_ACTIONS_PER_SECOND,
        refill: tokio::time::Instant::now(),
    };
    let mut bus = state.catalyst.events().subscribe();
    if send(&mut socket, json!({"type": "auth_ok"})).await {
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
                if !send(socket, json!({"type": "token_expiring"})).await { return None; }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<ClientFrame>(&text) {
                        Ok(frame) => {
                            if let Some(end) = handle(state, socket, s, frame, &mut warned).await { return Some(end); }
                        }
                        Err(e) => {
                            if !error(socket, &Error::invalid(format!("bad frame: {e}"))).await { return None; }
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
                    if !send(socket, json!({"type": "lagged", "missed": n})).await { return None; }
                }
                Err(RecvError::Closed) => return None,
            },
        }
    }
}

/// After missed events: the credential and every subscription, as if each revocation, grant
/// change, suspension and deletion had been heard.
async fn recheck(state: &AppState, socket: &mut WebSocket, s: &mut Session) -> Option<(u16, String)> {
    match state.catalyst.authenticate(&s.token).await {
        Ok(p) if p.user_id() == Some(s.user) => s.principal = p,
        _ => return Some((close::UNAUTHENTICATED, "the session was revoked".into())),
    }
    let subscribed: Vec<ServerId> = s.subs.keys().copied().collect();
    for server_id in subscribed {
        match state.catalyst.get_server(&s.principal, server_id).await {
            Ok(server) if server.state == ServerState::Suspended && !s.principal.holds(Permission::ServerSuspend) => {
                return Some((close::SUSPENDED, "the server was suspended".into()));
            }
            Ok(_) => {
                let console = may(state, &s.principal, server_id, Permission::ConsoleRead).await;
                s.subs.insert(server_id, console);
            }
            Err(_) => {
                s.subs.remove(&server_id);
                let v = json!({"type": "unsubscribed", "server_id": server_id, "reason": "access revoked"});
                if !send(socket, v).await {
                    return Some((close::REFUSED, String::new()));
                }
            }
        }
    }
    None
}

async fn may(state: &AppState, who: &Principal, server: ServerId, permission: Permission) -> bool {
    state.catalyst.check_server_permission(who, server, permission).await.is_ok()
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
                json!({"type": "auth_ok"})
            }
            Ok(_) => return Some((close::UNAUTHENTICATED, "a socket belongs to one user".into())),
            Err(e) => return Some((close::UNAUTHENTICATED, e.message().to_string())),
        },
        ClientFrame::Subscribe { server_id, since } => {
            if s.subs.len() >= MAX_SUBSCRIPTIONS && !s.subs.contains_key(&server_id) {
                json!({"type": "error", "code": "quota_exceeded", "message": "too many subscriptions"})
            } else {
                match c.get_server(&s.principal, server_id).await {
                    Err(e) => json!({"type": "error", "code": e.code(), "message": e.message()}),
                    Ok(server) => {
                        let console = may(state, &s.principal, server_id, Permission::ConsoleRead).await;
                        s.subs.insert(server_id, console);
                        if !send(socket, json!({"type": "subscribed", "server_id": server_id, "state": server.state}))
                            .await
                        {
                            return None;
                        }
                        // Console history: stored lines after `since` (or the last 100), oldest first.
                        if console {
                            let query = LogQuery {
                                after: since,
                                limit: Some(if since.is_some() { 500 } else { 100 }),
                                ..Default::default()
                            };
                            let mut history = c.server_logs(&s.principal, server_id, &query).await.unwrap_or_default();
                            history.reverse();
                            for l in history {
                                let v = json!({"type": "server_log", "server_id": l.server_id, "seq": l.seq, "stream": l.stream, "line": l.line, "at": l.at, "history": true});
                                if !send(socket, v).await {
                                    return None;
                                }
                            }
                        }
                        return None;
                    }
                }
            }
        }
        ClientFrame::Unsubscribe { server_id } => {
            s.subs.remove(&server_id);
            json!({"type": "unsubscribed", "server_id": server_id})
        }
        ClientFrame::Command { server_id, command } => {
            if !take_token(s) {
                json!({"type": "error", "code": "rate_limited", "message": "too many actions"})
            } else {
                match c.send_command(&s.principal, server_id, &command).await {
                    Ok(()) => json!({"type": "ok"}),
                    Err(e) => json!({"type": "error", "code": e.code(), "message": e.message()}),
                }
            }
        }
        ClientFrame::Power { server_id, action } => {
            if !take_token(s) {
                json!({"type": "error", "code": "rate_limited", "message": "too many actions"})
            } else {
                let r = match action.as_str() {
                    "start" => c.start_server(&s.principal, server_id).await,
                    "stop" => c.stop_server(&s.principal, server_id).await,
                    "restart" => c.restart_server(&s.principal, server_id).await,
                    "kill" => c.kill_server(&s.principal, server_id).await,
                    other => Err(Error::invalid(format!("unknown power action {other:?}"))),
                };
                match r {
                    Ok(server) => json!({"type": "ok", "state": server.state}),
                    Err(e) => json!({"type": "error", "code": e.code(), "message": e.message()}),
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
    match &event {
        DomainEvent::UserRevoked { user_id } if *user_id == s.user => {
            // Logout, password or role change, deletion: re-check the token now.
            return match state.catalyst.authenticate(&s.token).await {
                Ok(p) => {
                    s.principal = p;
                    None
                }
                Err(_) => Some((close::UNAUTHENTICATED, "the session was revoked".into())),
            };
        }
        DomainEvent::AccessChanged { server_id, user_id } if *user_id == s.user && s.subs.contains_key(server_id) => {
            if !may(state, &s.principal, *server_id, Permission::ServerRead).await {
                s.subs.remove(server_id);
                let v = json!({"type": "unsubscribed", "server_id": server_id, "reason": "access revoked"});
                return if send(socket, v).await { None } else { Some((close::REFUSED, String::new())) };
            }
            let console = may(state, &s.principal, *server_id, Permission::ConsoleRead).await;
            s.subs.insert(*server_id, console);
            return None;
        }
        _ => {}
    }
    let server_id = event.server_id()?;
    let &console = s.subs.get(&server_id)?;
    let v = match event {
        DomainEvent::ServerLog(l) if console => {
            json!({"type": "server_log", "server_id": l.server_id, "seq": l.seq, "stream": l.stream, "line": l.line, "at": l.at})
        }
        DomainEvent::ServerLog(_) => return None,
        DomainEvent::ServerStateUpdate { server_id, from, to, reason, at } => {
            if to == ServerState::Suspended && !s.principal.holds(Permission::ServerSuspend) {
                return Some((close::SUSPENDED, "the server was suspended".into()));
            }
            json!({"type": "server_state_update", "server_id": server_id, "from": from, "to": to, "reason": reason, "at": at})
        }
        DomainEvent::ResourceStats(m) => json!({"type": "resource_stats", "stats": m}),
        DomainEvent::InstallationProgress { server_id, line } if console => {
            json!({"type": "installation_progress", "server_id": server_id, "line": line})
        }
        DomainEvent::BackupProgress { .. } | DomainEvent::TransferProgress { .. } => {
            serde_json::to_value(&event).unwrap_or_default()
        }
        DomainEvent::ServerDeleted { server_id } => {
            s.subs.remove(&server_id);
            json!({"type": "unsubscribed", "server_id": server_id, "reason": "deleted"})
        }
        _ => return None,
    };
    if send(socket, v).await { None } else { Some((close::REFUSED, String::new())) }
}
