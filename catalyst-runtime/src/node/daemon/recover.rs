//! After an agent restart: the servers the node had, adopted again from their state files
//! and the runtime's containers.

use super::*;

impl NodeDaemon {
    /// After an agent restart: load the servers this node had, re-attach to the ones still
    /// running, and let the state machine handle the ones that exited meanwhile. Returns how
    /// many servers were loaded.
    pub async fn recover(&self) -> Result<usize> {
        let mut loaded = Vec::new();
        for (path, record) in state_file::read_all(self.inner.config.data_dir.join("state")).await {
            match record {
                Ok(p) => match self.insert_slot(p.spec, p.state, p.restarts, p.uid).await {
                    Ok(slot) => loaded.push(slot),
                    Err(e) => tracing::error!(path = %path.display(), error = %e, "server not recovered"),
                },
                Err(e) => tracing::error!(path = %path.display(), error = %e, "unreadable server state; skipped"),
            }
        }
        let live: HashMap<String, bool> =
            self.inner.runtime.list().await?.into_iter().map(|c| (c.id, c.running)).collect();
        for slot in &loaded {
            let mut m = slot.machine.lock().await;
            if m.state == ServerState::Restoring {
                // The agent died during a restore: put the previous files back if the swap was
                // cut between its renames, drop the staging copy, and leave the server stopped.
                self.backups().repair_restore(slot.id).await;
                self.system_line(&mut m, "a restore was interrupted by an agent restart".into());
                self.step_or_warn(slot, &mut m, Event::RestoreFinished, None).await;
            }
            slot.mirror(m.state);
            if m.state.has_process() {
                if live.get(&container_id(slot.id)) == Some(&true) {
                    if m.state == ServerState::Starting {
                        // It has been up for a while: the done line is long gone.
                        self.step_or_warn(
                            slot,
                            &mut m,
                            Event::Started,
                            Some("re-attached after an agent restart".into()),
                        )
                        .await;
                    }
                    m.generation += 1;
                    self.system_line(&mut m, "re-attached after an agent restart".into());
                    // Attach before returning: a request that follows the recovery must not
                    // produce output the reader then skips.
                    match self.call(self.inner.runtime.attach(&container_id(slot.id))).await {
                        Ok(output) => {
                            self.inner.background.spawn(self.clone().supervise(
                                slot.clone(),
                                m.spec.clone(),
                                output,
                                m.generation,
                            ));
                        }
                        Err(e) => {
                            self.system_line(&mut m, format!("cannot re-attach: {}", e.message()));
                            let reason = Some(e.message().to_string());
                            self.step_or_warn(slot, &mut m, Event::Exited { code: None, oom: false }, reason).await;
                        }
                    }
                } else {
                    m.last_exit = Some(ExitInfo { clean: false, oom: false });
                    let reason = Some("exited while the agent was down".to_string());
                    self.step_or_warn(slot, &mut m, Event::Exited { code: None, oom: false }, reason).await;
                }
            } else if m.state == ServerState::Installing {
                let reason = Some("the agent restarted during the install".to_string());
                self.step_or_warn(slot, &mut m, Event::InstallFailed, reason).await;
            }
        }
        Ok(loaded.len())
    }
}
