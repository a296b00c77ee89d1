//! The daemon's file operations: each runs on a blocking thread against the server's
//! [`Sandbox`], with the server's disk limit enforced on every path that writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use catalyst_core::id::ServerId;
use catalyst_core::model::{ArchiveFormat, FileOp, FileReply};
use catalyst_core::{Error, ErrorKind, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::archive::{self, Ignore, Limited};
use super::daemon::NodeDaemon;
use super::sandbox::{Sandbox, relative};

/// Largest chunk one `Read` returns.
pub const MAX_CHUNK: u32 = 1 << 20;
/// Most entries one search returns.
const SEARCH_LIMIT: usize = 500;
/// How long a measured directory size is trusted (the server's own process writes too).
const USAGE_TTL: Duration = Duration::from_secs(10);
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
/// that pass through here until the measurement is older than [`USAGE_TTL`]. Also the bound on
/// the blocking work of file operations, per server and per node.
#[derive(Debug)]
pub(crate) struct DiskUsage {
    known: Mutex<HashMap<ServerId, (Instant, u64)>>,
    /// Servers with an archive or copy job running: one at a time each, since such a job may
    /// use all the room left.
    bulk: Mutex<std::collections::HashSet<ServerId>>,
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
struct BulkJob<'a> {
    usage: &'a DiskUsage,
    id: ServerId,
}

impl Drop for BulkJob<'_> {
    fn drop(&mut self) {
        self.usage.bulk.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
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
        self.server_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_insert_with(|| Arc::new(Semaphore::new(per_server)))
            .clone()
    }

    fn current(&self, id: ServerId, sandbox: &Sandbox) -> Result<u64> {
        if let Some((at, bytes)) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&id)
            && at.elapsed() < USAGE_TTL
        {
            return Ok(*bytes);
        }
        let bytes = sandbox.usage_sweeping(SystemTime::now().checked_sub(PARTIAL_TTL))?;
        self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(id, (Instant::now(), bytes));
        Ok(bytes)
    }
    fn bulk_job(&self, id: ServerId) -> Result<BulkJob<'_>> {
        if !self.bulk.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return Err(Error::conflict("another copy or archive operation on this server is running"));
        }
        Ok(BulkJob { usage: self, id })
    }

    /// Check and count `bytes` in one step, so concurrent writers cannot both pass.
    fn reserve(&self, id: ServerId, sandbox: &Sandbox, limit: u64, bytes: u64) -> Result<()> {
        self.current(id, sandbox)?;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        fit(limit, known.get(&id).map_or(0, |(_, b)| *b), bytes)?;
        if let Some((_, b)) = known.get_mut(&id) {
            *b = b.saturating_add(bytes);
        }
        Ok(())
    }

    fn adjust(&self, id: ServerId, delta: i64) {
        if let Some((_, bytes)) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id) {
            *bytes = bytes.saturating_add_signed(delta);
        }
    }

    pub(crate) fn peek(&self, id: ServerId) -> u64 {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&id).map_or(0, |(_, b)| *b)
    }

    pub(crate) fn forget(&self, id: ServerId) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// What one operation may use.
struct Budget<'a> {
    id: ServerId,
    limit: u64,
    usage: &'a DiskUsage,
    sandbox: &'a Sandbox,
}

impl Budget<'_> {
    /// Bytes that may still be written, failing when `needed` do not fit.
    fn room(&self, needed: u64) -> Result<u64> {
        if self.limit == 0 {
            return Ok(u64::MAX);
        }
        fit(self.limit, self.usage.current(self.id, self.sandbox)?, needed)
    }
}

/// The bytes left under `limit` (0 = none) with `used` taken, failing when `needed` do not fit.
fn fit(limit: u64, used: u64, needed: u64) -> Result<u64> {
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

impl NodeDaemon {
    /// Count `bytes` about to be written into a server's directory against its disk limit
    /// (`limit_bytes`, 0 = none); refused when they do not fit.
    pub(crate) fn reserve_disk(&self, id: ServerId, sandbox: &Sandbox, limit_bytes: u64, bytes: u64) -> Result<()> {
        self.usage().reserve(id, sandbox, limit_bytes, bytes)
    }

    /// Run one file operation in a server's directory.
    pub(super) async fn files(&self, id: ServerId, op: FileOp) -> Result<FileReply> {
        self.files_open(id).await?;
        let limits = self.limits_of(id).await?;
        let root = self.server_dir(id);
        let owner = self.server_user(id);
        let daemon = self.clone();
        // Bounded: a tenant can occupy at most its server's turns, all servers the node's.
        let turn = self.usage().turn(id).await?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let sandbox = Sandbox::open(&root)?;
            let budget = Budget {
                id,
                limit: limits.disk_mb.saturating_mul(1024 * 1024),
                usage: daemon.usage(),
                sandbox: &sandbox,
            };
            run(&sandbox, &budget, owner, op)
        })
        .await
        .map_err(|e| Error::internal("a file operation panicked", e))?
    }
}

