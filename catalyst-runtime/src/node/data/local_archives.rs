//! Archives in node-local backup storage, read and written in chunks: a transfer relays a
//! server's backups from one node to another this way.

use std::path::{Path, PathBuf};

use catalyst_core::id::{BackupId, ServerId};
use catalyst_core::{Error, Result};
use sha2::{Digest, Sha256};

/// The archives below a node's data directory.
#[derive(Debug, Clone)]
pub(crate) struct LocalArchives {
    data_dir: PathBuf,
}

impl LocalArchives {
    /// The archives below `data_dir`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf() }
    }

    /// Where an archive of node-local storage lives (`directory` relative to the data
    /// directory; empty: `backups`).
    fn archive_path(&self, server_id: ServerId, directory: &str, archive_id: BackupId) -> Result<PathBuf> {
        let dir = if directory.is_empty() { "backups" } else { directory };
        if Path::new(dir).components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(Error::invalid("directory: a relative path without `..`"));
        }
        Ok(self.data_dir.join(dir).join(server_id.to_string()).join(format!("{archive_id}.tar.zst")))
    }

    /// Up to `length` bytes of a stored archive from `offset`, and its size.
    pub(crate) async fn read(
        &self,
        server_id: ServerId,
        directory: &str,
        archive_id: BackupId,
        offset: u64,
        length: u32,
    ) -> Result<(Vec<u8>, u64)> {
        let path = self.archive_path(server_id, directory, archive_id)?;
        let length = length.min(super::files::MAX_CHUNK) as usize;
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::not_found("archive"),
                _ => Error::internal("cannot open the archive", e),
            })?;
            let size = file.metadata().map_err(|e| Error::internal("cannot read the archive", e))?.len();
            let mut buf = vec![0u8; length.min(size.saturating_sub(offset) as usize)];
            file.read_exact_at(&mut buf, offset).map_err(|e| Error::internal("cannot read the archive", e))?;
            Ok((buf, size))
        })
        .await
        .map_err(|e| Error::internal("archive read panicked", e))?
    }

    /// Append to an archive being received, into `<archive>.part`.
    pub(crate) async fn write(
        &self,
        server_id: ServerId,
        directory: &str,
        archive_id: BackupId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<()> {
        let part = self.archive_path(server_id, directory, archive_id)?.with_extension("zst.part");
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            if let Some(dir) = part.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::internal("cannot create the archive directory", e))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&part)
                .map_err(|e| Error::internal("cannot open the archive", e))?;
            if offset == 0 {
                file.set_len(0).map_err(|e| Error::internal("cannot reset the archive", e))?;
            }
            let size = file.metadata().map_err(|e| Error::internal("cannot read the archive", e))?.len();
            if size != offset {
                return Err(Error::conflict(format!("the archive has {size} bytes, not {offset}")));
            }
            file.write_all(&data).map_err(|e| Error::internal("cannot write the archive", e))
        })
        .await
        .map_err(|e| Error::internal("archive write panicked", e))?
    }

    /// Verify a received archive against `checksum` and put it in place (a mismatch deletes it).
    pub(crate) async fn commit(
        &self,
        server_id: ServerId,
        directory: &str,
        archive_id: BackupId,
        checksum: &str,
    ) -> Result<()> {
        let path = self.archive_path(server_id, directory, archive_id)?;
        let part = path.with_extension("zst.part");
        let checksum = checksum.to_string();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&part).map_err(|e| Error::internal("cannot open the archive", e))?;
            let mut hasher = Sha256::new();
            std::io::copy(&mut file, &mut hasher).map_err(|e| Error::internal("cannot read the archive", e))?;
            let got = hex::encode(hasher.finalize());
            if !got.eq_ignore_ascii_case(&checksum) {
                let _ = std::fs::remove_file(&part);
                return Err(Error::conflict(format!("the received archive's checksum is {got}, not {checksum}")));
            }
            std::fs::rename(&part, &path).map_err(|e| Error::internal("cannot put the archive in place", e))
        })
        .await
        .map_err(|e| Error::internal("archive commit panicked", e))?
    }
}
