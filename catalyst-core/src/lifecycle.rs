//! The server lifecycle as one pure table: `apply(state, event) -> (next, effects)`.
//!
//! Every mode is a state, never a side flag. Intent that outlives one step (restart = stop
//! then start; suspend a running server = stop then suspend) travels as a
//! [`Effect::FollowUp`] event that the executor applies once the effects before it are done,
//! so the table never needs to remember anything besides the state.

use std::fmt;

use crate::Error;

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// The install script is running.
    Installing,
    /// The install script failed; reinstall or delete.
    InstallFailed,
    /// Installed and not running.
    Stopped,
    /// The process runs but has not printed its done pattern yet.
    Starting,
    /// Running and ready: the done pattern was seen (or the template has none).
    Running,
    /// Asked to stop; waiting for the exit.
    Stopping,
    /// Exited without being asked; the restart policy decides what follows.
    Crashed,
    /// Locked by an operator (e.g. unpaid); nothing runs.
    Suspended,
    /// Moving to another node.
    Transferring,
    /// A backup is being restored into it.
    Restoring,
    /// Being removed; terminal.
    Deleting,
}

impl ServerState {
    /// Every state, in diagram order.
    pub const ALL: [ServerState; 11] = [
        ServerState::Installing,
        ServerState::InstallFailed,
        ServerState::Stopped,
        ServerState::Starting,
        ServerState::Running,
        ServerState::Stopping,
        ServerState::Crashed,
        ServerState::Suspended,
        ServerState::Transferring,
        ServerState::Restoring,
        ServerState::Deleting,
    ];

    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Installing => "installing",
            ServerState::InstallFailed => "install_failed",
            ServerState::Stopped => "stopped",
            ServerState::Starting => "starting",
            ServerState::Running => "running",
            ServerState::Stopping => "stopping",
            ServerState::Crashed => "crashed",
            ServerState::Suspended => "suspended",
            ServerState::Transferring => "transferring",
            ServerState::Restoring => "restoring",
            ServerState::Deleting => "deleting",
        }
    }

    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid(format!("unknown server state {s:?}")))
    }

    /// Is a game process (not the installer) possibly alive in this state?
    pub fn has_process(self) -> bool {
        matches!(self, ServerState::Starting | ServerState::Running | ServerState::Stopping)
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a server: a request or a report from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    /// Run the install script (first install or reinstall).
    Install,
    /// The install script exited 0.
    InstallSucceeded,
    /// The install script failed, timed out or was aborted.
    InstallFailed,
    /// Start the process.
    Start,
    /// The done pattern appeared (or there is none).
    Started,
    /// The process could not be started at all (its image could not be pulled, its directory
    /// is missing…): not a crash of the game, so no restart and no crash count.
    StartFailed,
    /// Stop gracefully.
    Stop,
    /// Stop, then start.
    Restart,
    /// SIGKILL now; always accepted while anything runs.
    Kill,
    /// The process exited.
    Exited {
        /// Exit code, if it exited rather than being signalled.
        code: Option<i32>,
        /// Killed by the OOM killer.
        oom: bool,
    },
    /// Lock the server.
    Suspend,
    /// Unlock the server.
    Unsuspend,
    /// Begin moving to another node.
    BeginTransfer,
    /// The transfer ended (either way the server is whole on one node).
    TransferFinished,
    /// Begin restoring a backup.
    BeginRestore,
    /// The restore ended (rolled back on failure).
    RestoreFinished,
    /// Remove the server.
    Delete,
}