fn run(sb: &Sandbox, budget: &Budget<'_>, owner: Option<(u32, u32)>, op: FileOp) -> Result<FileReply> {
    let give = |path: &str| owner.map_or(Ok(()), |o| sb.chown_tree(path, o));
    match op {
        FileOp::List { path, offset } => {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            Ok(FileReply::Entries { entries: sb.list_page(&path, offset, FileOp::LIST_PAGE)? })
        }
        FileOp::Stat { path } => Ok(FileReply::Entry { entry: sb.stat(&path)? }),
        FileOp::Read { path, offset, length } => {
            let (data, size) = sb.read_at(&path, offset, length.min(MAX_CHUNK) as usize)?;
            Ok(FileReply::Chunk { data, size })
        }
        FileOp::Write { path, offset, data, truncate } => {
            // Counted in allocated blocks, like the measured usage: the write may allocate up
            // to its length (even inside a sparse file's hole); the difference is settled after.
            let created = sb.symlink_metadata(&path).is_err();
            let before = sb.allocated(&path)?;
            let reserved = data.len() as u64;
            budget.usage.reserve(budget.id, sb, budget.limit, reserved)?;
            let written = sb.write_at(&path, offset, &data, truncate);
            let after = sb.allocated(&path).unwrap_or(before);
            budget.usage.adjust(budget.id, after as i64 - before as i64 - reserved as i64);
            written?;
            if created {
                give(&path)?;
            }
            Ok(FileReply::Entry { entry: sb.stat(&path)? })
        }
        FileOp::Create { path, directory } => {
            if directory {
                sb.mkdir_as(&path, owner)?;
            } else {
                sb.create_file(&path)?;
                give(&path)?;
            }
            Ok(FileReply::Entry { entry: sb.stat(&path)? })
        }
        FileOp::Delete { paths } => {
            if paths.is_empty() {
                return Err(Error::invalid("paths: name at least one"));
            }
            let outcome = paths.iter().try_for_each(|p| sb.remove(p));
            budget.usage.forget(budget.id);
            outcome.map(|()| FileReply::Done)
        }
        FileOp::Rename { from, to } => sb.rename(&from, &to).map(|()| FileReply::Done),
        FileOp::Copy { from, to } => {
            let _job = budget.usage.bulk_job(budget.id)?;
            // Refused at once when what the source takes does not fit; the copy itself stops
            // at the room left (it writes only data, holes stay holes).
            let room = budget.room(sb.size_of(&from)?)?;
            let copied = sb.copy_as(&from, &to, room, owner);
            budget.usage.forget(budget.id);
            copied?;
            Ok(FileReply::Entry { entry: sb.stat(&to)? })
        }
        FileOp::Chmod { path, mode } => sb.chmod(&path, mode).map(|()| FileReply::Done),
        FileOp::Compress { paths, destination, format } => {
            if paths.is_empty() {
                return Err(Error::invalid("paths: name at least one"));
            }
            let _job = budget.usage.bulk_job(budget.id)?;
            let room = budget.room(0)?;
            let rels = paths.iter().map(|p| relative(p)).collect::<Result<Vec<PathBuf>>>()?;
            let file = sb.create_new(&destination)?;
            if let Err(e) = super::sandbox::give_fd(&file, owner) {
                let _ = sb.remove_file(&destination);
                return Err(super::sandbox::io_err(&destination, e));
            }
            let ignore = Ignore::none().and_path(relative(&destination)?);
            let packed = archive::pack(sb.root(), &rels, format, &ignore, Limited::new(file, room));
            budget.usage.forget(budget.id);
            if let Err(e) = packed {
                let _ = sb.remove_file(&destination);
                return Err(e);
            }
            Ok(FileReply::Entry { entry: sb.stat(&destination)? })
        }
        FileOp::Decompress { path, destination } => {
            let format = ArchiveFormat::from_name(&path)
                .ok_or_else(|| Error::invalid("path: not a .tar, .tar.gz, .tgz, .tar.zst or .zip archive"))?;
            let _job = budget.usage.bulk_job(budget.id)?;
            let room = budget.room(0)?;
            let input = sb.open_file(&path)?;
            // Everything the unpack creates belongs to the server's user, and a failed unpack
            // leaves nothing behind: entries are staged and moved in only when all are written,
            // and the destination's directories made for it are removed again.
            let created = if relative(&destination)?.as_os_str().is_empty() {
                Vec::new()
            } else {
                sb.mkdir_as(&destination, owner)?
            };
            let unpacked = sb.dir(&destination).and_then(|dest| archive::unpack_as(input, format, &dest, room, owner));
            budget.usage.forget(budget.id);
            if unpacked.is_err() {
                sb.remove_created(&created);
            }
            let done = unpacked?;
            Ok(FileReply::Extracted { entries: done.entries, bytes: done.bytes, skipped: done.skipped })
        }
        FileOp::Search { path, query } => {
            if query.trim().is_empty() || query.len() > 255 {
                return Err(Error::invalid("query: 1 to 255 characters"));
            }
            Ok(FileReply::Entries { entries: sb.search(&path, query.trim(), SEARCH_LIMIT)? })
        }
        FileOp::Usage => {
            budget.usage.forget(budget.id);
            Ok(FileReply::Usage { bytes: budget.usage.current(budget.id, sb)? })
        }
    }
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
