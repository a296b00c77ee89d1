//! The daemon's file operations: each runs on a blocking thread against the server's
//! [`Sandbox`], with the server's disk limit enforced on every path that writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use catalyst_core::id::ServerId;
use catalyst_core::model::{ArchiveFormat, FileOp, FileReply};
use catalyst_core::{Error, ErrorKind, Result};

use super::archive::{self, Ignore, Limited};
use super::daemon::NodeDaemon;
use super::sandbox::{Sandbox, relative};

/// Largest chunk one `Read` returns.
pub const MAX_CHUNK: u32 = 1 << 20;
/// Most entries one search returns.
const SEARCH_LIMIT: usize = 500;
/// How long a measured directory size is trusted (the server's own process writes too).
const USAGE_TTL: Duration = Duration::from_secs(10);

/// Bytes used per server directory: measured by walking it, then kept current by the writes
/// that pass through here until the measurement is older than [`USAGE_TTL`].
#[derive(Debug, Default)]
pub(crate) struct DiskUsage {
    known: Mutex<HashMap<ServerId, (Instant, u64)>>,
    /// Servers with an archive or copy job running: one at a time each, since such a job may
    /// use all the room left.
    bulk: Mutex<std::collections::HashSet<ServerId>>,
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
    fn current(&self, id: ServerId, sandbox: &Sandbox) -> Result<u64> {
        if let Some((at, bytes)) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&id)
            && at.elapsed() < USAGE_TTL
        {
            return Ok(*bytes);
        }
        let bytes = sandbox.usage()?;
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
        let owner = self.server_user();
        let daemon = self.clone();
        tokio::task::spawn_blocking(move || {
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
            let before = sb.stat(&path).map(|e| e.size).unwrap_or(0);
            let grows = (offset + data.len() as u64).saturating_sub(before);
            budget.usage.reserve(budget.id, sb, budget.limit, grows)?;
            let created = before == 0 && offset == 0;
            let size = sb.write_at(&path, offset, &data, truncate)?;
            budget.usage.adjust(budget.id, size as i64 - before as i64 - grows as i64);
            if created {
                give(&path)?;
            }
            Ok(FileReply::Entry { entry: sb.stat(&path)? })
        }
        FileOp::Create { path, directory } => {
            if directory {
                sb.mkdir(&path)?
            } else {
                sb.create_file(&path)?
            }
            give(&path)?;
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
            budget.room(sb.size_of(&from)?)?;
            let bytes = sb.copy(&from, &to)?;
            budget.usage.adjust(budget.id, bytes as i64);
            give(&to)?;
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
            let ignore = Ignore::none().and_path(relative(&destination)?);
            let packed = archive::pack(sb.root(), &rels, format, &ignore, Limited::new(file, room));
            budget.usage.forget(budget.id);
            if let Err(e) = packed {
                let _ = sb.remove(&destination);
                return Err(e);
            }
            give(&destination)?;
            Ok(FileReply::Entry { entry: sb.stat(&destination)? })
        }
        FileOp::Decompress { path, destination } => {
            let format = ArchiveFormat::from_name(&path)
                .ok_or_else(|| Error::invalid("path: not a .tar, .tar.gz, .tgz, .tar.zst or .zip archive"))?;
            let _job = budget.usage.bulk_job(budget.id)?;
            let room = budget.room(0)?;
            let input = sb.open_file(&path)?;
            if !relative(&destination)?.as_os_str().is_empty() {
                sb.mkdir(&destination)?;
            }
            let unpacked = archive::unpack(input, format, &sb.dir(&destination)?, room);
            budget.usage.forget(budget.id);
            let done = unpacked?;
            give(&destination)?;
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
