//! Live feeds of one server's events for [`CatalystApi::events`](super::CatalystApi::events):
//! console lines (replayed from a sequence number first), state changes, resource samples,
//! install output, backup and transfer progress. The embedded feed reads the event bus; the
//! remote one the WebSocket gateway; both yield the same [`DomainEvent`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use catalyst_core::events::DomainEvent;
use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{LogQuery, ServerLog};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::{Error, Result};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::CatalystApi;
use crate::Catalyst;

/// Console lines replayed at most when a feed resumes (as the WebSocket gateway does).
pub const MAX_REPLAY: u32 = 500;
/// Events buffered for a slow reader; beyond them the feed catches up from the store.
pub const FEED_BUFFER: usize = 256;

/// A live feed. `next()` yields events in order and `None` once the feed has ended (the
/// server was deleted, or the connection closed); an error (access lost, the server
/// suspended, the credential revoked) is the last item. Dropping it ends the feed.
pub struct Subscription<T = DomainEvent> {
    rx: mpsc::Receiver<Result<DomainEvent>>,
    pick: fn(DomainEvent) -> Option<T>,
    feed: AbortOnDrop,
    closed: Arc<AtomicBool>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

/// Ends a [`Subscription`] (see [`Subscription::closer`]).
#[derive(Debug, Clone)]
pub struct Closer {
    feed: tokio::task::AbortHandle,
    closed: Arc<AtomicBool>,
}

impl Closer {
    /// End the feed now; what it buffered is dropped.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.feed.abort();
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Subscription {
    /// A feed whose events arrive on `rx`, produced by `feed`, which ends with it.
    pub fn new(rx: mpsc::Receiver<Result<DomainEvent>>, feed: tokio::task::AbortHandle) -> Self {
        Self { rx, pick: Some, feed: AbortOnDrop(feed), closed: Arc::default() }
    }

    /// Only the console lines.
    pub fn console(self) -> Subscription<ServerLog> {
        let pick = |e| match e {
            DomainEvent::ServerLog(line) => Some(line),
            _ => None,
        };
        Subscription { rx: self.rx, pick, feed: self.feed, closed: self.closed }
    }
}

impl<T> Subscription<T> {
    /// A handle that ends the feed from elsewhere: a pending `next()` then returns `None`.
    pub fn closer(&self) -> Closer {
        Closer { feed: self.feed.0.clone(), closed: self.closed.clone() }
    }

