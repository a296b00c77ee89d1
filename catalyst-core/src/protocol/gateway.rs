//! The client gateway protocol (`GET /api/ws`): JSON text frames tagged by `type`, spoken by the
//! web panel and the SDKs. A client authenticates with [`ClientFrame::Auth`], subscribes to
//! servers, and receives [`ServerFrame`]s; the gateway ends a socket with a [`close`] code.
//!
//! The wire format is a public contract: the tests below pin each frame's exact bytes.

use crate::events::{BackupPhase, DomainEvent, TransferPhase};
use crate::id::{BackupId, ServerId};
use crate::lifecycle::ServerState;
use crate::model::{ServerLog, ServerMetrics, Timestamp};
use crate::{Error, ErrorKind};

/// Close codes (4xxx, as Wings does).
pub mod close {
    /// Not (or no longer) authenticated.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// Too many sockets or a protocol violation.
    pub const REFUSED: u16 = 4429;
    /// The server was suspended.
    pub const SUSPENDED: u16 = 4409;
}

/// A power action a client may ask for with [`ClientFrame::Power`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    /// Start a stopped or crashed server.
    Start,
    /// Stop gracefully.
    Stop,
    /// Stop, then start.
    Restart,
    /// Kill at once.
    Kill,
}

/// A frame a client sends. Unknown types and fields are refused (an `error` frame).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum ClientFrame {
    /// The first frame, and a refresh on the same socket: an access token or an API key.
    Auth {
        /// The credential.
        token: String,
    },
    /// Follow a server: `subscribed`, then console history, then live events.
    Subscribe {
        /// The server.
        server_id: ServerId,
        /// Resume the console after this sequence number (else: the recent lines).
        #[serde(default)]
        since: Option<i64>,
    },
    /// Stop following a server.
    Unsubscribe {
        /// The server.
        server_id: ServerId,
    },
    /// Write a line to a server's console.
    Command {
        /// The server.
        server_id: ServerId,
        /// The line, without newline.
        command: String,
    },
    /// Start, stop, restart or kill a server.
    Power {
        /// The server.
        server_id: ServerId,
        /// What to do.
        action: PowerAction,
    },
}

impl std::fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFrame::Auth { .. } => f.debug_struct("Auth").field("token", &"<redacted>").finish(),
            ClientFrame::Subscribe { server_id, since } => {
                f.debug_struct("Subscribe").field("server_id", server_id).field("since", since).finish()
            }
            ClientFrame::Unsubscribe { server_id } => {
                f.debug_struct("Unsubscribe").field("server_id", server_id).finish()
            }
            ClientFrame::Command { server_id, command } => {
                f.debug_struct("Command").field("server_id", server_id).field("command", command).finish()
            }
            ClientFrame::Power { server_id, action } => {
                f.debug_struct("Power").field("server_id", server_id).field("action", action).finish()
            }
        }
    }
}

/// Why the gateway stopped a subscription on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeReason {
    /// The caller may no longer read the server.
    #[serde(rename = "access revoked")]
    AccessRevoked,
    /// The server was deleted.
    Deleted,
    /// A reason this version does not know (a newer gateway).
    #[serde(other)]
    Other,
}

/// A frame the gateway sends.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ServerFrame {
    /// The credential was accepted (after the first `auth`, and after each refresh).
    AuthOk,
    /// The access token expires within a minute: send a fresh `auth`.
    TokenExpiring,
    /// The socket fell behind the event bus and missed events; access was checked again.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
    /// A subscription started; console history and live events follow.
    Subscribed {
        /// The server.
        server_id: ServerId,
        /// Its state now.
        state: ServerState,
    },
    /// A subscription ended: asked for (no reason), or by the gateway.
    Unsubscribed {
        /// The server.
        server_id: ServerId,
        /// Why the gateway ended it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<UnsubscribeReason>,
    },
    /// A console line.
    ServerLog {
        /// The line.
        #[serde(flatten)]
        line: ServerLog,
        /// Read back from the store on subscribing, not live.
        #[serde(default, skip_serializing_if = "is_false")]
        history: bool,
    },
    /// A server moved to a new lifecycle state.
    ServerStateUpdate {
        /// The server.
        server_id: ServerId,
        /// Previous state.
        from: ServerState,
        /// New state.
        to: ServerState,
        /// Why, when known.
        reason: Option<String>,
        /// When the change happened (UTC): the node's clock for changes the node reports.
        at: Timestamp,
    },
    /// A resource sample.
    ResourceStats {
        /// The sample.
        stats: ServerMetrics,
    },
    /// Output of the install script.
    InstallationProgress {
        /// The server.
        server_id: ServerId,
        /// One line of installer output.
        line: String,
    },
    /// A backup or restore moved on.
    BackupProgress {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Where it stands.
        phase: BackupPhase,
        /// Bytes done.
        bytes: u64,
        /// Bytes in all (0 when unknown).
        total: u64,
        /// Why it failed.
        error: Option<String>,
    },
    /// A transfer to another node moved on.
    TransferProgress {
        /// The server.
        server_id: ServerId,
        /// Where it stands.
        phase: TransferPhase,
        /// Bytes copied.
        bytes: u64,
        /// Bytes to copy.
        total: u64,
        /// What happened.
        message: Option<String>,
    },
    /// A command or power action was done.
    Ok {
        /// The server's state after a power action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<ServerState>,
    },
    /// A frame was refused.
    Error {
        /// Stable code (an unknown one reads as `internal`).
        #[serde(deserialize_with = "lenient_kind")]
        code: ErrorKind,
        /// Human message.
        message: String,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A newer gateway may send a code this version does not know: it still is an error.
fn lenient_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ErrorKind, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or(ErrorKind::Internal))
}

