//! Running a server: its container spec, launch, install, start, supervision of the process and its
//! output, and the timers (grace period, restart back-off).

use catalyst_core::model::StartupMode;

use super::*;
use crate::node::data::sandbox::Sandbox;

impl NodeDaemon {
    pub(super) fn container_spec(
        &self,
        spec: &ServerSpec,
        id: String,
        image: String,
        command: Vec<String>,
    ) -> ContainerSpec {
        ContainerSpec {
            id,
            image,
            command,
            env: spec.env.clone(),
            mounts: vec![Mount {
                source: self.server_dir(spec.server_id).to_string_lossy().into_owned(),
                target: "/home/container".into(),
                read_only: false,
            }],
            workdir: "/home/container".into(),
            limits: spec.limits,
            allocations: spec.allocations.clone(),
            network: self.inner.config.network,
            tmpfs_mb: 100,
            read_only_rootfs: false,
            user: self.server_user(spec.server_id),
        }
    }

    /// Create a fresh container (removing a stale one) and attach before starting; the
    /// server's directory is made private to `owner` first.
    pub(super) async fn launch(
        &self,
        cspec: &ContainerSpec,
        owner: Option<(u32, u32)>,
    ) -> Result<futures::stream::BoxStream<'static, catalyst_core::ports::ConsoleLine>> {
        let runtime = &self.inner.runtime;
        if runtime.isolation() == Isolation::None && !self.inner.config.allow_unconfined {
            return Err(super::super::server_users::unconfined_refusal());
        }
        let dir = PathBuf::from(&cspec.mounts[0].source);
        tokio::task::spawn_blocking(move || super::super::server_users::prepare_server_dir(&dir, owner))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|e| Error::internal("cannot prepare the server directory", e))?;
        self.call(runtime.ensure_image(&cspec.image)).await?;
        match self.call(runtime.remove(&cspec.id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.call(runtime.create(cspec)).await?;
        let output = self.call(runtime.attach(&cspec.id)).await?;
        self.call(runtime.start(&cspec.id)).await?;
        Ok(output)
    }

    pub(super) async fn install(self, slot: Arc<Slot>, spec: ServerSpec, generation: u64) {
        let outcome = match &spec.install {
            // Nothing to install, but the directory must exist before files are handed over
            // (and before the file manager or a config edit looks for it).
            None => {
                let (dir, owner) = (self.server_dir(slot.id), self.server_user(slot.id));
                tokio::task::spawn_blocking(move || super::super::server_users::prepare_server_dir(&dir, owner))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    .map(|()| true)
                    .map_err(|e| Error::internal("cannot prepare the server directory", e))
            }
            Some(script) => {
                let id = install_container_id(slot.id);
                // Eggs are written on Windows too: a CR would end up in every command.
                let text = script.script.replace("\r\n", "\n");
                let mut cspec = self.container_spec(
                    &spec,
                    id.clone(),
                    script.image.clone(),
                    vec![script.entrypoint.clone(), "-c".into(), text],
                );
                cspec.mounts[0].target = "/mnt/server".into();
                cspec.workdir = "/mnt/server".into();
                // Root inside a container (its capabilities dropped); on a shared host, never.
                if self.inner.runtime.isolation() == Isolation::Namespaces {
                    cspec.user = Some((0, 0));
                }
                // The installer serves nothing: no ports are forwarded to it.
                cspec.allocations.clear();
                match self.launch(&cspec, self.server_user(slot.id)).await {
                    Err(e) => Err(e),
                    Ok(mut output) => {
                        let pump = {
                            let this = self.clone();
                            let server_id = slot.id;
                            tokio::spawn(async move {
                                while let Some(line) = output.next().await {
                                    this.emit(NodeEvent::InstallOutput { server_id, line: line.line });
                                }
                            })
                        };
                        let waited =
                            tokio::time::timeout(self.inner.config.install_timeout, self.inner.runtime.wait(&id)).await;
                        let result = match waited {
                            Ok(Ok(status)) => Ok(status.code == Some(0)),
                            Ok(Err(e)) => Err(e),
                            Err(_) => {
                                let _ = self.call(self.inner.runtime.signal(&id, Signal::Kill)).await;
                                Err(Error::timeout("the install script timed out"))
                            }
                        };
                        // The output ends when the container does; let the last lines through.
                        let abort = pump.abort_handle();
                        if tokio::time::timeout(Duration::from_secs(2), pump).await.is_err() {
                            abort.abort();
                        }
                        let _ = self.call(self.inner.runtime.remove(&id)).await;
                        result
                    }
                }
            }
        };
        let mut m = slot.machine.lock().await;
        if m.generation != generation || m.state != ServerState::Installing {
            return;
        }
        if let (Ok(true), Some(user)) = (&outcome, self.server_user(slot.id)) {
            let dir = self.server_dir(slot.id);
            if let Err(e) = tokio::task::spawn_blocking(move || Sandbox::open(&dir)?.chown_tree("", user))
                .await
                .unwrap_or_else(|e| Err(Error::internal("handing the files over panicked", e)))
            {
                self.system_line(&mut m, format!("cannot hand the files to the server user: {}", e.message()));
            }
        }
        let (event, reason) = match outcome {
            Ok(true) => (Event::InstallSucceeded, None),
            Ok(false) => (Event::InstallFailed, Some("the install script exited with an error".to_string())),
            Err(e) => (Event::InstallFailed, Some(e.message().to_string())),
        };
        if let Some(r) = &reason {
            self.system_line(&mut m, format!("install failed: {r}"));
        }
        self.step_or_warn(&slot, &mut m, event, reason).await;
    }

    pub(super) async fn start_process(self, slot: Arc<Slot>, spec: ServerSpec, generation: u64) {
        let id = container_id(slot.id);
        let command = match spec.startup_mode {
            StartupMode::Shell => vec!["/bin/sh".into(), "-c".into(), spec.startup.clone()],
            // The image's ENTRYPOINT/CMD runs and reads STARTUP from the environment.
            StartupMode::Entrypoint => vec![],
        };
        let cspec = self.container_spec(&spec, id.clone(), spec.image.clone(), command);
        if !spec.config_files.is_empty() {
            let (dir, edits, owner) = (self.server_dir(slot.id), spec.config_files.clone(), self.server_user(slot.id));
            let address = self.inner.runtime.node_address(self.inner.config.network);
            let problems = tokio::task::spawn_blocking(move || config_files::apply_all(&dir, &edits, &address, owner))
                .await
                .unwrap_or_else(|e| vec![format!("config files were not edited: {e}")]);
            let mut m = slot.machine.lock().await;
            for line in problems {
                self.system_line(&mut m, line);
            }
        }
        match self.launch(&cspec, self.server_user(slot.id)).await {
            Ok(output) => self.supervise(slot, spec, output, generation).await,
            Err(e) => {
                let mut m = slot.machine.lock().await;
                if m.generation == generation {
                    // The game never ran: say why, and do not count it as the game crashing.
                    self.system_line(&mut m, format!("failed to start: {}", e.message()));
                    self.step_or_warn(&slot, &mut m, Event::StartFailed, Some(e.message().to_string())).await;
                }
            }
        }
    }

    /// Follow a running process: its output through the console (and the done pattern), then
    /// its exit into the state machine.
    pub(super) async fn supervise(
        self,
        slot: Arc<Slot>,
        spec: ServerSpec,
        output: BoxStream<'static, ConsoleLine>,
        generation: u64,
    ) {
        let id = container_id(slot.id);
        let patterns = DoneMatcher::new(&spec.done_patterns);
        if patterns.is_empty() {
            let mut m = slot.machine.lock().await;
            if m.generation == generation && m.state == ServerState::Starting {
                self.step_or_warn(&slot, &mut m, Event::Started, None).await;
            }
        }
        self.inner.background.spawn(self.clone().pump(slot.clone(), output, patterns, generation));
        let status = self.inner.runtime.wait(&id).await;
        let mut m = slot.machine.lock().await;
        if m.generation != generation || !m.state.has_process() {
            return;
        }
        let (code, oom) = match status {
            Ok(s) => (s.code, s.oom),
            Err(e) => {
                self.system_line(&mut m, format!("lost the process: {}", e.message()));
                (None, false)
            }
        };
        m.last_exit = Some(ExitInfo { clean: code == Some(0) && !oom, oom });
        let reason = match (code, oom) {
            (_, true) => "killed: out of memory".to_string(),
            (Some(c), _) => format!("exited with code {c}"),
            (None, _) => "killed by a signal".to_string(),
        };
        self.step_or_warn(&slot, &mut m, Event::Exited { code, oom }, Some(reason)).await;
    }

    async fn pump(
        self,
        slot: Arc<Slot>,
        mut output: BoxStream<'static, ConsoleLine>,
        patterns: DoneMatcher,
        generation: u64,
    ) {
        while let Some(line) = output.next().await {
            let done = slot.starting.load(Ordering::Acquire) && patterns.matches(&line.line);
            let entries = match slot.console.push(line.stream, line.line, Instant::now(), self.inner.clock.now()) {
                Pushed::Accepted(entries) => entries,
                Pushed::Throttled(notice) => notice.into_iter().collect(),
            };
            for e in entries {
                self.emit_line(slot.id, e);
            }
            if done {
                let mut m = slot.machine.lock().await;
                if m.generation == generation && m.state == ServerState::Starting {
                    self.step_or_warn(&slot, &mut m, Event::Started, None).await;
                }
            }
        }
    }

    pub(super) async fn kill_after_grace(self, slot: Arc<Slot>, generation: u64) {
        tokio::time::sleep(self.inner.config.stop_grace).await;
        let mut m = slot.machine.lock().await;
        if m.generation == generation && m.state == ServerState::Stopping {
            self.system_line(&mut m, "the server did not stop in time; killing it".into());
            let _ = self.call(self.inner.runtime.signal(&container_id(slot.id), Signal::Kill)).await;
        }
    }

    pub(super) async fn restart_after(self, slot: Arc<Slot>, generation: u64, delay: Duration) {
        tokio::time::sleep(delay).await;
        let mut m = slot.machine.lock().await;
        if m.generation == generation && matches!(m.state, ServerState::Crashed | ServerState::Stopped) {
            self.step_or_warn(&slot, &mut m, Event::Start, Some("restart policy".into())).await;
        }
    }
}

/// The template's "done" patterns, compiled once per start.
#[derive(Debug)]
struct DoneMatcher {
    substrings: Vec<String>,
    regexes: Vec<regex::Regex>,
}

impl DoneMatcher {
    fn new(patterns: &[DonePattern]) -> Self {
        let mut substrings = Vec::new();
        let mut regexes = Vec::new();
        for p in patterns {
            match p {
                DonePattern::Substring(s) => substrings.push(s.clone()),
                DonePattern::Regex(r) => match regex::Regex::new(r) {
                    Ok(re) => regexes.push(re),
                    // Validated at template creation; an invalid one degrades to a substring.
                    Err(_) => substrings.push(r.clone()),
                },
            }
        }
        Self { substrings, regexes }
    }

    fn is_empty(&self) -> bool {
        self.substrings.is_empty() && self.regexes.is_empty()
    }

    fn matches(&self, line: &str) -> bool {
        self.substrings.iter().any(|s| line.contains(s.as_str())) || self.regexes.iter().any(|r| r.is_match(line))
    }
}
