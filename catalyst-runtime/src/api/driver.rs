//! Futures driven on a foreign event loop's thread (asyncio's, Node's). A binding polls each
//! call on the thread that made it and is told, through `notify`, when some call can go on,
//! instead of hopping to a tokio worker and back: two thread switches fewer per call. The
//! futures still use the tokio runtime (entered while polling) for I/O, timers and spawned work.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::sync::lock;

/// The tokio runtime of the bindings' calls (I/O, timers) and of an embedded control plane's
/// background work: two workers, made on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("catalyst")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

type Boxed<O> = Pin<Box<dyn Future<Output = O> + Send>>;

/// The calls of one event loop. `O` is what a finished call hands back to the loop.
pub struct Driver<O> {
    runtime: tokio::runtime::Handle,
    woken: Mutex<Vec<Arc<Task<O>>>>,
    notify: Box<dyn Fn() + Send + Sync>,
    pending: AtomicUsize,
}

struct Task<O> {
    future: Mutex<Option<Boxed<O>>>,
    driver: Arc<Driver<O>>,
}

impl<O: Send + 'static> Wake for Task<O> {
    fn wake(self: Arc<Self>) {
        let driver = self.driver.clone();
        let first = {
            let mut woken = lock(&driver.woken);
            woken.push(self);
            woken.len() == 1
        };
        // One notification per batch: the loop polls every woken call when it gets to it.
        if first {
            (driver.notify)();
        }
    }
}

impl<O: Send + 'static> Driver<O> {
    /// A driver using `runtime`; `notify` (called from any thread) must make the loop call
    /// [`Driver::run_woken`] soon.
    pub fn new(runtime: tokio::runtime::Handle, notify: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            woken: Mutex::new(Vec::new()),
            notify: Box::new(notify),
            pending: AtomicUsize::new(0),
        })
    }

    /// Start `future` here: its output at once if it is ready, else later from `run_woken`.
    pub fn spawn(self: &Arc<Self>, future: impl Future<Output = O> + Send + 'static) -> Option<O> {
        let task = Arc::new(Task { future: Mutex::new(Some(Box::pin(future))), driver: self.clone() });
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.poll(&task)
    }

    /// Poll the calls woken since the last time; the outputs of those that finished.
    pub fn run_woken(&self) -> Vec<O> {
        let woken = std::mem::take(&mut *lock(&self.woken));
        woken.iter().filter_map(|task| self.poll(task)).collect()
    }

    /// Calls not finished yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    fn poll(&self, task: &Arc<Task<O>>) -> Option<O> {
        let _runtime = self.runtime.enter();
        let mut slot = lock(&task.future);
        let future = slot.as_mut()?;
        let waker = Waker::from(task.clone());
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => {
                *slot = None;
                self.pending.fetch_sub(1, Ordering::SeqCst);
                Some(output)
            }
            Poll::Pending => None,
        }
    }
}

impl<O> std::fmt::Debug for Driver<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("pending", &self.pending.load(Ordering::SeqCst)).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn calls_run_on_the_calling_thread_and_finish_after_a_notification() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let (notified, notifications) = mpsc::channel();
        let driver = Driver::new(runtime.handle().clone(), move || notified.send(()).expect("notify"));
        let here = std::thread::current().id();

        // Ready at once: no notification, the output comes back from spawn.
        assert_eq!(driver.spawn(async { 1 }), Some(1));
        // A timer (tokio's, on the runtime) and a spawned task: finished only after a notification.
        let sleeping = driver.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(std::thread::current().id(), here, "polled off the loop thread");
            2
        });
        // The task waits for the test, so it cannot finish (on the worker) before the first poll.
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let spawned = driver.spawn(async move {
            tokio::spawn(async move {
                let _ = wait.await;
                3
            })
            .await
            .expect("join")
        });
        assert_eq!((sleeping, spawned), (None, None));
        assert_eq!(driver.pending(), 2);
        go.send(()).expect("the task waits");
        let mut outputs = Vec::new();
        while outputs.len() < 2 {
            notifications.recv_timeout(Duration::from_secs(10)).expect("a notification");
            outputs.extend(driver.run_woken());
        }
        outputs.sort_unstable();
        assert_eq!(outputs, [2, 3]);
        assert_eq!(driver.pending(), 0);
    }
}
