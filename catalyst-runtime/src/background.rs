//! Background work with an owner. Every task the control plane or a node starts on its own is
//! spawned here, so `shutdown()` can stop it and wait until it has ended: an embedder that
//! closes Catalyst gets its threads, sockets and database connections back.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tasks of one owner (a control plane, a node daemon), cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Background {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Background {
    /// An owner with no tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `task` until it ends or shutdown begins, whichever is first.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task => {}
            }
        })
    }

    /// Run `task` to its end even once shutdown has begun; `shutdown()` waits for it. For work
    /// that drains a queue whose senders the cancelled tasks drop, so nothing queued is lost.
    pub fn spawn_draining<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Resolves once shutdown has begun: for loops that must stop between two steps rather
    /// than be dropped inside one.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Has shutdown begun?
    pub fn is_shutting_down(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Ask every task to stop without waiting (what dropping the owner does).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// No task is running.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Stop every task and wait until all have ended. Tasks spawned afterwards stop at once.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn shutdown_stops_endless_tasks_and_waits_for_draining_ones() {
        let bg = Background::new();
        bg.spawn(std::future::pending());
        let drained = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let flag = drained.clone();
        bg.spawn_draining(async move {
            while rx.recv().await.is_some() {}
            flag.store(true, Ordering::SeqCst);
        });
        // The sender lives in a cancellable task, as the control plane's event loop does.
        tx.send(1).await.expect("send");
        bg.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        assert_eq!(bg.len(), 3);
        bg.shutdown().await;
        assert!(bg.is_empty());
        assert!(drained.load(Ordering::SeqCst), "the draining task ran to its end");
        // Spawning after shutdown does not leave a task behind.
        bg.spawn(std::future::pending()).await.expect("ends at once");
        assert!(bg.is_empty());
    }
}
