use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::stream::BoxStream;

use crate::model::{Limits, LogStream};
use crate::ports::{ConsoleLine, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerStats, ExitStatus, Signal};
use crate::{Error, Result};

/// A call the fake received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeRuntimeCall {
    /// `ensure_image(image)`.
    EnsureImage(String),
    /// `create(spec.id)`.
    Create(String),
    /// `start(id)`.
    Start(String),
    /// `write_stdin(id, text)`.
    Stdin(String, String),
    /// `signal(id, signal)`.
    Signal(String, Signal),
    /// `update_limits(id)`.
    UpdateLimits(String),
    /// `remove(id)`.
    Remove(String),
}

/// A scripted, recording container runtime.
///
/// Behaviour: a container whose id ends in `-install` prints `installing…` and exits 0 on
/// start (or 1 if its env has `FAKE_INSTALL_FAIL`). Other containers print `starting`, `ready`
/// and `Done (fake)!`, echo each stdin line as `> line`, exit 0 on `stop`, exit 3 on `crash`,
/// exit as OOM-killed on `oom`; SIGTERM/SIGINT end them with code 143/130, SIGKILL with none.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    inner: Mutex<Inner>,
    /// What it claims to isolate (containers, unless told otherwise).
    isolation: Option<crate::ports::Isolation>,
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<FakeRuntimeCall>,
    containers: HashMap<String, Container>,
}

#[derive(Debug)]
struct Container {
    spec: ContainerSpec,
    running: bool,
    exit: Option<ExitStatus>,
    listeners: Vec<mpsc::UnboundedSender<ConsoleLine>>,
    waiters: Vec<oneshot::Sender<ExitStatus>>,
}

impl Container {
    fn emit(&mut self, line: &str) {
        let msg = ConsoleLine { stream: LogStream::Stdout, line: line.to_string() };
        self.listeners.retain(|l| l.unbounded_send(msg.clone()).is_ok());
    }

    fn exit(&mut self, status: ExitStatus) {
        self.running = false;
        self.exit = Some(status);
        self.listeners.clear();
        for w in self.waiters.drain(..) {
            let _ = w.send(status);
        }
    }
}

impl FakeRuntime {
    /// A fake with no containers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake that claims `isolation`, to exercise what a node does on each kind of runtime.
    pub fn with_isolation(isolation: crate::ports::Isolation) -> Self {
        Self { isolation: Some(isolation), ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<FakeRuntimeCall> {
        self.lock().calls.clone()
    }

    /// The spec a container was created with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(id).map(|c| c.spec.clone())
    }

    /// Make a running container print `line` on stdout.
    pub fn print(&self, id: &str, line: &str) -> Result<()> {
        let mut inner = self.lock();
        let c =
            inner.containers.get_mut(id).filter(|c| c.running).ok_or_else(|| Error::not_found("running container"))?;
        c.emit(line);
        Ok(())
    }

    /// Make a running container exit with `status` (a crash, an OOM kill).
    pub fn crash(&self, id: &str, status: ExitStatus) -> Result<()> {
        let mut inner = self.lock();
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        c.exit(status);
        Ok(())
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn isolation(&self) -> crate::ports::Isolation {
        self.isolation.unwrap_or(crate::ports::Isolation::Namespaces)
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        self.lock().calls.push(FakeRuntimeCall::EnsureImage(image.to_string()));
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(FakeRuntimeCall::Create(spec.id.clone()));
        if inner.containers.contains_key(&spec.id) {
            return Err(Error::conflict(format!("container {} exists", spec.id)));
        }
        let c = Container { spec: spec.clone(), running: false, exit: None, listeners: vec![], waiters: vec![] };
        inner.containers.insert(spec.id.clone(), c);
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(FakeRuntimeCall::Start(id.to_string()));
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        if c.running {
            return Err(Error::conflict("container is already running"));
        }
        c.running = true;
        c.exit = None;
        if id.ends_with("-install") {
            c.emit("installing…");
            let code = if c.spec.env.contains_key("FAKE_INSTALL_FAIL") { 1 } else { 0 };
            c.exit(ExitStatus { code: Some(code), oom: false });
        } else {
            c.emit("starting");
            c.emit("ready");
            c.emit("Done (fake)!");
        }
        Ok(())
    }

    async fn attach(&self, id: &str) -> Result<BoxStream<'static, ConsoleLine>> {
        let mut inner = self.lock();
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        let (tx, rx) = mpsc::unbounded();
        c.listeners.push(tx);
        Ok(rx.boxed())
    }

    async fn write_stdin(&self, id: &str, data: &[u8]) -> Result<()> {
        let mut inner = self.lock();
        let text = String::from_utf8_lossy(data).trim_end().to_string();
        inner.calls.push(FakeRuntimeCall::Stdin(id.to_string(), text.clone()));
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        if !c.running {
            return Err(Error::conflict("container is not running"));
        }
        for line in text.lines() {
            c.emit(&format!("> {line}"));
            match line {
                "stop" => c.exit(ExitStatus { code: Some(0), oom: false }),
                "crash" => c.exit(ExitStatus { code: Some(3), oom: false }),
                "oom" => c.exit(ExitStatus { code: None, oom: true }),
                _ => {}
            }
        }
        Ok(())
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(FakeRuntimeCall::Signal(id.to_string(), signal));
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        if c.running {
            let code = match signal {
                Signal::Kill => None,
                other => Some(128 + other.number()),
            };
            c.exit(ExitStatus { code, oom: false });
        }
        Ok(())
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        let rx = {
            let mut inner = self.lock();
            let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
            if let (Some(status), false) = (c.exit, c.running) {
                return Ok(status);
            }
            let (tx, rx) = oneshot::channel();
            c.waiters.push(tx);
            rx
        };
        rx.await.map_err(|_| Error::unavailable("container vanished"))
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let inner = self.lock();
        let c = inner.containers.get(id).ok_or_else(|| Error::not_found("container"))?;
        Ok(ContainerStats {
            cpu_percent: if c.running { 1.0 } else { 0.0 },
            memory_bytes: if c.running { 64 << 20 } else { 0 },
            memory_limit_bytes: c.spec.limits.memory_mb << 20,
            rx_bytes: 0,
            tx_bytes: 0,
        })
    }

    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(FakeRuntimeCall::UpdateLimits(id.to_string()));
        let c = inner.containers.get_mut(id).ok_or_else(|| Error::not_found("container"))?;
        c.spec.limits = *limits;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(FakeRuntimeCall::Remove(id.to_string()));
        match inner.containers.get(id) {
            None => Err(Error::not_found("container")),
            Some(c) if c.running => Err(Error::conflict("container is running")),
            Some(_) => {
                inner.containers.remove(id);
                Ok(())
            }
        }
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let mut out: Vec<ContainerInfo> =
            self.lock().containers.iter().map(|(id, c)| ContainerInfo { id: id.clone(), running: c.running }).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