impl ServerFrame {
    /// The error frame for `e`.
    pub fn error(e: &Error) -> Self {
        ServerFrame::Error { code: e.kind(), message: e.message().to_string() }
    }

    /// A stored console line, read back on subscribing.
    pub fn history(line: ServerLog) -> Self {
        ServerFrame::ServerLog { line, history: true }
    }

    /// The live frame for a bus event, if clients see it (`access_changed`, `user_revoked` and
    /// `node_status` are the gateway's own business). A deletion ends the subscription.
    pub fn live(event: DomainEvent) -> Option<Self> {
        Some(match event {
            DomainEvent::ServerLog(line) => ServerFrame::ServerLog { line, history: false },
            DomainEvent::ServerStateUpdate { server_id, from, to, reason, at } => {
                ServerFrame::ServerStateUpdate { server_id, from, to, reason, at }
            }
            DomainEvent::ResourceStats(stats) => ServerFrame::ResourceStats { stats },
            DomainEvent::InstallationProgress { server_id, line } => {
                ServerFrame::InstallationProgress { server_id, line }
            }
            DomainEvent::BackupProgress { server_id, backup_id, phase, bytes, total, error } => {
                ServerFrame::BackupProgress { server_id, backup_id, phase, bytes, total, error }
            }
            DomainEvent::TransferProgress { server_id, phase, bytes, total, message } => {
                ServerFrame::TransferProgress { server_id, phase, bytes, total, message }
            }
            DomainEvent::ServerDeleted { server_id } => {
                ServerFrame::Unsubscribed { server_id, reason: Some(UnsubscribeReason::Deleted) }
            }
            DomainEvent::AccessChanged { .. } | DomainEvent::UserRevoked { .. } | DomainEvent::NodeStatus { .. } => {
                return None;
            }
        })
    }

    /// The bus event a frame stands for, as an SDK feed yields it (the inverse of
    /// [`ServerFrame::live`]); `None` for the frames of the protocol itself.
    pub fn into_event(self) -> Option<DomainEvent> {
        Some(match self {
            ServerFrame::ServerLog { line, .. } => DomainEvent::ServerLog(line),
            ServerFrame::ServerStateUpdate { server_id, from, to, reason, at } => {
                DomainEvent::ServerStateUpdate { server_id, from, to, reason, at }
            }
            ServerFrame::ResourceStats { stats } => DomainEvent::ResourceStats(stats),
            ServerFrame::InstallationProgress { server_id, line } => {
                DomainEvent::InstallationProgress { server_id, line }
            }
            ServerFrame::BackupProgress { server_id, backup_id, phase, bytes, total, error } => {
                DomainEvent::BackupProgress { server_id, backup_id, phase, bytes, total, error }
            }
            ServerFrame::TransferProgress { server_id, phase, bytes, total, message } => {
                DomainEvent::TransferProgress { server_id, phase, bytes, total, message }
            }
            ServerFrame::Unsubscribed { server_id, reason: Some(UnsubscribeReason::Deleted) } => {
                DomainEvent::ServerDeleted { server_id }
            }
            ServerFrame::AuthOk
            | ServerFrame::TokenExpiring
            | ServerFrame::Lagged { .. }
            | ServerFrame::Subscribed { .. }
            | ServerFrame::Unsubscribed { .. }
            | ServerFrame::Ok { .. }
            | ServerFrame::Error { .. } => return None,
        })
    }

    /// The frame as sent: JSON with its keys sorted, as the gateway has always written them.
    pub fn to_json(&self) -> String {
        sorted_json(self)
    }
}