impl Event {
    /// Stable name, used in errors and the diagram.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Install => "install",
            Event::InstallSucceeded => "install_succeeded",
            Event::InstallFailed => "install_failed",
            Event::Start => "start",
            Event::Started => "started",
            Event::StartFailed => "start_failed",
            Event::Stop => "stop",
            Event::Restart => "restart",
            Event::Kill => "kill",
            Event::Exited { .. } => "exited",
            Event::Suspend => "suspend",
            Event::Unsuspend => "unsuspend",
            Event::BeginTransfer => "begin_transfer",
            Event::TransferFinished => "transfer_finished",
            Event::BeginRestore => "begin_restore",
            Event::RestoreFinished => "restore_finished",
            Event::Delete => "delete",
        }
    }

    /// One representative of each event kind (exits: clean, failed, OOM).
    pub const REPRESENTATIVES: [Event; 19] = [
        Event::Install,
        Event::InstallSucceeded,
        Event::InstallFailed,
        Event::Start,
        Event::Started,
        Event::StartFailed,
        Event::Stop,
        Event::Restart,
        Event::Kill,
        Event::Exited { code: Some(0), oom: false },
        Event::Exited { code: Some(1), oom: false },
        Event::Exited { code: None, oom: true },
        Event::Suspend,
        Event::Unsuspend,
        Event::BeginTransfer,
        Event::TransferFinished,
        Event::BeginRestore,
        Event::RestoreFinished,
        Event::Delete,
    ];

    fn is_clean_exit(&self) -> bool {
        matches!(self, Event::Exited { code: Some(0), oom: false })
    }
}

/// What the executor must do after a transition, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Effect {
    /// Run the install script in its own container.
    RunInstall,
    /// Abort the running install script.
    AbortInstall,
    /// Create (if needed) and start the process.
    StartProcess,
    /// Ask the process to stop (stop command or signal, grace period, then SIGKILL).
    StopProcess,
    /// SIGKILL the process.
    KillProcess,
    /// Ask the restart policy whether to start again.
    ApplyRestartPolicy {
        /// The exit was clean (code 0, no OOM).
        clean: bool,
        /// The exit was an OOM kill.
        oom: bool,
    },
    /// Record a crash in the server's history.
    RecordCrash,
    /// Run the transfer.
    RunTransfer,
    /// Run the restore.
    RunRestore,
    /// Remove the container and files, then the record.
    Destroy,
    /// Once the effects before it are done and the process has exited, apply this event.
    FollowUp(FollowUp),
}

/// Events that may be scheduled as a follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// Start again (restart).
    Start,
    /// Suspend once stopped.
    Suspend,
    /// Delete once stopped.
    Delete,
}

impl FollowUp {
    /// The event to apply.
    pub fn event(self) -> Event {
        match self {
            FollowUp::Start => Event::Start,
            FollowUp::Suspend => Event::Suspend,
            FollowUp::Delete => Event::Delete,
        }
    }
}

/// A successful transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state after the event.
    pub next: ServerState,
    /// Effects to run, in order.
    pub effects: Vec<Effect>,
}

fn to(next: ServerState, effects: &[Effect]) -> Result<Transition, Error> {
    Ok(Transition { next, effects: effects.to_vec() })
}

