//! Backups on the node: the server directory streams through tar and zstd into backup
//! storage while it is hashed (SHA-256 of the stored bytes); a restore downloads and verifies
//! the checksum before touching anything, unpacks into a staging directory with the archive
//! safety rules and the disk limit, then swaps it in and rolls back if the swap fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use catalyst_core::id::{BackupId, ServerId};
use catalyst_core::model::{ArchiveFormat, BackupStorage};
use catalyst_core::ports::{BackupTarget, backup_key};
use catalyst_core::protocol::{NodeEvent, StoredArchive, WireError};
use catalyst_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::archive::{self, Ignore};
use super::backup_target::open_target;
use super::sandbox::Sandbox;
use super::server_files::ServerFiles;

/// A restore waiting for `Effect::RunRestore`.
#[derive(Debug)]
pub(crate) struct RestoreJob {
    /// The backup to restore.
    pub(crate) backup_id: BackupId,
    /// Where it is stored.
    pub(crate) storage: BackupStorage,
    /// The SHA-256 its stored bytes must have.
    pub(crate) checksum: String,
}

/// Read by the node from the server's root: patterns to leave out of backups.
pub const IGNORE_FILE: &str = ".catalystignore";
/// Bytes of the ignore file read (the rest is not looked at).
const MAX_IGNORE_FILE: usize = 64 * 1024;
/// Bytes handed to the uploader at a time.
const CHUNK: usize = 1 << 20;
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A `Write` that hashes and counts what passes and hands it to the uploader in chunks.
struct Uploading {
    tx: mpsc::Sender<Result<Bytes>>,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl Uploading {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn finish(mut self) -> std::io::Result<StoredArchive> {
        self.send()?;
        Ok(StoredArchive { size_bytes: self.size, checksum: hex::encode(self.hasher.finalize()) })
    }
}

impl Write for Uploading {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A result as it crosses the wire in an event.
pub(crate) fn wire<T>(r: Result<T>) -> std::result::Result<T, WireError> {
    r.map_err(|e| WireError::from(&e))
}

/// Backups and restores of a node's servers, with the node's data directory as the home of
/// local backup storage and of a restore's scratch files.
#[derive(Debug, Clone)]
pub(crate) struct Backups {
    data_dir: PathBuf,
}

impl Backups {
    /// Backups below `data_dir`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf() }
    }

    /// Back the server up into `storage`, reporting `BackupProgress` meanwhile and
    /// `BackupDone` at the end.
    pub(crate) async fn run_backup(&self, files: &ServerFiles, backup_id: BackupId, storage: &BackupStorage) {
        let result = self.backup(files, backup_id, storage).await;
        files.emit(NodeEvent::BackupDone { server_id: files.id(), backup_id, result: wire(result) });
    }

