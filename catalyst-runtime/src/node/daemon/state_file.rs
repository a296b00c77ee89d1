//! What survives an agent restart: one JSON file per server, written off the async threads and
//! in the order of the state changes it records.

use std::io;
use std::sync::atomic::AtomicU64;

use super::*;

/// What survives an agent restart, one JSON file per server.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Persisted {
    pub(super) spec: ServerSpec,
    pub(super) state: ServerState,
    pub(super) restarts: Vec<Timestamp>,
    #[serde(default)]
    pub(super) uid: Option<u32>,
}

/// One server's state file. Writes run on the blocking pool, one at a time; each takes a
/// number when it is asked for (under the server's lock, so in the order of the state changes)
/// and one older than the last write done is dropped: a write whose caller stopped waiting can
/// never overwrite a later one.
#[derive(Debug)]
pub(super) struct StateFile {
    path: PathBuf,
    /// The number of the next write.
    next: AtomicU64,
    /// The number of the last write done (0: none yet); held while one is done.
    done: Arc<StdMutex<u64>>,
}

impl StateFile {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, next: AtomicU64::new(1), done: Arc::default() }
    }

    /// Replace the file with `record` (atomically: temp file, then rename).
    pub(super) async fn write(&self, record: &Persisted) -> io::Result<()> {
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        self.put(self.ticket(), Some(bytes)).await
    }

    /// Remove the file (a server that is gone); no write asked for before can bring it back.
    pub(super) async fn remove(&self) {
        if let Err(e) = self.put(self.ticket(), None).await {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a server's state file");
        }
    }

    /// The number of a write asked for now.
    fn ticket(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Write `bytes` (`None`: remove the file) as write `number`, unless a later one is done.
    async fn put(&self, number: u64, bytes: Option<Vec<u8>>) -> io::Result<()> {
        let (path, done) = (self.path.clone(), self.done.clone());
        tokio::task::spawn_blocking(move || {
            let mut done = lock(&done);
            if *done > number {
                return Ok(());
            }
            *done = number;
            match bytes {
                Some(bytes) => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let tmp = path.with_extension("json.tmp");
                    std::fs::write(&tmp, bytes)?;
                    std::fs::rename(&tmp, &path)
                }
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            }
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
    }
}

/// Every server state file in `dir`, read on the blocking pool: the path, and the record or
/// why it cannot be read.
pub(super) async fn read_all(dir: PathBuf) -> Vec<(PathBuf, std::result::Result<Persisted, String>)> {
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                let record = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Persisted>(&b).map_err(|e| e.to_string()));
                (path, record)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

impl NodeDaemon {
    pub(super) fn state_file(&self, id: ServerId) -> PathBuf {
        self.inner.config.data_dir.join("state").join(format!("{id}.json"))
    }

    /// Write the server's definition and state. Under the server's lock, but off the async
    /// threads.
    pub(super) async fn persist(&self, slot: &Slot, m: &Machine) {
        let record = Persisted { spec: m.spec.clone(), state: m.state, restarts: m.restarts.clone(), uid: slot.uid };
        if let Err(e) = slot.state_file.write(&record).await {
            tracing::error!(server = %m.spec.server_id, error = %e, "cannot persist server state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_earlier_write_done_late_never_replaces_a_later_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state").join("server.json");
        let file = StateFile::new(path.clone());
        let (earlier, later) = (file.ticket(), file.ticket());
        file.put(later, Some(b"later".to_vec())).await.expect("later");
        file.put(earlier, Some(b"earlier".to_vec())).await.expect("earlier");
        assert_eq!(std::fs::read(&path).expect("read"), b"later");
        // Nor does it bring back a file removed after it was asked for.
        let (earlier, removal) = (file.ticket(), file.ticket());
        file.put(removal, None).await.expect("remove");
        file.put(earlier, Some(b"earlier".to_vec())).await.expect("earlier");
        assert!(!path.exists(), "the removed state file came back");
        // Writes in order go through.
        file.put(file.ticket(), Some(b"again".to_vec())).await.expect("again");
        assert_eq!(std::fs::read(&path).expect("read"), b"again");
    }
}