/// The lifecycle table. Pure, total, and the only place transitions are decided.
pub fn apply(state: ServerState, event: Event) -> Result<Transition, Error> {
    use Effect::*;
    use ServerState as S;

    match (state, event) {
        // Install and reinstall: only when nothing runs.
        (S::Stopped | S::Crashed | S::InstallFailed, Event::Install) => to(S::Installing, &[RunInstall]),
        (S::Installing, Event::InstallSucceeded) => to(S::Stopped, &[]),
        (S::Installing, Event::InstallFailed) => to(S::InstallFailed, &[]),
        (S::Installing, Event::Kill) => to(S::Installing, &[AbortInstall]),

        // Power.
        (S::Stopped | S::Crashed, Event::Start | Event::Restart) => to(S::Starting, &[StartProcess]),
        (S::Starting, Event::Started) => to(S::Running, &[]),
        (S::Running, Event::Started) => to(S::Running, &[]),
        (S::Starting, Event::StartFailed) => to(S::Stopped, &[]),
        (S::Starting | S::Running, Event::Stop) => to(S::Stopping, &[StopProcess]),
        (S::Starting | S::Running, Event::Restart) => to(S::Stopping, &[StopProcess, FollowUp(self::FollowUp::Start)]),
        (S::Starting | S::Running | S::Stopping, Event::Kill) => to(S::Stopping, &[KillProcess]),

        // Exits.
        (S::Stopping, Event::Exited { .. }) => to(S::Stopped, &[]),
        (S::Starting | S::Running, e @ Event::Exited { oom, .. }) => {
            if e.is_clean_exit() {
                to(S::Stopped, &[ApplyRestartPolicy { clean: true, oom }])
            } else {
                to(S::Crashed, &[RecordCrash, ApplyRestartPolicy { clean: false, oom }])
            }
        }
        // A late or duplicate exit report (e.g. after re-attaching) changes nothing.
        (S::Stopped | S::Crashed | S::Suspended | S::InstallFailed, Event::Exited { .. }) => to(state, &[]),

        // Suspension: always possible except mid-transfer/restore/delete.
        (S::Stopped | S::Crashed | S::InstallFailed, Event::Suspend) => to(S::Suspended, &[]),
        (S::Starting | S::Running, Event::Suspend) => {
            to(S::Stopping, &[StopProcess, FollowUp(self::FollowUp::Suspend)])
        }
        (S::Stopping, Event::Suspend) => to(S::Stopping, &[KillProcess, FollowUp(self::FollowUp::Suspend)]),
        (S::Installing, Event::Suspend) => to(S::Installing, &[AbortInstall, FollowUp(self::FollowUp::Suspend)]),
        (S::Suspended, Event::Unsuspend) => to(S::Stopped, &[]),

        // Transfer and restore: only from rest.
        (S::Stopped | S::Crashed, Event::BeginTransfer) => to(S::Transferring, &[RunTransfer]),
        (S::Transferring, Event::TransferFinished) => to(S::Stopped, &[]),
        (S::Stopped | S::Crashed | S::InstallFailed, Event::BeginRestore) => to(S::Restoring, &[RunRestore]),
        (S::Restoring, Event::RestoreFinished) => to(S::Stopped, &[]),

        // Delete: from rest at once; otherwise stop first.
        (S::Stopped | S::Crashed | S::InstallFailed | S::Suspended, Event::Delete) => to(S::Deleting, &[Destroy]),
        (S::Starting | S::Running | S::Stopping, Event::Delete) => {
            to(S::Stopping, &[KillProcess, FollowUp(self::FollowUp::Delete)])
        }
        (S::Installing, Event::Delete) => to(S::Installing, &[AbortInstall, FollowUp(self::FollowUp::Delete)]),

        (state, event) => Err(Error::invalid_transition(format!("cannot {} a server that is {}", event.name(), state))),
    }
}

