//! Following one server, sans I/O: given the events of the bus and what the follower may see,
//! [`Follow`] decides per event to deliver a [`ServerFrame`], skip it, check access again, read
//! console lines back, or end. The gateway keeps one per subscription of a socket and the SDK's
//! embedded feed one; they carry the steps out (access checks against the facade, store reads,
//! sends) and feed the answers back with [`Follow::on_access`] and [`Follow::on_history`].
//!
//! The rules, in [`Follow::on_event`] and [`Follow::on_access`]:
//! - Only the followed server's events count; `access_changed` for the follower asks for a
//!   re-check (a grant changed), and so does a lag (what was missed may have been a revocation).
//! - Console lines and install output need `console.read`, checked again on each re-check.
//! - A suspension ends the follow unless the follower holds `server.suspend` (the gateway closes
//!   the socket with 4409); a deletion ends it after a last frame; a failed re-check ends it.
//! - Console history: the lines after `since` (at most [`MAX_REPLAY`]), or for a gateway socket
//!   without `since` the last [`RECENT_LINES`]. An SDK feed sees each line once and in order, and
//!   after a lag catches its console up from the store; a gateway client does both itself.

use crate::events::DomainEvent;
use crate::id::ServerId;
use crate::lifecycle::ServerState;
use crate::model::{LogQuery, ServerLog};
use crate::permission::{Permission, Principal};
use crate::protocol::gateway::{ServerFrame, UnsubscribeReason, close};
use crate::{Error, Result};

/// Console lines read back at most when a follow resumes after a sequence number.
pub const MAX_REPLAY: u32 = 500;
/// Console lines a gateway socket gets on subscribing without a sequence number.
pub const RECENT_LINES: u32 = 100;

/// Who follows, which decides how console history reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A gateway client (the web panel, the remote SDK feed): history on subscribing, marked
    /// as such (the recent lines without `since`); it drops overlaps itself, and after a
    /// `lagged` frame subscribes again with `since`.
    Gateway,
    /// An SDK feed: each console line once and in order, the lines after `since` only, and
    /// after a lag the console caught up from the store.
    Feed,
}

/// What an access check found: the caller may read the server, in this state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The server's state now.
    pub state: ServerState,
    /// Whether the caller may read its console (`console.read`).
    pub console: bool,
}

/// What to do next.
#[derive(Debug)]
pub enum Step {
    /// Send this frame.
    Deliver(ServerFrame),
    /// Nothing to send.
    Skip,
    /// Check the follower's access now and answer with [`Follow::on_access`].
    Recheck,
    /// Read these stored lines (oldest first) and pass each to [`Follow::on_history`].
    Replay(LogQuery),
    /// The follow is over.
    End(End),
}

/// Why a follow ended.
#[derive(Debug)]
pub enum End {
    /// The server was deleted.
    Deleted,
    /// The server was suspended and the follower does not hold `server.suspend`.
    Suspended,
    /// The follower may no longer read the server (the access check's error).
    AccessLost(Error),
}

/// Why a re-check was asked for: after a lag, a missed suspension counts too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recheck {
    Lagged,
    AccessChanged,
}

/// The reason a suspension gives, in the close frame and in the SDK's error.
const SUSPENDED: &str = "the server was suspended";

impl End {
    /// The gateway's last frame of the subscription; `None` for a suspension, which closes
    /// the whole socket instead (see [`End::close`]).
    pub fn frame(&self, server_id: ServerId) -> Option<ServerFrame> {
        let reason = match self {
            End::Deleted => UnsubscribeReason::Deleted,
            End::AccessLost(_) => UnsubscribeReason::AccessRevoked,
            End::Suspended => return None,
        };
        Some(ServerFrame::Unsubscribed { server_id, reason: Some(reason) })
    }

    /// The close code and reason the gateway ends the socket with, if the ending is that hard.
    pub fn close(&self) -> Option<(u16, &'static str)> {
        matches!(self, End::Suspended).then_some((close::SUSPENDED, SUSPENDED))
    }

    /// An SDK feed's last item: the deletion event, or the error.
    pub fn into_last_item(self, server_id: ServerId) -> Result<DomainEvent> {
        match self {
            End::Deleted => Ok(DomainEvent::ServerDeleted { server_id }),
            End::Suspended => Err(Error::denied(SUSPENDED)),
            End::AccessLost(e) => Err(e),
        }
    }
}

