//! What each server directory takes on disk, measured by walking it and kept current by the
//! writes that pass through the node; and the turns that bound the blocking work of file
//! operations, per server and per node. The one cache of disk use: file operations check the
//! disk limit against it, the stats reporter samples it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use catalyst_core::id::ServerId;
use catalyst_core::{Error, ErrorKind, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::sandbox::Sandbox;
use crate::sync::lock;

/// How long a measured directory size is trusted by a check against the disk limit (the
/// server's own process writes too).
pub(crate) const USAGE_TTL: Duration = Duration::from_secs(10);
/// How long the partial file of an interrupted upload (`.<name>.upload`) waits to be resumed:
/// one nobody wrote to for this long is deleted when the directory is next measured.
pub(crate) const PARTIAL_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// File operations (REST and SFTP) of one server running at once on blocking threads.
const SERVER_FILE_OPS: usize = 8;
/// File operations of all servers of the node running at once: well below tokio's blocking
/// pool (512 threads), so logins (argon2) and everything else always find a thread.
const NODE_FILE_OPS: usize = 64;
/// How long an operation waits for its turn before it is refused.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// Bytes used per server directory: measured by walking it, then kept current by the writes
/// that pass through here until the measurement is older than its reader trusts. Also the
/// bound on the blocking work of file operations, per server and per node.
#[derive(Debug)]
pub(crate) struct DiskUsage {
    known: Mutex<HashMap<ServerId, (Instant, u64)>>,
    /// Servers with an archive or copy job running: one at a time each, since such a job may
    /// use all the room left.
    bulk: Mutex<HashSet<ServerId>>,
    /// Turns of each server's file operations.
    server_ops: Mutex<HashMap<ServerId, Arc<Semaphore>>>,
    /// Turns of the node's file operations.
    node_ops: Arc<Semaphore>,
    /// Turns per server.
    per_server: usize,
}

impl Default for DiskUsage {
    fn default() -> Self {
        Self::with_bounds(SERVER_FILE_OPS, NODE_FILE_OPS)
    }
}

/// A file operation's turn: one of its server's and one of the node's, released on drop. Move
/// it into the blocking work, so it is held until the work ends even when the caller left.
#[derive(Debug)]
pub(crate) struct FileTurn {
    _server: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
}

/// A server's bulk job slot, released on drop.
pub(crate) struct BulkJob<'a> {
    usage: &'a DiskUsage,
    id: ServerId,
}

impl Drop for BulkJob<'_> {
    fn drop(&mut self) {
        lock(&self.usage.bulk).remove(&self.id);
    }
}

impl DiskUsage {
    fn with_bounds(per_server: usize, per_node: usize) -> Self {
        Self {
            known: Mutex::default(),
            bulk: Mutex::default(),
            server_ops: Mutex::default(),
            node_ops: Arc::new(Semaphore::new(per_node)),
            per_server,
        }
    }

    /// Wait (at most [`QUEUE_WAIT`]) for a turn to run one file operation of server `id`.
    pub(crate) async fn turn(&self, id: ServerId) -> Result<FileTurn> {
        self.turn_within(id, QUEUE_WAIT).await
    }