    async fn backup(&self, files: &ServerFiles, backup_id: BackupId, storage: &BackupStorage) -> Result<StoredArchive> {
        let server_id = files.id();
        let store = open_target(storage, &self.data_dir)?;
        let key = backup_key(server_id, backup_id);
        let root = files.root().to_path_buf();
        let read = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = mpsc::channel::<Result<Bytes>>(4);
        // A backup reads the whole tree on the blocking pool: it takes a file turn like any
        // other operation, held until the reading ends.
        let turn = files.turn().await?;
        let producer = {
            let read = read.clone();
            tokio::task::spawn_blocking(move || -> Result<(StoredArchive, u64)> {
                let _turn = turn;
                let sandbox = Sandbox::open(&root)?;
                let total = sandbox.usage()?;
                let ignore = match sandbox.read_at(IGNORE_FILE, 0, MAX_IGNORE_FILE) {
                    Ok((text, _)) => Ignore::parse(&String::from_utf8_lossy(&text))?,
                    Err(e) if e.kind() == ErrorKind::NotFound => Ignore::none(),
                    Err(e) => return Err(e),
                };
                let sink =
                    Uploading { tx: tx.clone(), buffer: Vec::with_capacity(CHUNK), hasher: Sha256::new(), size: 0 };
                let packed = archive::pack_stream(
                    sandbox.root(),
                    &[PathBuf::new()],
                    ArchiveFormat::TarZst,
                    &ignore,
                    Some(&read),
                    sink,
                )
                .and_then(|sink| sink.finish().map_err(|e| Error::unavailable(e.to_string())));
                match packed {
                    Ok(stored) => Ok((stored, total)),
                    Err(e) => {
                        // Abort the upload: nothing partial is stored.
                        let _ = tx.blocking_send(Err(Error::new(e.kind(), e.message().to_string())));
                        Err(e)
                    }
                }
            })
        };
        let ticker = {
            let (events, read) = (files.clone(), read.clone());
            let total = files.used_hint();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PROGRESS_EVERY);
                loop {
                    every.tick().await;
                    let bytes = read.load(Ordering::Relaxed);
                    events.emit(NodeEvent::BackupProgress { server_id, backup_id, bytes, total: total.max(bytes) });
                }
            })
        };
        let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed();
        let uploaded = store.put(&key, chunks).await;
        let produced = producer.await.map_err(|e| Error::internal("the backup writer panicked", e));
        ticker.abort();
        let (stored, total) = match (uploaded, produced) {
            (Err(e), _) => return Err(e),
            (Ok(()), Err(e)) | (Ok(()), Ok(Err(e))) => return Err(e),
            (Ok(()), Ok(Ok(done))) => done,
        };
        files.emit(NodeEvent::BackupProgress { server_id, backup_id, bytes: total, total });
        Ok(stored)
    }

    /// Delete a stored backup.
    pub(crate) async fn delete(&self, server_id: ServerId, backup_id: BackupId, storage: &BackupStorage) -> Result<()> {
        open_target(storage, &self.data_dir)?.delete(&backup_key(server_id, backup_id)).await
    }

    /// Restore the server's files from a backup: download and verify, unpack into staging
    /// within the disk limit, then swap it in (see the module's doc). The server's files must be
    /// locked meanwhile.
    pub(crate) async fn restore(&self, files: &ServerFiles, job: &RestoreJob) -> Result<()> {
        let RestoreJob { backup_id, storage, checksum } = job;
        let backup_id = *backup_id;
        let store = open_target(storage, &self.data_dir)?;
        let work = self.data_dir.join("restore");
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| Error::internal("cannot create the restore directory", e))?;
        let download = work.join(format!("{backup_id}.tar.zst"));
        let outcome = self.restore_from(store.as_ref(), files, backup_id, checksum, &download).await;
        let _ = tokio::fs::remove_file(&download).await;
        outcome
    }

    async fn restore_from(
        &self,
        store: &dyn BackupTarget,
        files: &ServerFiles,
        backup_id: BackupId,
        checksum: &str,
        download: &Path,
    ) -> Result<()> {
        let server_id = files.id();
        let io = |what: &'static str| move |e: std::io::Error| Error::internal(what, e);
        // 1. Download and verify before anything else is touched.
        let mut stream = store.get(&backup_key(server_id, backup_id)).await?;
        let mut file = tokio::fs::File::create(download).await.map_err(io("cannot write the download"))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io("cannot write the download"))?;
        }
        file.flush().await.map_err(io("cannot write the download"))?;
        drop(file);
        let got = hex::encode(hasher.finalize());
        if !got.eq_ignore_ascii_case(checksum) {
            return Err(Error::conflict(format!(
                "the stored backup does not match its checksum ({got} instead of {checksum}); nothing was changed"
            )));
        }
        // 2. Unpack into staging, within the disk limit.
        let (live, staging, old) = self.restore_dirs(server_id);
        let (limit, owner) = (files.limit_bytes(), files.owner());
        let (archive, staging_dir) = (download.to_path_buf(), staging.clone());
        let unpacked = tokio::task::spawn_blocking(move || -> Result<()> {
            let _ = std::fs::remove_dir_all(&staging_dir);
            let sandbox = Sandbox::open(&staging_dir)?;
            let input = std::fs::File::open(&archive).map_err(|e| Error::internal("cannot read the download", e))?;
            archive::unpack_stream(
                input,
                ArchiveFormat::TarZst,
                sandbox.root(),
                if limit == 0 { u64::MAX } else { limit },
            )?;
            if let Some(owner) = owner {
                sandbox.chown_tree("/", owner)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::internal("the restore panicked", e))?;
        if let Err(e) = unpacked {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
        // 3. Swap, rolling back when the second rename fails. A leftover `.old` is only ever
        //    deleted while the live directory exists (it may be the only copy).
        let had_live = tokio::fs::try_exists(&live).await.unwrap_or(false);
        if had_live {
            let _ = tokio::fs::remove_dir_all(&old).await;
            tokio::fs::rename(&live, &old).await.map_err(io("cannot move the server directory aside"))?;
        }
        if let Err(e) = tokio::fs::rename(&staging, &live).await {
            if had_live && let Err(back) = tokio::fs::rename(&old, &live).await {
                tracing::error!(server = %server_id, error = %back, "the previous files stay in {}", old.display());
            }
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(Error::internal("cannot move the restored files in place", e));
        }
        let _ = tokio::fs::remove_dir_all(&old).await;
        Ok(())
    }

    /// After a restore cut short: the previous files back in place when the live directory is
    /// missing, the staging copy removed.
    pub(crate) async fn repair_restore(&self, server_id: ServerId) {
        let (live, staging, old) = self.restore_dirs(server_id);
        if !tokio::fs::try_exists(&live).await.unwrap_or(true)
            && tokio::fs::try_exists(&old).await.unwrap_or(false)
            && let Err(e) = tokio::fs::rename(&old, &live).await
        {
            tracing::error!(server = %server_id, error = %e, "the previous files stay in {}", old.display());
        }
        let _ = tokio::fs::remove_dir_all(staging).await;
    }

    /// A restore's directories: the live one, the staging copy, and the previous files while
    /// they are swapped out.
    fn restore_dirs(&self, server_id: ServerId) -> (PathBuf, PathBuf, PathBuf) {
        let live = super::server_dir(&self.data_dir, server_id);
        let hidden = |what: &str| live.with_file_name(format!(".{server_id}.{what}"));
        (live.clone(), hidden("staging"), hidden("old"))
    }
}
