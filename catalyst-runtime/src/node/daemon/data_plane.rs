//! The daemon's side of the data plane: the [`ServerFiles`] handles it builds once its checks
//! passed, and the backups and restores it starts. The data plane itself knows nothing of the
//! daemon.

use super::*;
use crate::node::data::backup::{Backups, wire};
use crate::node::data::files;
use crate::node::data::local_archives::LocalArchives;
#[cfg(feature = "sftp")]
use crate::node::sftp::FileHost;

impl NodeDaemon {
    /// The files of `slot`'s server, with the limits of its definition `m`.
    fn files_of(&self, slot: &Slot, m: &Machine) -> ServerFiles {
        ServerFiles::new(
            slot.id,
            self.server_dir(slot.id),
            &m.spec.limits,
            self.server_user(slot.id),
            self.inner.usage.clone(),
            slot.files_locked.clone(),
            self.inner.events.clone(),
        )
        .with_denylist(&m.spec.file_denylist)
    }

    /// A server's files for one request: refused while a restore, a transfer or a deletion
    /// owns them.
    async fn open_files(&self, id: ServerId) -> Result<ServerFiles> {
        let slot = self.slot(id)?;
        let m = slot.machine.lock().await;
        if files_locked(m.state) {
            return Err(Error::conflict(format!("the server's files are locked while it is {}", m.state)));
        }
        Ok(self.files_of(&slot, &m))
    }

    /// Run one file operation in a server's directory.
    pub(super) async fn files(&self, id: ServerId, op: FileOp) -> Result<FileReply> {
        files::run(self.open_files(id).await?, op).await
    }

    pub(super) fn backups(&self) -> Backups {
        Backups::new(&self.inner.config.data_dir)
    }

    pub(super) fn archives(&self) -> LocalArchives {
        LocalArchives::new(&self.inner.config.data_dir)
    }

    /// Accept a backup; it runs in the background and reports `BackupProgress` and
    /// `BackupDone`.
    pub(super) fn start_backup(&self, server_id: ServerId, backup_id: BackupId, storage: BackupStorage) -> Result<()> {
        let slot = self.slot(server_id)?;
        let this = self.clone();
        self.inner.background.spawn(async move {
            let files = this.files_of(&slot, &*slot.machine.lock().await);
            this.backups().run_backup(&files, backup_id, &storage).await;
        });
        Ok(())
    }

    /// Accept a restore of a stopped server: it enters `restoring` (nothing starts it) and
    /// the restore runs in the background, reporting `RestoreDone`.
    pub(super) async fn start_restore(
        &self,
        server_id: ServerId,
        backup_id: BackupId,
        storage: BackupStorage,
        checksum: String,
    ) -> Result<NodeResponse> {
        let slot = self.slot(server_id)?;
        let mut m = slot.machine.lock().await;
        *lock(&slot.restore) = Some(RestoreJob { backup_id, storage, checksum });
        let stepped = self.step(&slot, &mut m, Event::BeginRestore, None).await;
        if stepped.is_err() {
            lock(&slot.restore).take();
        }
        stepped.map(|()| NodeResponse::State { state: m.state })
    }

    /// `Effect::RunRestore` (under the server's lock): the restore task.
    pub(super) fn spawn_restore(&self, slot: &Arc<Slot>, m: &Machine, job: RestoreJob) {
        let files = self.files_of(slot, m);
        self.inner.background.spawn(self.clone().run_restore(slot.clone(), files, job));
    }

    /// Restore, report, and leave `restoring`.
    async fn run_restore(self, slot: Arc<Slot>, files: ServerFiles, job: RestoreJob) {
        let result = self.backups().restore(&files, &job).await;
        files.forget_usage();
        {
            let mut m = slot.machine.lock().await;
            let line = match &result {
                Ok(()) => format!("restored backup {}", job.backup_id),
                Err(e) => format!("restore of backup {} failed: {}", job.backup_id, e.message()),
            };
            self.system_line(&mut m, line);
            self.step_or_warn(&slot, &mut m, Event::RestoreFinished, None).await;
        }
        self.emit(NodeEvent::RestoreDone { server_id: slot.id, backup_id: job.backup_id, result: wire(result) });
    }
}

#[cfg(feature = "sftp")]
#[async_trait::async_trait]
impl FileHost for NodeDaemon {
    fn has_server(&self, id: ServerId) -> bool {
        self.slot(id).is_ok()
    }

    async fn server_files(&self, id: ServerId) -> Result<ServerFiles> {
        let slot = self.slot(id)?;
        let m = slot.machine.lock().await;
        Ok(self.files_of(&slot, &m))
    }
}
