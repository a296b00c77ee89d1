//! [`ServerFiles`]: the narrow handle through which the data plane (file operations, backups,
//! restores, SFTP) reaches one server's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use catalyst_core::denylist::Denylist;
use catalyst_core::id::ServerId;
use catalyst_core::model::Limits;
use catalyst_core::protocol::NodeEvent;
use catalyst_core::{Error, Result};

use super::disk_usage::{BulkJob, DiskUsage, FileTurn, fit};
use super::sandbox::Sandbox;
use crate::node::events::EventSink;

/// One server's files as the data plane may use them: where they are, its disk limit, whom
/// they belong to, the node's disk-use count and turns, whether a restore, a transfer or a
/// deletion owns them right now, which paths its template protects, and where to report. The
/// node builds it once the server is known (for a request, once its state allows file access).
#[derive(Debug, Clone)]
pub(crate) struct ServerFiles {
    id: ServerId,
    root: PathBuf,
    limit_bytes: u64,
    owner: Option<(u32, u32)>,
    usage: Arc<DiskUsage>,
    locked: Arc<AtomicBool>,
    events: EventSink,
    denylist: Arc<Denylist>,
}

impl ServerFiles {
    /// The files of server `id` below `root`. `locked` mirrors whether they are owned by a
    /// restore, a transfer or a deletion.
    pub(crate) fn new(
        id: ServerId,
        root: PathBuf,
        limits: &Limits,
        owner: Option<(u32, u32)>,
        usage: Arc<DiskUsage>,
        locked: Arc<AtomicBool>,
        events: EventSink,
    ) -> Self {
        let limit_bytes = limits.disk_mb.saturating_mul(1024 * 1024);
        Self { id, root, limit_bytes, owner, usage, locked, events, denylist: Arc::default() }
    }

    /// Refuse the template's `file_denylist` globs (validated by the control plane; a pattern
    /// that no longer compiles protects nothing rather than everything).
    pub(crate) fn with_denylist(mut self, patterns: &[String]) -> Self {
        self.denylist = Arc::new(Denylist::new(patterns).unwrap_or_default());
        self
    }

    /// `permission_denied` when the template's denylist protects `path`.
    pub(crate) fn check_allowed(&self, path: &str) -> Result<()> {
        if self.denylist.denies(path) {
            return Err(Error::denied(format!("{path} is protected by the template's file denylist")));
        }
        Ok(())
    }

    /// The server.
    pub(crate) fn id(&self) -> ServerId {
        self.id
    }

    /// Its directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Its disk limit in bytes (0 = none).
    pub(crate) fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Whom its files belong to (`None`: whoever writes them).
    pub(crate) fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }

    /// Does a restore, a transfer or a deletion own the files now? Checked per operation by
    /// sessions that outlive one request (SFTP).
    #[cfg_attr(not(feature = "sftp"), expect(dead_code, reason = "only SFTP sessions outlive one request"))]
    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Report `event` to the node's subscribers.
    pub(crate) fn emit(&self, event: NodeEvent) {
        self.events.emit(event);
    }

    /// Wait for a turn to run one blocking file operation (see [`DiskUsage::turn`]).
    pub(crate) async fn turn(&self) -> Result<FileTurn> {
        self.usage.turn(self.id).await
    }

    /// The bytes the server uses, as a check against its limit trusts them. Blocking.
    pub(crate) fn used(&self, sandbox: &Sandbox) -> Result<u64> {
        self.usage.current(self.id, sandbox)
    }

    /// The last count of the bytes the server uses (0 when never measured), without measuring.
    pub(crate) fn used_hint(&self) -> u64 {
        self.usage.peek(self.id)
    }

    /// Count `bytes` about to be written against the disk limit; refused when they do not fit.
    /// Blocking.
    pub(crate) fn reserve(&self, sandbox: &Sandbox, bytes: u64) -> Result<()> {
        self.usage.reserve(self.id, sandbox, self.limit_bytes, bytes)
    }

    /// Correct the count by `delta` bytes once a write settled.
    pub(crate) fn adjust(&self, delta: i64) {
        self.usage.adjust(self.id, delta);
    }

    /// Bytes that may still be written, failing when `needed` do not fit. Blocking.
    pub(crate) fn room(&self, sandbox: &Sandbox, needed: u64) -> Result<u64> {
        if self.limit_bytes == 0 {
            return Ok(u64::MAX);
        }
        fit(self.limit_bytes, self.used(sandbox)?, needed)
    }

    /// Forget the count: the files changed in a way only a new measurement tells.
    pub(crate) fn forget_usage(&self) {
        self.usage.forget(self.id);
    }

    /// The server's bulk job slot (one copy or archive job at a time).
    pub(crate) fn bulk_job(&self) -> Result<BulkJob<'_>> {
        self.usage.bulk_job(self.id)
    }
}
