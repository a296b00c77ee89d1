//! What survives an agent restart: one JSON file per server, and the recovery that reads them.

use super::*;

impl NodeDaemon {
    pub(super) fn state_file(&self, id: ServerId) -> PathBuf {
        self.inner.config.data_dir.join("state").join(format!("{id}.json"))
    }

    /// Write the server's definition and state (atomically: temp file, then rename).
    pub(super) fn persist(&self, slot: &Slot, m: &Machine) {
        let path = self.state_file(m.spec.server_id);
        let record = Persisted { spec: m.spec.clone(), state: m.state, restarts: m.restarts.clone(), uid: slot.uid };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.inner.config.data_dir))?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&record).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::error!(server = %m.spec.server_id, error = %e, "cannot persist server state");
        }
    }

    /// After an agent restart: load the servers this node had, re-attach to the ones still
    /// running, and let the state machine handle the ones that exited meanwhile. Returns how
    /// many servers were loaded.
    pub async fn recover(&self) -> Result<usize> {
        let dir = self.inner.config.data_dir.join("state");
        let mut loaded = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Persisted>(&b).map_err(|e| e.to_string()))
                {
                    Ok(p) => match self.insert_slot(p.spec, p.state, p.restarts, p.uid).await {
                        Ok(slot) => loaded.push(slot),
                        Err(e) => tracing::error!(path = %path.display(), error = %e, "server not recovered"),
                    },
                    Err(e) => tracing::error!(path = %path.display(), error = %e, "unreadable server state; skipped"),
                }
            }
        }
        let live: HashMap<String, bool> =
            self.inner.runtime.list().await?.into_iter().map(|c| (c.id, c.running)).collect();
        for slot in &loaded {
            let mut m = slot.machine.lock().await;
            if m.state == ServerState::Restoring {
                // The agent died during a restore: put the previous files back if the swap was
                // cut between its renames, drop the staging copy, and leave the server stopped.
                self.repair_restore(slot.id).await;
                self.system_line(&mut m, "a restore was interrupted by an agent restart".into());
                let _ = self.step(slot, &mut m, Event::RestoreFinished, None).await;
            }
            slot.starting.store(m.state == ServerState::Starting, Ordering::Release);
            slot.files_locked.store(files_locked(m.state), Ordering::Release);
            if m.state.has_process() {
                if live.get(&container_id(slot.id)) == Some(&true) {
                    if m.state == ServerState::Starting {
                        // It has been up for a while: the done line is long gone.
                        let _ = self
                            .step(slot, &mut m, Event::Started, Some("re-attached after an agent restart".into()))
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
                            let _ = self.step(slot, &mut m, Event::Exited { code: None, oom: false }, reason).await;
                        }
                    }
                } else {
                    m.last_exit = Some(ExitInfo { clean: false, oom: false });
                    let reason = Some("exited while the agent was down".to_string());
                    let _ = self.step(slot, &mut m, Event::Exited { code: None, oom: false }, reason).await;
                }
            } else if m.state == ServerState::Installing {
                let reason = Some("the agent restarted during the install".to_string());
                let _ = self.step(slot, &mut m, Event::InstallFailed, reason).await;
            }
        }
        Ok(loaded.len())
    }
}