    async fn turn_within(&self, id: ServerId, wait: Duration) -> Result<FileTurn> {
        let server = self.server_semaphore(id);
        let deadline = tokio::time::Instant::now() + wait;
        let server = match tokio::time::timeout_at(deadline, server.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "{} file operations of this server are already running; try again shortly",
                        self.per_server
                    ),
                )
                .with_retry_after(Duration::from_secs(1)));
            }
        };
        let node = match tokio::time::timeout_at(deadline, self.node_ops.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(Error::unavailable("the node is busy with file operations; try again shortly")
                    .with_retry_after(Duration::from_secs(1)));
            }
        };
        Ok(FileTurn { _server: server, _node: node })
    }

    fn server_semaphore(&self, id: ServerId) -> Arc<Semaphore> {
        let per_server = self.per_server;
        lock(&self.server_ops).entry(id).or_insert_with(|| Arc::new(Semaphore::new(per_server))).clone()
    }

    /// The bytes server `id` uses, measured again (sweeping expired partial uploads) when the
    /// last measurement is older than `max_age`. Blocking: walks the tree.
    pub(crate) fn measured(&self, id: ServerId, sandbox: &Sandbox, max_age: Duration) -> Result<u64> {
        if let Some((at, bytes)) = lock(&self.known).get(&id)
            && at.elapsed() < max_age
        {
            return Ok(*bytes);
        }
        let bytes = sandbox.usage_sweeping(SystemTime::now().checked_sub(PARTIAL_TTL))?;
        lock(&self.known).insert(id, (Instant::now(), bytes));
        Ok(bytes)
    }

    /// The bytes server `id` uses, as trusted by a check against its disk limit.
    pub(crate) fn current(&self, id: ServerId, sandbox: &Sandbox) -> Result<u64> {
        self.measured(id, sandbox, USAGE_TTL)
    }

    /// Take server `id`'s bulk job slot; refused while another bulk job of it runs.
    pub(crate) fn bulk_job(&self, id: ServerId) -> Result<BulkJob<'_>> {
        if !lock(&self.bulk).insert(id) {
            return Err(Error::conflict("another copy or archive operation on this server is running"));
        }
        Ok(BulkJob { usage: self, id })
    }

    /// Check and count `bytes` in one step, so concurrent writers cannot both pass.
    pub(crate) fn reserve(&self, id: ServerId, sandbox: &Sandbox, limit: u64, bytes: u64) -> Result<()> {
        self.current(id, sandbox)?;
        let mut known = lock(&self.known);
        fit(limit, known.get(&id).map_or(0, |(_, b)| *b), bytes)?;
        if let Some((_, b)) = known.get_mut(&id) {
            *b = b.saturating_add(bytes);
        }
        Ok(())
    }

    /// Correct the count of server `id` by `delta` bytes (after a write settled).
    pub(crate) fn adjust(&self, id: ServerId, delta: i64) {
        if let Some((_, bytes)) = lock(&self.known).get_mut(&id) {
            *bytes = bytes.saturating_add_signed(delta);
        }
    }

    /// The last count of server `id` (0 when never measured), without measuring.
    pub(crate) fn peek(&self, id: ServerId) -> u64 {
        lock(&self.known).get(&id).map_or(0, |(_, b)| *b)
    }

    /// Drop the count of server `id`: the next reader measures again.
    pub(crate) fn forget(&self, id: ServerId) {
        lock(&self.known).remove(&id);
    }
}

/// The bytes left under `limit` (0 = none) with `used` taken, failing when `needed` do not fit.
pub(crate) fn fit(limit: u64, used: u64, needed: u64) -> Result<u64> {
    if limit == 0 {
        return Ok(u64::MAX);
    }
    let left = limit.saturating_sub(used);
    if needed > left {
        return Err(Error::new(
            ErrorKind::QuotaExceeded,
            format!("the server's disk limit leaves {left} bytes; {needed} are needed"),
        ));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_operations_take_bounded_turns_per_server_and_per_node() {
        let usage = DiskUsage::with_bounds(2, 3);
        let (a, b) = (ServerId::new(), ServerId::new());
        let wait = Duration::from_millis(50);
        let held = [usage.turn_within(a, wait).await.expect("a1"), usage.turn_within(a, wait).await.expect("a2")];
        // The server's turns are taken: its next operation is refused after the wait, not hung.
        let e = usage.turn_within(a, wait).await.expect_err("a3");
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert!(e.retry_after().is_some());
        // Another server still gets a turn, until the node's are all taken.
        let b1 = usage.turn_within(b, wait).await.expect("b1");
        let e = usage.turn_within(b, wait).await.expect_err("node bound");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        drop(b1);
        drop(held);
        // A queued operation runs once a turn is free.
        let first = usage.turn_within(a, wait).await.expect("again");
        let second = usage.turn_within(a, wait).await.expect("again");
        let queued = usage.turn_within(a, Duration::from_secs(5));
        let release = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(first);
        };
        let (turn, ()) = tokio::join!(queued, release);
        turn.expect("the queued operation got its turn");
        drop(second);
    }
}