/// The state diagram in mermaid syntax, generated from [`apply`].
pub fn mermaid_diagram() -> String {
    let mut lines = vec!["stateDiagram-v2".to_string(), "    [*] --> installing".to_string()];
    for state in ServerState::ALL {
        let mut seen: Vec<(ServerState, String)> = Vec::new();
        for event in Event::REPRESENTATIVES {
            let Ok(t) = apply(state, event) else { continue };
            if t.next == state && t.effects.is_empty() {
                continue; // no-op acknowledgements clutter the diagram
            }
            let label = match event {
                Event::Exited { code: Some(0), oom: false } => "exited (clean)".to_string(),
                Event::Exited { oom: true, .. } => "exited (oom)".to_string(),
                Event::Exited { .. } => "exited (failed)".to_string(),
                e => e.name().to_string(),
            };
            if let Some(entry) = seen.iter_mut().find(|(n, _)| *n == t.next) {
                entry.1.push_str(", ");
                entry.1.push_str(&label);
            } else {
                seen.push((t.next, label));
            }
        }
        for (next, label) in seen {
            lines.push(format!("    {state} --> {next}: {label}"));
        }
    }
    lines.push("    deleting --> [*]".to_string());
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use ServerState as S;

    fn next(state: S, event: Event) -> Option<S> {
        apply(state, event).ok().map(|t| t.next)
    }

    #[test]
    fn table_happy_paths() {
        let cases: &[(S, Event, Option<S>)] = &[
            (S::Stopped, Event::Install, Some(S::Installing)),
            (S::Installing, Event::InstallSucceeded, Some(S::Stopped)),
            (S::Installing, Event::InstallFailed, Some(S::InstallFailed)),
            (S::Stopped, Event::Start, Some(S::Starting)),
            (S::Starting, Event::Started, Some(S::Running)),
            (S::Running, Event::Stop, Some(S::Stopping)),
            (S::Stopping, Event::Exited { code: Some(0), oom: false }, Some(S::Stopped)),
            (S::Running, Event::Exited { code: Some(1), oom: false }, Some(S::Crashed)),
            (S::Running, Event::Exited { code: None, oom: true }, Some(S::Crashed)),
            (S::Running, Event::Exited { code: Some(0), oom: false }, Some(S::Stopped)),
            (S::Crashed, Event::Start, Some(S::Starting)),
            (S::Running, Event::Kill, Some(S::Stopping)),
            (S::Stopping, Event::Kill, Some(S::Stopping)),
            (S::Stopped, Event::Suspend, Some(S::Suspended)),
            (S::Suspended, Event::Unsuspend, Some(S::Stopped)),
            (S::Stopped, Event::BeginTransfer, Some(S::Transferring)),
            (S::Transferring, Event::TransferFinished, Some(S::Stopped)),
            (S::Crashed, Event::BeginRestore, Some(S::Restoring)),
            (S::Restoring, Event::RestoreFinished, Some(S::Stopped)),
            (S::Suspended, Event::Delete, Some(S::Deleting)),
        ];
        for (state, event, want) in cases {
            assert_eq!(next(*state, *event), *want, "{state} + {}", event.name());
        }
    }

    #[test]
    fn table_refusals() {
        let refused: &[(S, Event)] = &[
            (S::Running, Event::Start),
            (S::Stopped, Event::Stop),
            (S::Suspended, Event::Start),
            (S::Suspended, Event::Install),
            (S::InstallFailed, Event::Start),
            (S::Running, Event::BeginTransfer),
            (S::Transferring, Event::Delete),
            (S::Restoring, Event::Start),
            (S::Deleting, Event::Unsuspend),
            (S::Stopped, Event::Unsuspend),
            (S::Running, Event::Install),
        ];
        for (state, event) in refused {
            let err = apply(*state, *event).expect_err("must be refused");
            assert_eq!(err.kind(), ErrorKind::InvalidTransition);
            assert!(err.message().contains(state.as_str()), "{}", err.message());
            assert!(err.message().contains(event.name()), "{}", err.message());
        }
    }

    #[test]
    fn crash_records_and_asks_policy() {
        let t = apply(S::Running, Event::Exited { code: None, oom: true }).expect("allowed");
        assert_eq!(t.effects, vec![Effect::RecordCrash, Effect::ApplyRestartPolicy { clean: false, oom: true }]);
    }

    #[test]
    fn restart_of_running_server_stops_then_follows_up() {
        let t = apply(S::Running, Event::Restart).expect("allowed");
        assert_eq!(t.next, S::Stopping);
        assert_eq!(t.effects, vec![Effect::StopProcess, Effect::FollowUp(FollowUp::Start)]);
    }

    #[test]
    fn diagram_in_docs_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/state-machine.md");
        let body = format!(
            "# Server lifecycle\n\nGenerated from `catalyst_core::lifecycle::apply` by the test \
             `diagram_in_docs_is_current`; run `CATALYST_WRITE_DOCS=1 cargo test` to refresh it.\n\n\
             ```mermaid\n{}```\n",
            mermaid_diagram()
        );
        if std::env::var_os("CATALYST_WRITE_DOCS").is_some() {
            std::fs::write(path, &body).expect("write docs/state-machine.md");
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(on_disk == body, "docs/state-machine.md is stale: run CATALYST_WRITE_DOCS=1 cargo test");
    }
}
