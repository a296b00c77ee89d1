//! What a node reports without being asked: resource samples of running servers and its own health.

use super::*;
use crate::node::data::sandbox::Sandbox;

/// How old a server's disk use may be in a stats sample.
const DISK_SAMPLE_AGE: Duration = Duration::from_secs(60);

impl NodeDaemon {
    /// Report resource samples of running servers every `stats_every` and node health every
    /// `health_every` (the disk use of a server directory is re-measured at most once a minute;
    /// file operations keep the count current in between).
    pub fn spawn_reporters(&self, stats_every: Duration, health_every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.inner.background.spawn(async move {
            let mut stats = tokio::time::interval(stats_every);
            let mut health = tokio::time::interval(health_every);
            let mut sys = sysinfo::System::new().ok();
            loop {
                tokio::select! {
                    _ = stats.tick() => this.report_stats().await,
                    _ = health.tick() => this.report_health(sys.as_mut()),
                }
            }
        })
    }

    async fn report_stats(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.servers).values().cloned().collect();
        for slot in slots {
            let state = slot.machine.lock().await.state;
            if !matches!(state, ServerState::Starting | ServerState::Running) {
                continue;
            }
            let Ok(sample) = self.call(self.inner.runtime.stats(&container_id(slot.id))).await else { continue };
            let (id, dir, usage) = (slot.id, self.server_dir(slot.id), self.inner.usage.clone());
            let disk_bytes = tokio::task::spawn_blocking(move || {
                Sandbox::open(&dir).and_then(|s| usage.measured(id, &s, DISK_SAMPLE_AGE)).unwrap_or(0)
            })
            .await
            .unwrap_or(0);
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

    fn report_health(&self, sys: Option<&mut sysinfo::System>) {
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