impl ClientFrame {
    /// The frame as sent: JSON with its keys sorted.
    pub fn to_json(&self) -> String {
        sorted_json(self)
    }
}

/// Frames were built as `serde_json::Value`s, whose maps sort their keys (serde_json without
/// `preserve_order`); going through a `Value` keeps every frame's bytes as they were.
fn sorted_json(frame: &impl serde::Serialize) -> String {
    serde_json::to_value(frame).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::LogStream;

    fn server() -> ServerId {
        ServerId(uuid::Uuid::from_u128(1))
    }

    fn at() -> Timestamp {
        use chrono::TimeZone;
        chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("a valid time")
    }

    fn line() -> ServerLog {
        ServerLog { server_id: server(), seq: 7, stream: LogStream::Stdout, line: "hello".into(), at: at() }
    }

    fn stats() -> ServerMetrics {
        ServerMetrics {
            server_id: server(),
            at: at(),
            cpu_percent: 12.5,
            memory_bytes: 1024,
            memory_limit_bytes: 2048,
            rx_bytes: 1,
            tx_bytes: 2,
            disk_bytes: 3,
        }
    }

    const ID: &str = "00000000-0000-0000-0000-000000000001";
    const AT: &str = "2026-01-02T03:04:05Z";

    /// Each frame, its bytes on the wire, and how the gateway built it before these types (the
    /// `json!` calls of `catalyst-http/src/gateway.rs`, or `DomainEvent`'s serde).
    fn server_frames() -> Vec<(ServerFrame, String, serde_json::Value)> {
        let (id, l, m) = (server(), line(), stats());
        let backup = BackupId(uuid::Uuid::from_u128(2));
        vec![
            (ServerFrame::AuthOk, r#"{"type":"auth_ok"}"#.into(), json!({"type": "auth_ok"})),
            (ServerFrame::TokenExpiring, r#"{"type":"token_expiring"}"#.into(), json!({"type": "token_expiring"})),
            (
                ServerFrame::Lagged { missed: 42 },
                r#"{"missed":42,"type":"lagged"}"#.into(),
                json!({"type": "lagged", "missed": 42_u64}),
            ),
            (
                ServerFrame::Subscribed { server_id: id, state: ServerState::Stopped },
                format!(r#"{{"server_id":"{ID}","state":"stopped","type":"subscribed"}}"#),
                json!({"type": "subscribed", "server_id": id, "state": ServerState::Stopped}),
            ),
            (
                ServerFrame::Unsubscribed { server_id: id, reason: None },
                format!(r#"{{"server_id":"{ID}","type":"unsubscribed"}}"#),
                json!({"type": "unsubscribed", "server_id": id}),
            ),
            (
                ServerFrame::Unsubscribed { server_id: id, reason: Some(UnsubscribeReason::AccessRevoked) },
                format!(r#"{{"reason":"access revoked","server_id":"{ID}","type":"unsubscribed"}}"#),
                json!({"type": "unsubscribed", "server_id": id, "reason": "access revoked"}),
            ),
            (
                ServerFrame::Unsubscribed { server_id: id, reason: Some(UnsubscribeReason::Deleted) },
                format!(r#"{{"reason":"deleted","server_id":"{ID}","type":"unsubscribed"}}"#),
                json!({"type": "unsubscribed", "server_id": id, "reason": "deleted"}),
            ),
            (
                ServerFrame::ServerLog { line: l.clone(), history: false },
                format!(
                    r#"{{"at":"{AT}","line":"hello","seq":7,"server_id":"{ID}","stream":"stdout","type":"server_log"}}"#
                ),
                json!({"type": "server_log", "server_id": l.server_id, "seq": l.seq, "stream": l.stream, "line": l.line, "at": l.at}),
            ),
            (
                ServerFrame::history(l.clone()),
                format!(
                    r#"{{"at":"{AT}","history":true,"line":"hello","seq":7,"server_id":"{ID}","stream":"stdout","type":"server_log"}}"#
                ),
                json!({"type": "server_log", "server_id": l.server_id, "seq": l.seq, "stream": l.stream, "line": l.line, "at": l.at, "history": true}),
            ),
            (
                ServerFrame::ServerStateUpdate {
                    server_id: id,
                    from: ServerState::Starting,
                    to: ServerState::Running,
                    reason: None,
                    at: at(),
                },
                format!(
                    r#"{{"at":"{AT}","from":"starting","reason":null,"server_id":"{ID}","to":"running","type":"server_state_update"}}"#
                ),
                json!({"type": "server_state_update", "server_id": id, "from": ServerState::Starting, "to": ServerState::Running, "reason": None::<String>, "at": at()}),
            ),
            (
                ServerFrame::ServerStateUpdate {
                    server_id: id,
                    from: ServerState::Running,
                    to: ServerState::Crashed,
                    reason: Some("exit code 1".into()),
                    at: at(),
                },
                format!(
                    r#"{{"at":"{AT}","from":"running","reason":"exit code 1","server_id":"{ID}","to":"crashed","type":"server_state_update"}}"#
                ),
                json!({"type": "server_state_update", "server_id": id, "from": ServerState::Running, "to": ServerState::Crashed, "reason": "exit code 1", "at": at()}),
            ),
            (
                ServerFrame::ResourceStats { stats: m.clone() },
                format!(
                    r#"{{"stats":{{"at":"{AT}","cpu_percent":12.5,"disk_bytes":3,"memory_bytes":1024,"memory_limit_bytes":2048,"rx_bytes":1,"server_id":"{ID}","tx_bytes":2}},"type":"resource_stats"}}"#
                ),
                json!({"type": "resource_stats", "stats": m}),
            ),
            (
                ServerFrame::InstallationProgress { server_id: id, line: "step 1".into() },
                format!(r#"{{"line":"step 1","server_id":"{ID}","type":"installation_progress"}}"#),
                json!({"type": "installation_progress", "server_id": id, "line": "step 1"}),
            ),
            (
                ServerFrame::BackupProgress {
                    server_id: id,
                    backup_id: backup,
                    phase: BackupPhase::Failed,
                    bytes: 10,
                    total: 20,
                    error: Some("disk full".into()),
                },
                format!(
                    r#"{{"backup_id":"00000000-0000-0000-0000-000000000002","bytes":10,"error":"disk full","phase":"failed","server_id":"{ID}","total":20,"type":"backup_progress"}}"#
                ),
                serde_json::to_value(DomainEvent::BackupProgress {
                    server_id: id,
                    backup_id: backup,
                    phase: BackupPhase::Failed,
                    bytes: 10,
                    total: 20,
                    error: Some("disk full".into()),
                })
                .expect("an event"),
            ),
            (
                ServerFrame::TransferProgress {
                    server_id: id,
                    phase: TransferPhase::Copying,
                    bytes: 5,
                    total: 9,
                    message: None,
                },
                format!(
                    r#"{{"bytes":5,"message":null,"phase":"copying","server_id":"{ID}","total":9,"type":"transfer_progress"}}"#
                ),
                serde_json::to_value(DomainEvent::TransferProgress {
                    server_id: id,
                    phase: TransferPhase::Copying,
                    bytes: 5,
                    total: 9,
                    message: None,
                })
                .expect("an event"),
            ),
            (ServerFrame::Ok { state: None }, r#"{"type":"ok"}"#.into(), json!({"type": "ok"})),
            (
                ServerFrame::Ok { state: Some(ServerState::Starting) },
                r#"{"state":"starting","type":"ok"}"#.into(),
                json!({"type": "ok", "state": ServerState::Starting}),
            ),
            (
                ServerFrame::error(&Error::rate_limited("too many actions")),
                r#"{"code":"rate_limited","message":"too many actions","type":"error"}"#.into(),
                json!({"type": "error", "code": "rate_limited", "message": "too many actions"}),
            ),
            (
                ServerFrame::error(&Error::invalid("bad frame")),
                r#"{"code":"invalid_input","message":"bad frame","type":"error"}"#.into(),
                json!({"type": "error", "code": Error::invalid("x").code(), "message": "bad frame"}),
            ),
        ]
    }

    #[test]
    fn server_frames_keep_their_bytes_and_round_trip() {
        for (frame, wire, before) in server_frames() {
            assert_eq!(frame.to_json(), wire, "{frame:?}");
            assert_eq!(before.to_string(), wire, "the frame as the gateway built it before");
            let back: ServerFrame = serde_json::from_str(&wire).expect("parses");
            assert_eq!(back, frame, "{wire}");
        }
    }

    #[test]
    fn every_live_frame_is_its_event() {
        let id = server();
        let events = [
            DomainEvent::ServerLog(line()),
            DomainEvent::ServerStateUpdate {
                server_id: id,
                from: ServerState::Stopped,
                to: ServerState::Starting,
                reason: None,
                at: at(),
            },
            DomainEvent::ResourceStats(stats()),
            DomainEvent::InstallationProgress { server_id: id, line: "x".into() },
            DomainEvent::BackupProgress {
                server_id: id,
                backup_id: BackupId::new(),
                phase: BackupPhase::Running,
                bytes: 1,
                total: 2,
                error: None,
            },
            DomainEvent::TransferProgress {
                server_id: id,
                phase: TransferPhase::Started,
                bytes: 0,
                total: 0,
                message: None,
            },
            DomainEvent::ServerDeleted { server_id: id },
        ];
        for event in events {
            let frame = ServerFrame::live(event.clone()).expect("clients see it");
            assert_eq!(frame.into_event(), Some(event));
        }
        let private = [
            DomainEvent::AccessChanged { server_id: id, user_id: crate::id::UserId::new() },
            DomainEvent::UserRevoked { user_id: crate::id::UserId::new() },
            DomainEvent::NodeStatus { node_id: crate::id::NodeId::new(), online: true },
        ];
        for event in private {
            assert_eq!(ServerFrame::live(event), None);
        }
        for frame in [ServerFrame::AuthOk, ServerFrame::Unsubscribed { server_id: id, reason: None }] {
            assert_eq!(frame.into_event(), None);
        }
    }

    #[test]
    fn a_newer_gateway_still_reads_as_errors_and_unsubscriptions() {
        let unknown_code: ServerFrame =
            serde_json::from_str(r#"{"type":"error","code":"brand_new","message":"m"}"#).expect("parses");
        assert_eq!(unknown_code, ServerFrame::Error { code: ErrorKind::Internal, message: "m".into() });
        let unknown_reason: ServerFrame =
            serde_json::from_str(&format!(r#"{{"type":"unsubscribed","server_id":"{ID}","reason":"moved"}}"#))
                .expect("parses");
        assert_eq!(
            unknown_reason,
            ServerFrame::Unsubscribed { server_id: server(), reason: Some(UnsubscribeReason::Other) }
        );
    }

    #[test]
    fn client_frames_keep_their_bytes_and_round_trip() {
        let id = server();
        let cases = [
            (ClientFrame::Auth { token: "t".into() }, r#"{"token":"t","type":"auth"}"#.to_string()),
            (
                ClientFrame::Subscribe { server_id: id, since: None },
                format!(r#"{{"server_id":"{ID}","since":null,"type":"subscribe"}}"#),
            ),
            (
                ClientFrame::Subscribe { server_id: id, since: Some(9) },
                format!(r#"{{"server_id":"{ID}","since":9,"type":"subscribe"}}"#),
            ),
            (ClientFrame::Unsubscribe { server_id: id }, format!(r#"{{"server_id":"{ID}","type":"unsubscribe"}}"#)),
            (
                ClientFrame::Command { server_id: id, command: "say hi".into() },
                format!(r#"{{"command":"say hi","server_id":"{ID}","type":"command"}}"#),
            ),
            (
                ClientFrame::Power { server_id: id, action: PowerAction::Restart },
                format!(r#"{{"action":"restart","server_id":"{ID}","type":"power"}}"#),
            ),
        ];
        for (frame, wire) in cases {
            assert_eq!(frame.to_json(), wire, "{frame:?}");
            assert_eq!(serde_json::from_str::<ClientFrame>(&wire).expect("parses"), frame, "{wire}");
        }
        // As the SDK feed wrote them before.
        assert_eq!(
            ClientFrame::Subscribe { server_id: id, since: None }.to_json(),
            json!({"type": "subscribe", "server_id": id, "since": None::<i64>}).to_string()
        );
        assert_eq!(
            ClientFrame::Auth { token: "t".into() }.to_json(),
            json!({"type": "auth", "token": "t"}).to_string()
        );
        // `since` may be left out.
        let short: ClientFrame =
            serde_json::from_str(&format!(r#"{{"type":"subscribe","server_id":"{ID}"}}"#)).expect("parses");
        assert_eq!(short, ClientFrame::Subscribe { server_id: id, since: None });
    }

    #[test]
    fn client_frames_refuse_what_they_do_not_know() {
        let refused = [
            r#"{"type":"dance"}"#.to_string(),
            r#"{"token":"t"}"#.to_string(),
            r#"{"type":"auth","token":"t","extra":1}"#.to_string(),
            format!(r#"{{"type":"power","server_id":"{ID}","action":"dance"}}"#),
            r#"{"type":"subscribe","server_id":"not-a-uuid"}"#.to_string(),
        ];
        for wire in refused {
            assert!(serde_json::from_str::<ClientFrame>(&wire).is_err(), "{wire}");
        }
    }

    #[test]
    fn the_token_stays_out_of_debug() {
        let shown = format!("{:?}", ClientFrame::Auth { token: "secret-token".into() });
        assert!(!shown.contains("secret-token"), "{shown}");
    }
}