/// Console lines after `seq` are new; earlier ones were delivered already (a replay and the live
/// feed overlap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor(Option<i64>);

impl Cursor {
    /// Starting after `since` (or with the next live line).
    pub fn after(since: Option<i64>) -> Self {
        Self(since)
    }

    /// Whether `line` is new; if so it becomes the cursor.
    pub fn admit(&mut self, line: &ServerLog) -> bool {
        if self.0.is_some_and(|seen| line.seq <= seen) {
            return false;
        }
        self.0 = Some(line.seq);
        true
    }

    /// The last line delivered.
    pub fn seq(self) -> Option<i64> {
        self.0
    }
}

/// One follower of one server.
#[derive(Debug, Clone)]
pub struct Follow {
    server_id: ServerId,
    delivery: Delivery,
    since: Option<i64>,
    console: bool,
    cursor: Cursor,
    recheck: Option<Recheck>,
}

impl Follow {
    /// Start following `server_id` once an access check found `access`, resuming the console
    /// after `since`.
    pub fn new(server_id: ServerId, delivery: Delivery, since: Option<i64>, access: Access) -> Self {
        Self { server_id, delivery, since, console: access.console, cursor: Cursor::after(since), recheck: None }
    }

    /// The followed server.
    pub fn server_id(&self) -> ServerId {
        self.server_id
    }

    /// Whether the follower sees the console now.
    pub fn console(&self) -> bool {
        self.console
    }

    /// The stored console lines to send first, if any; pass each to [`Follow::on_history`].
    pub fn history(&self) -> Option<LogQuery> {
        if !self.console {
            return None;
        }
        let limit = match (self.delivery, self.since) {
            (_, Some(_)) => MAX_REPLAY,
            (Delivery::Gateway, None) => RECENT_LINES,
            (Delivery::Feed, None) => return None,
        };
        Some(LogQuery { after: self.since, limit: Some(limit), ..Default::default() })
    }

    /// A stored console line read back for [`Follow::history`] or a [`Step::Replay`].
    pub fn on_history(&mut self, line: ServerLog) -> Step {
        if self.delivery == Delivery::Feed && !self.cursor.admit(&line) {
            return Step::Skip;
        }
        Step::Deliver(ServerFrame::history(line))
    }

    /// An event of the bus, seen by `who`.
    pub fn on_event(&mut self, who: &Principal, event: DomainEvent) -> Step {
        match event {
            event if event.server_id() != Some(self.server_id) => Step::Skip,
            DomainEvent::AccessChanged { user_id, .. } if who.user_id() == Some(user_id) => {
                self.ask(Recheck::AccessChanged)
            }
            DomainEvent::ServerLog(_) | DomainEvent::InstallationProgress { .. } if !self.console => Step::Skip,
            DomainEvent::ServerLog(line) if self.delivery == Delivery::Feed && !self.cursor.admit(&line) => Step::Skip,
            DomainEvent::ServerStateUpdate { to: ServerState::Suspended, .. }
                if !who.holds(Permission::ServerSuspend) =>
            {
                Step::End(End::Suspended)
            }
            DomainEvent::ServerDeleted { .. } => Step::End(End::Deleted),
            event => ServerFrame::live(event).map_or(Step::Skip, Step::Deliver),
        }
    }

    /// The follower fell behind the bus and missed events.
    pub fn on_lagged(&mut self) -> Step {
        self.ask(Recheck::Lagged)
    }

    /// The answer to a [`Step::Recheck`]: `who`'s access now, or the error that denies it.
    pub fn on_access(&mut self, who: &Principal, checked: Result<Access>) -> Step {
        let why = self.recheck.take().unwrap_or(Recheck::AccessChanged);
        let access = match checked {
            Err(e) => return Step::End(End::AccessLost(e)),
            Ok(a) if why == Recheck::Lagged && a.state == ServerState::Suspended => {
                if !who.holds(Permission::ServerSuspend) {
                    return Step::End(End::Suspended);
                }
                a
            }
            Ok(a) => a,
        };
        self.console = access.console;
        match (why, self.delivery, self.cursor.seq()) {
            (Recheck::Lagged, Delivery::Feed, Some(after)) if self.console => {
                Step::Replay(LogQuery { after: Some(after), limit: Some(MAX_REPLAY), ..Default::default() })
            }
            _ => Step::Skip,
        }
    }

