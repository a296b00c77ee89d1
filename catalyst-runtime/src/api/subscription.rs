//! Live feeds of one server's events for [`CatalystApi::events`](super::CatalystApi::events):
//! console lines (replayed from a sequence number first), state changes, resource samples,
//! install output, backup and transfer progress. The embedded feed reads the event bus; the
//! remote one the WebSocket gateway; both yield the same [`DomainEvent`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use catalyst_core::events::DomainEvent;
use catalyst_core::follow::{Delivery, Follow};
use catalyst_core::id::ServerId;
use catalyst_core::model::ServerLog;
use catalyst_core::permission::Principal;
use catalyst_core::protocol::gateway::ServerFrame;
use catalyst_core::{Error, Result};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::CatalystApi;
use super::follow::{Outcome, Sink, access, carry_out, history};
use crate::Catalyst;
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

/// A feed's channel as a follow's sink: frames become events again, so the embedded feed
/// yields what the remote one does.
struct Events<'a>(&'a mpsc::Sender<Result<DomainEvent>>);

impl Sink for Events<'_> {
    async fn send(&mut self, frame: ServerFrame) -> bool {
        match frame.into_event() {
            Some(event) => self.0.send(Ok(event)).await.is_ok(),
            None => true,
        }
    }
}

/// Follow server `id` on the event bus of `c`, acting as `who` (the rules: [`Follow`]).
pub(super) async fn embedded(c: Catalyst, who: Principal, id: ServerId, since: Option<i64>) -> Result<Subscription> {
    // Subscribe first, so that nothing falls between the replay and the live feed.
    let mut bus = c.events().subscribe();
    let mut follow = Follow::new(id, Delivery::Feed, since, access(&c, &who, id).await?);
    let replayed = match follow.history() {
        Some(query) => history(&c, &who, id, &query).await?,
        None => Vec::new(),
    };
    let (tx, rx) = mpsc::channel(FEED_BUFFER);
    // The control plane's task: its shutdown ends the feed.
    let background = c.background().clone();
    let feed = background.spawn(async move {
        let mut send = Events(&tx);
        for line in replayed {
            let step = follow.on_history(line);
            if !matches!(carry_out(&c, &who, &mut follow, step, &mut send).await, Outcome::Going) {
                return;
            }
        }
        loop {
            let step = match bus.recv().await {
                Ok(event) => follow.on_event(&who, event),
                // Too slow a reader: the follow checks access again and catches up.
                Err(RecvError::Lagged(_)) => follow.on_lagged(),
                Err(RecvError::Closed) => return,
            };
            match carry_out(&c, &who, &mut follow, step, &mut send).await {
                Outcome::Going => {}
                Outcome::Gone => return,
                Outcome::Ended(end) => {
                    let _ = tx.send(end.into_last_item(id)).await;
                    return;
                }
            }
        }
    });
    Ok(Subscription::new(rx, feed.abort_handle()))
}
