//! What a node reports without being asked: resource samples of running servers and its own health.

use super::*;

impl NodeDaemon {
    /// Report resource samples of running servers every `stats_every` and node health every
    /// `health_every` (the disk use of a server directory is re-measured at most once a minute).
    pub fn spawn_reporters(&self, stats_every: Duration, health_every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.inner.background.spawn(async move {
            let mut stats = tokio::time::interval(stats_every);
            let mut health = tokio::time::interval(health_every);
            let mut sys = sysinfo::System::new().ok();
            let mut disk: HashMap<ServerId, (u64, Instant)> = HashMap::new();
            loop {
                tokio::select! {
                    _ = stats.tick() => this.report_stats(&mut disk).await,
                    _ = health.tick() => this.report_health(sys.as_mut()),
                }
            }
        })
    }

    pub(super) async fn report_stats(&self, disk: &mut HashMap<ServerId, (u64, Instant)>) {
        let slots: Vec<Arc<Slot>> =
            self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        disk.retain(|id, _| slots.iter().any(|s| s.id == *id));
        for slot in slots {
            let state = slot.machine.lock().await.state;
            if !matches!(state, ServerState::Starting | ServerState::Running) {
                continue;
            }
            let Ok(sample) = self.call(self.inner.runtime.stats(&container_id(slot.id))).await else { continue };
            let stale = disk.get(&slot.id).is_none_or(|(_, at)| at.elapsed() > Duration::from_secs(60));
            if stale {
                let dir = self.server_dir(slot.id);
                let used = tokio::task::spawn_blocking(move || dir_size(&dir)).await.unwrap_or(0);
                disk.insert(slot.id, (used, Instant::now()));
            }
            let disk_bytes = disk.get(&slot.id).map_or(0, |(b, _)| *b);
            self.emit(NodeEvent::Stats(catalyst_core::model::ServerMetrics {
                server_id: slot.id,
                at: self.inner.clock.now(),
                cpu_percent: sample.cpu_percent,
                memory_bytes: sample.memory_bytes,
                memory_limit_bytes: sample.memory_limit_bytes,
                rx_bytes: sample.rx_bytes,
                tx_bytes: sample.tx_bytes,
                disk_bytes,
            }));
        }
    }

    pub(super) fn report_health(&self, sys: Option<&mut sysinfo::System>) {
        let (cpu_percent, memory_used_bytes, memory_total_bytes) = match sys {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                (f64::from(sys.global_cpu_usage()), sys.used_memory(), sys.total_memory())
            }
            None => (0.0, 0, 0),
        };
        let (disk_total, disk_used) = match nix::sys::statvfs::statvfs(&self.inner.config.data_dir) {
            Ok(v) => {
                let block = v.fragment_size();
                let total = v.blocks() * block;
                (total, total.saturating_sub(v.blocks_available() * block))
            }
            Err(_) => (0, 0),
        };
        self.emit(NodeEvent::Health {
            node_id: self.inner.node_id,
            cpu_percent,
            memory_used_bytes,
            memory_total_bytes,
            disk_used_bytes: disk_used,
            disk_total_bytes: disk_total,
        });
    }
}

/// Bytes a directory tree takes on disk, as the disk limit counts them (allocated blocks,
/// through the server's sandbox: no link followed).
fn dir_size(dir: &std::path::Path) -> u64 {
    super::super::sandbox::Sandbox::open(dir).and_then(|s| s.usage()).unwrap_or(0)
}