    fn ask(&mut self, why: Recheck) -> Step {
        self.recheck = Some(why);
        Step::Recheck
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::id::{BackupId, NodeId, UserId};
    use crate::model::{LogStream, ServerMetrics};
    use crate::permission::PermissionSet;
    use Delivery::{Feed, Gateway};

    const S: ServerId = ServerId(uuid::Uuid::from_u128(1));
    const OTHER: ServerId = ServerId(uuid::Uuid::from_u128(2));
    const ME: UserId = UserId(uuid::Uuid::from_u128(10));

    /// An owner or subuser: server rights come from grants, not from a global role.
    fn user() -> Principal {
        Principal::user(ME, PermissionSet::EMPTY)
    }

    /// An operator, who holds `server.suspend` and so may watch suspended servers.
    fn operator() -> Principal {
        Principal::user(ME, PermissionSet::all())
    }

    fn log(server_id: ServerId, seq: i64) -> DomainEvent {
        DomainEvent::ServerLog(stored(server_id, seq))
    }

    fn stored(server_id: ServerId, seq: i64) -> ServerLog {
        ServerLog { server_id, seq, stream: LogStream::Stdout, line: format!("line {seq}"), at: chrono::Utc::now() }
    }

    fn state(to: ServerState) -> DomainEvent {
        DomainEvent::ServerStateUpdate {
            server_id: S,
            from: ServerState::Running,
            to,
            reason: None,
            at: chrono::Utc::now(),
        }
    }

    fn stats() -> DomainEvent {
        DomainEvent::ResourceStats(ServerMetrics {
            server_id: S,
            at: chrono::Utc::now(),
            cpu_percent: 1.0,
            memory_bytes: 1,
            memory_limit_bytes: 2,
            rx_bytes: 0,
            tx_bytes: 0,
            disk_bytes: 0,
        })
    }

    fn access(console: bool) -> Access {
        Access { state: ServerState::Running, console }
    }

    fn follow(delivery: Delivery, console: bool, since: Option<i64>) -> Follow {
        Follow::new(S, delivery, since, access(console))
    }

    /// A step as a short word, for tables.
    fn show(step: &Step) -> String {
        match step {
            Step::Deliver(frame) => {
                let v = serde_json::to_value(frame).unwrap_or_default();
                let history = if v["history"] == true { " (history)" } else { "" };
                format!("deliver {}{history}", v["type"].as_str().unwrap_or("?"))
            }
            Step::Skip => "skip".into(),
            Step::Recheck => "recheck".into(),
            Step::Replay(q) => format!("replay after {:?} up to {:?}", q.after, q.limit),
            Step::End(End::Deleted) => "end: deleted".into(),
            Step::End(End::Suspended) => "end: suspended".into(),
            Step::End(End::AccessLost(e)) => format!("end: access lost ({})", e.code()),
        }
    }

    #[test]
    fn table_events() {
        let events: Vec<(&str, DomainEvent)> = vec![
            ("log", log(S, 1)),
            ("install", DomainEvent::InstallationProgress { server_id: S, line: "x".into() }),
            ("running", state(ServerState::Running)),
            ("suspended", state(ServerState::Suspended)),
            ("stats", stats()),
            (
                "backup",
                DomainEvent::BackupProgress {
                    server_id: S,
                    backup_id: BackupId::new(),
                    phase: crate::events::BackupPhase::Running,
                    bytes: 1,
                    total: 2,
                    error: None,
                },
            ),
            (
                "transfer",
                DomainEvent::TransferProgress {
                    server_id: S,
                    phase: crate::events::TransferPhase::Copying,
                    bytes: 1,
                    total: 2,
                    message: None,
                },
            ),
            ("deleted", DomainEvent::ServerDeleted { server_id: S }),
            ("my grant", DomainEvent::AccessChanged { server_id: S, user_id: ME }),
            ("another's grant", DomainEvent::AccessChanged { server_id: S, user_id: UserId::new() }),
            ("my grant elsewhere", DomainEvent::AccessChanged { server_id: OTHER, user_id: ME }),
            ("my logout", DomainEvent::UserRevoked { user_id: ME }),
            ("node", DomainEvent::NodeStatus { node_id: NodeId::new(), online: false }),
            ("other server's log", log(OTHER, 1)),
            ("other server suspended", {
                let mut e = state(ServerState::Suspended);
                if let DomainEvent::ServerStateUpdate { server_id, .. } = &mut e {
                    *server_id = OTHER;
                }
                e
            }),
        ];
        // (event, console, operator) → what both kinds of follower do.
        let table: &[(&str, bool, bool, &str)] = &[
            ("log", true, false, "deliver server_log"),
            ("log", false, false, "skip"),
            ("log", false, true, "skip"),
            ("install", true, false, "deliver installation_progress"),
            ("install", false, false, "skip"),
            ("running", false, false, "deliver server_state_update"),
            ("suspended", true, false, "end: suspended"),
            ("suspended", true, true, "deliver server_state_update"),
            ("stats", false, false, "deliver resource_stats"),
            ("backup", false, false, "deliver backup_progress"),
            ("transfer", false, false, "deliver transfer_progress"),
            ("deleted", false, false, "end: deleted"),
            ("my grant", true, false, "recheck"),
            ("another's grant", true, false, "skip"),
            ("my grant elsewhere", true, false, "skip"),
            ("my logout", true, false, "skip"),
            ("node", true, false, "skip"),
            ("other server's log", true, false, "skip"),
            ("other server suspended", true, false, "skip"),
        ];
        for delivery in [Gateway, Feed] {
            for (name, console, op, want) in table {
                let event = events.iter().find(|(n, _)| n == name).map(|(_, e)| e.clone()).expect("a named event");
                let who = if *op { operator() } else { user() };
                let got = show(&follow(delivery, *console, None).on_event(&who, event));
                assert_eq!(got, *want, "{delivery:?}, {name}, console {console}, operator {op}");
            }
        }
    }

    #[test]
    fn table_history() {
        // (delivery, console, since) → the query read back first.
        type Read = Option<(Option<i64>, u32)>;
        let table: &[(Delivery, bool, Option<i64>, Read)] = &[
            (Gateway, true, None, Some((None, RECENT_LINES))),
            (Gateway, true, Some(41), Some((Some(41), MAX_REPLAY))),
            (Gateway, false, None, None),
            (Gateway, false, Some(41), None),
            (Feed, true, None, None),
            (Feed, true, Some(41), Some((Some(41), MAX_REPLAY))),
            (Feed, false, Some(41), None),
        ];
        for (delivery, console, since, want) in table {
            let got = follow(*delivery, *console, *since).history().map(|q| (q.after, q.limit.unwrap_or(0)));
            assert_eq!(got, *want, "{delivery:?}, console {console}, since {since:?}");
            if let Some(q) = follow(*delivery, *console, *since).history() {
                assert_eq!((q.before, q.stream), (None, None));
            }
        }
    }

    #[test]
    fn a_feed_sees_each_line_once_and_in_order() {
        let who = user();
        let mut f = follow(Feed, true, Some(5));
        let steps: Vec<String> = [
            f.on_history(stored(S, 5)),
            f.on_history(stored(S, 6)),
            f.on_history(stored(S, 7)),
            f.on_event(&who, log(S, 7)),
            f.on_event(&who, log(S, 6)),
            f.on_event(&who, log(S, 8)),
        ]
        .iter()
        .map(show)
        .collect();
        assert_eq!(
            steps,
            [
                "skip",
                "deliver server_log (history)",
                "deliver server_log (history)",
                "skip",
                "skip",
                "deliver server_log"
            ]
        );
        // Without a cursor the first live line starts one.
        let mut f = follow(Feed, true, None);
        assert_eq!(show(&f.on_event(&who, log(S, 3))), "deliver server_log");
        assert_eq!(show(&f.on_event(&who, log(S, 3))), "skip");
    }

    #[test]
    fn a_gateway_client_drops_overlaps_itself() {
        let who = user();
        let mut f = follow(Gateway, true, Some(5));
        assert_eq!(show(&f.on_history(stored(S, 6))), "deliver server_log (history)");
        assert_eq!(show(&f.on_history(stored(S, 6))), "deliver server_log (history)");
        assert_eq!(show(&f.on_event(&who, log(S, 6))), "deliver server_log");
        assert_eq!(show(&f.on_event(&who, log(S, 1))), "deliver server_log");
    }

    #[test]
    fn table_rechecks() {
        enum Found {
            Access(ServerState, bool),
            Denied,
        }
        use Found::{Access as A, Denied};
        use ServerState::{Running, Suspended};
        // (delivery, lagged or grant changed, a line seen before, operator, what the check
        // found) → the step, then whether the console shows afterwards.
        let table: &[(Delivery, bool, bool, bool, Found, &str, bool)] = &[
            (Gateway, false, true, false, A(Running, true), "skip", true),
            (Gateway, false, true, false, A(Running, false), "skip", false),
            (Gateway, false, true, false, Denied, "end: access lost (not_found)", true),
            // A grant change on a suspended server does not end it: only a missed suspension does.
            (Gateway, false, true, false, A(Suspended, true), "skip", true),
            (Gateway, true, true, false, A(Suspended, true), "end: suspended", true),
            (Gateway, true, true, true, A(Suspended, true), "skip", true),
            (Gateway, true, true, false, A(Running, false), "skip", false),
            (Gateway, true, true, false, Denied, "end: access lost (not_found)", true),
            // A lagging feed catches its console up from the store, after the last line it saw.
            (Feed, true, true, false, A(Running, true), "replay after Some(4) up to Some(500)", true),
            (Feed, true, false, false, A(Running, true), "skip", true),
            (Feed, true, true, false, A(Running, false), "skip", false),
            (Feed, true, true, false, A(Suspended, true), "end: suspended", true),
            (Feed, true, true, true, A(Suspended, true), "replay after Some(4) up to Some(500)", true),
            (Feed, false, true, false, A(Running, true), "skip", true),
            (Feed, false, true, false, Denied, "end: access lost (not_found)", true),
        ];
        for (delivery, lagged, seen, op, found, want, console_after) in table {
            let who = if *op { operator() } else { user() };
            let mut f = follow(*delivery, true, None);
            if *seen {
                f.on_event(&who, log(S, 4));
            }
            let asked = if *lagged {
                f.on_lagged()
            } else {
                f.on_event(&who, DomainEvent::AccessChanged { server_id: S, user_id: ME })
            };
            assert_eq!(show(&asked), "recheck");
            let checked = match found {
                A(state, console) => Ok(Access { state: *state, console: *console }),
                Denied => Err(Error::not_found("server")),
            };
            let got = show(&f.on_access(&who, checked));
            let case = format!("{delivery:?}, lagged {lagged}, seen {seen}, operator {op}");
            assert_eq!(got, *want, "{case}");
            assert_eq!(f.console(), *console_after, "{case}");
        }
    }

    #[test]
    fn a_lost_console_hides_lines_until_it_is_back() {
        let who = user();
        let mut f = follow(Gateway, true, None);
        let grant = || DomainEvent::AccessChanged { server_id: S, user_id: ME };
        assert_eq!(show(&f.on_event(&who, grant())), "recheck");
        assert_eq!(show(&f.on_access(&who, Ok(access(false)))), "skip");
        assert_eq!(show(&f.on_event(&who, log(S, 1))), "skip");
        assert_eq!(show(&f.on_event(&who, stats())), "deliver resource_stats");
        assert_eq!(f.history(), None);
        assert_eq!(show(&f.on_event(&who, grant())), "recheck");
        assert_eq!(show(&f.on_access(&who, Ok(access(true)))), "skip");
        assert_eq!(show(&f.on_event(&who, log(S, 2))), "deliver server_log");
    }

    #[test]
    fn endings_as_the_gateway_and_a_feed_tell_them() {
        let frame = |end: &End| end.frame(S).map(|f| f.to_json());
        assert_eq!(
            frame(&End::Deleted).as_deref(),
            Some(r#"{"reason":"deleted","server_id":"00000000-0000-0000-0000-000000000001","type":"unsubscribed"}"#)
        );
        assert_eq!(
            frame(&End::AccessLost(Error::denied("x"))).as_deref(),
            Some(
                r#"{"reason":"access revoked","server_id":"00000000-0000-0000-0000-000000000001","type":"unsubscribed"}"#
            )
        );
        assert_eq!(frame(&End::Suspended), None);
        assert_eq!(End::Suspended.close(), Some((4409, "the server was suspended")));
        assert_eq!(End::Deleted.close(), None);
        assert_eq!(End::AccessLost(Error::denied("x")).close(), None);

        assert_eq!(End::Deleted.into_last_item(S).ok(), Some(DomainEvent::ServerDeleted { server_id: S }));
        let suspended = End::Suspended.into_last_item(S).expect_err("an error");
        assert_eq!((suspended.kind(), suspended.message()), (ErrorKind::PermissionDenied, "the server was suspended"));
        let lost = End::AccessLost(Error::not_found("server")).into_last_item(S).expect_err("an error");
        assert_eq!(lost.kind(), ErrorKind::NotFound);
    }
}
