//! One server's slot and its state machine: `step` applies an event of the lifecycle table and
//! every follow-up it makes due, and turns its effects into runtime calls and tasks.

use super::*;

/// One server of the node.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: ServerId,
    /// The uid of its own on a runtime that shares the host's files.
    pub(super) uid: Option<u32>,
    pub(super) console: Arc<Console>,
    /// Mirrors `state == Starting` so the output pump can skip the lock on most lines.
    pub(super) starting: AtomicBool,
    /// Mirrors [`files_locked`] of the state, for SFTP's per-operation check (shared with the
    /// server's [`ServerFiles`] handles).
    pub(super) files_locked: Arc<AtomicBool>,
    /// The restore that `Effect::RunRestore` runs (set just before `BeginRestore`).
    pub(super) restore: StdMutex<Option<RestoreJob>>,
    /// Where its definition and state survive an agent restart.
    pub(super) state_file: StateFile,
    pub(super) machine: Mutex<Machine>,
}

/// A server's definition and lifecycle state, behind its lock.
#[derive(Debug)]
pub(super) struct Machine {
    pub(super) spec: ServerSpec,
    pub(super) state: ServerState,
    /// Bumped on every start and install, so stale exits and timers are ignored.
    pub(super) generation: u64,
    /// Restart times within the policy window.
    pub(super) restarts: Vec<Timestamp>,
    /// Follow-up events to apply once nothing runs.
    pub(super) pending: Vec<Event>,
    /// The server's console (also held by the slot).
    pub(super) console: Arc<Console>,
    /// The last exit, for the restart decision.
    pub(super) last_exit: Option<ExitInfo>,
}

impl Slot {
    /// Mirror `state` into the flags read without the lock.
    pub(super) fn mirror(&self, state: ServerState) {
        self.starting.store(state == ServerState::Starting, Ordering::Release);
        self.files_locked.store(files_locked(state), Ordering::Release);
    }
}

/// States in which a restore, a transfer or a deletion owns the server's files.
pub(super) fn files_locked(state: ServerState) -> bool {
    matches!(state, ServerState::Restoring | ServerState::Transferring | ServerState::Deleting)
}

pub(super) fn container_id(id: ServerId) -> String {
    id.to_string()
}

pub(super) fn install_container_id(id: ServerId) -> String {
    format!("{id}-install")
}