    /// The next item, or `None` when the feed has ended.
    pub async fn next(&mut self) -> Option<Result<T>> {
        loop {
            let received = self.rx.recv().await;
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            match received? {
                Ok(event) => {
                    if let Some(item) = (self.pick)(event) {
                        return Some(Ok(item));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// What a [`SharedFeed`] yields: every event, or the console lines only.
enum Picked {
    Events(Subscription),
    Console(Subscription<ServerLog>),
}

/// A feed as the bindings hold it: shared by the calls made on it, its items as JSON. `next()`
/// calls take turns; `close()` works from anywhere, a pending `next()` included.
#[derive(Clone)]
pub struct SharedFeed {
    open: Arc<tokio::sync::Mutex<Option<Picked>>>,
    closer: Closer,
}

impl SharedFeed {
    /// Follow server `id` through `api` (see [`CatalystApi::events`]); only its console lines
    /// when `console`.
    pub async fn open(api: &dyn CatalystApi, id: ServerId, since: Option<i64>, console: bool) -> Result<Self> {
        let events = api.events(id, since).await?;
        let closer = events.closer();
        let picked = if console { Picked::Console(events.console()) } else { Picked::Events(events) };
        Ok(Self { open: Arc::new(tokio::sync::Mutex::new(Some(picked))), closer })
    }

    /// The next item, or `None` once the feed has ended (after its last item or its error).
    pub async fn next(&self) -> Option<Result<serde_json::Value>> {
        let mut open = self.open.lock().await;
        let item = match open.as_mut()? {
            Picked::Events(feed) => feed.next().await.map(|r| r.map(serde_json::to_value)),
            Picked::Console(feed) => feed.next().await.map(|r| r.map(serde_json::to_value)),
        };
        let item = item.map(|r| r.and_then(|v| v.map_err(|e| Error::internal("an event", e))));
        if !matches!(item, Some(Ok(_))) {
            *open = None;
        }
        item
    }

    /// End the feed.
    pub fn close(&self) {
        self.closer.close();
        if let Ok(mut open) = self.open.try_lock() {
            *open = None;
        }
    }
}

impl std::fmt::Debug for SharedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFeed").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// Console lines after `seq` are new; earlier ones were delivered already (a replay and the live
/// feed overlap).
#[derive(Debug, Clone, Copy, Default)]
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

/// Stored console lines after `after`, oldest first.
async fn replay(c: &Catalyst, who: &Principal, id: ServerId, after: i64) -> Result<Vec<ServerLog>> {
    let query = LogQuery { after: Some(after), limit: Some(MAX_REPLAY), ..Default::default() };
    let mut lines = c.server_logs(who, id, &query).await?;
    lines.reverse();
    Ok(lines)
}

/// Follow server `id` on the event bus of `c`, acting as `who`.
pub(super) async fn embedded(c: Catalyst, who: Principal, id: ServerId, since: Option<i64>) -> Result<Subscription> {
    // Subscribe first, so that nothing falls between the replay and the live feed.
    let mut bus = c.events().subscribe();
    c.get_server(&who, id).await?;
    let mut console = c.check_server_permission(&who, id, Permission::ConsoleRead).await.is_ok();
    let history = match since {
        Some(after) if console => replay(&c, &who, id, after).await?,
        _ => Vec::new(),
    };
    let (tx, rx) = mpsc::channel(FEED_BUFFER);
    // The control plane's task: its shutdown ends the feed.
    let background = c.background().clone();
    let feed = background.spawn(async move {
        let mut cursor = Cursor::after(since);
        let send = |event: Result<DomainEvent>| tx.send(event);
        for line in history {
            if cursor.admit(&line) && send(Ok(DomainEvent::ServerLog(line))).await.is_err() {
                return;
            }
        }
        loop {
            let event = match bus.recv().await {
                Ok(event) => event,
                // Too slow a reader: what was missed may have ended its access; check it again,
                // then catch the console up from the store.
                Err(RecvError::Lagged(_)) => {
                    match c.get_server(&who, id).await {
                        Ok(s) if s.state == ServerState::Suspended && !who.holds(Permission::ServerSuspend) => {
                            let _ = send(Err(Error::denied("the server was suspended"))).await;
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = send(Err(e)).await;
                            return;
                        }
                    }
                    console = c.check_server_permission(&who, id, Permission::ConsoleRead).await.is_ok();
                    let Some(after) = cursor.seq().filter(|_| console) else { continue };
                    for line in replay(&c, &who, id, after).await.unwrap_or_default() {
                        if cursor.admit(&line) && send(Ok(DomainEvent::ServerLog(line))).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if event.server_id() != Some(id) {
                continue;
            }
            match &event {
                DomainEvent::AccessChanged { user_id, .. } => {
                    if Some(*user_id) == who.user_id() {
                        if let Err(e) = c.get_server(&who, id).await {
                            let _ = send(Err(e)).await;
                            return;
                        }
                        console = c.check_server_permission(&who, id, Permission::ConsoleRead).await.is_ok();
                    }
                    continue;
                }
                DomainEvent::ServerLog(line) if !console || !cursor.admit(line) => continue,
                DomainEvent::InstallationProgress { .. } if !console => continue,
                DomainEvent::ServerStateUpdate { to: ServerState::Suspended, .. }
                    if !who.holds(Permission::ServerSuspend) =>
                {
                    let _ = send(Err(Error::denied("the server was suspended"))).await;
                    return;
                }
                _ => {}
            }
            let deleted = matches!(event, DomainEvent::ServerDeleted { .. });
            if send(Ok(event)).await.is_err() || deleted {
                return;
            }
        }
    });
    Ok(Subscription::new(rx, feed.abort_handle()))
}