impl NodeDaemon {
    /// Apply one event and every follow-up it makes due. Holds the server's lock.
    ///
    /// Boxed (and `Send`) because effects spawn tasks that step again.
    #[must_use = "a refused event is an error: return it, or use `step_or_warn`"]
    pub(super) fn step<'a>(
        &'a self,
        slot: &'a Arc<Slot>,
        m: &'a mut Machine,
        event: Event,
        reason: Option<String>,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut queue = vec![(event, reason)];
            let mut first = true;
            while let Some((event, reason)) = queue.pop() {
                let t = match apply(m.state, event) {
                    Ok(t) => t,
                    Err(e) if first => return Err(e),
                    Err(e) => {
                        self.system_line(m, format!("follow-up {} skipped: {}", event.name(), e.message()));
                        continue;
                    }
                };
                first = false;
                let from = m.state;
                m.state = t.next;
                slot.mirror(t.next);
                if from != t.next {
                    self.emit(NodeEvent::StateChanged {
                        server_id: slot.id,
                        from,
                        to: t.next,
                        reason,
                        at: self.inner.clock.now(),
                    });
                }
                for effect in t.effects {
                    self.run_effect(slot, m, effect).await;
                }
                if !m.state.has_process() && m.state != ServerState::Installing && queue.is_empty() {
                    queue.extend(std::mem::take(&mut m.pending).into_iter().rev().map(|e| (e, None)));
                }
            }
            if m.state != ServerState::Deleting {
                self.persist(slot, m).await;
            }
            Ok(())
        })
    }

    /// [`step`](Self::step) for an event a task reports (an exit, a finished install, a timer):
    /// no caller waits to be told of a refusal, so it is logged.
    pub(super) async fn step_or_warn(&self, slot: &Arc<Slot>, m: &mut Machine, event: Event, reason: Option<String>) {
        let name = event.name();
        if let Err(e) = self.step(slot, m, event, reason).await {
            tracing::warn!(server = %slot.id, event = name, state = %m.state, error = %e, "event refused");
        }
    }

    /// Carry out one effect of a transition, under the server's lock.
    async fn run_effect(&self, slot: &Arc<Slot>, m: &mut Machine, effect: Effect) {
        let runtime = &self.inner.runtime;
        match effect {
            Effect::RunInstall => {
                m.generation += 1;
                self.inner.background.spawn(self.clone().install(slot.clone(), m.spec.clone(), m.generation));
            }
            Effect::AbortInstall => {
                if let Err(e) = self.call(runtime.signal(&install_container_id(slot.id), Signal::Kill)).await {
                    self.system_line(m, format!("abort install: {}", e.message()));
                }
            }
            Effect::StartProcess => {
                m.generation += 1;
                m.last_exit = None;
                self.inner.background.spawn(self.clone().start_process(slot.clone(), m.spec.clone(), m.generation));
            }
            Effect::StopProcess => {
                let id = container_id(slot.id);
                let asked = match &m.spec.stop {
                    StopAction::Command(cmd) => {
                        self.call(runtime.write_stdin(&id, format!("{cmd}\n").as_bytes())).await
                    }
                    StopAction::Signal(name) => match Signal::parse(name) {
                        Ok(sig) => self.call(runtime.signal(&id, sig)).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = asked {
                    self.system_line(m, format!("stop request failed ({}); killing", e.message()));
                    let _ = self.call(runtime.signal(&id, Signal::Kill)).await;
                }
                self.inner.background.spawn(self.clone().kill_after_grace(slot.clone(), m.generation));
            }
            Effect::KillProcess => {
                if let Err(e) = self.call(runtime.signal(&container_id(slot.id), Signal::Kill)).await {
                    self.system_line(m, format!("kill: {}", e.message()));
                }
            }
            Effect::RecordCrash => {
                let exit = m.last_exit.unwrap_or(ExitInfo { clean: false, oom: false });
                self.emit(NodeEvent::Crashed {
                    server_id: slot.id,
                    at: self.inner.clock.now(),
                    code: None,
                    oom: exit.oom,
                });
            }
            Effect::ApplyRestartPolicy { clean, oom } => {
                let now = self.inner.clock.now();
                let policy = m.spec.restart_policy;
                policy.prune(&mut m.restarts, now);
                match policy.decide(ExitInfo { clean, oom }, &m.restarts, now) {
                    RestartDecision::Restart { delay, attempt } => {
                        m.restarts.push(now);
                        self.system_line(m, format!("restarting in {} ms (attempt {attempt})", delay.as_millis()));
                        self.inner.background.spawn(self.clone().restart_after(slot.clone(), m.generation, delay));
                    }
                    RestartDecision::GiveUp { reason } => self.system_line(m, format!("not restarting: {reason}")),
                    RestartDecision::Stay => {}
                }
            }
            Effect::RunTransfer => {
                // The control plane copies the files; the server stays locked until it is done.
                self.system_line(m, "transfer started: the server is locked until it ends".into());
            }
            Effect::RunRestore => {
                let job = lock(&slot.restore).take();
                match job {
                    Some(job) => {
                        self.system_line(m, format!("restoring backup {}", job.backup_id));
                        self.spawn_restore(slot, m, job);
                    }
                    None => m.pending.push(Event::RestoreFinished),
                }
            }
            Effect::Destroy => {
                for id in [container_id(slot.id), install_container_id(slot.id)] {
                    match self.call(runtime.remove(&id)).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => self.system_line(m, format!("remove {id}: {}", e.message())),
                    }
                }
                lock(&self.inner.servers).remove(&slot.id);
                slot.state_file.remove().await;
                // The files go with the server (backups are kept until deleted on their own).
                match tokio::fs::remove_dir_all(self.server_dir(slot.id)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(server = %slot.id, error = %e, "could not remove the server's files"),
                }
                self.inner.usage.forget(slot.id);
            }
            Effect::FollowUp(f) => m.pending.push(f.event()),
        }
    }
}
