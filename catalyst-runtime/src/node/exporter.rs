//! The agent's own Prometheus export: its servers by state and each one's latest resource
//! sample, kept from the daemon's events (no store, no control plane needed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::ServerMetrics;
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse};
use futures::StreamExt;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::NodeDaemon;
use crate::sync::lock;

#[derive(Debug, Default)]
struct Seen {
    states: HashMap<ServerId, ServerState>,
    samples: HashMap<ServerId, ServerMetrics>,
}

/// What the exporter knows, updated by a task that follows the daemon.
#[derive(Debug, Clone, Default)]
pub struct NodeExporter {
    seen: Arc<Mutex<Seen>>,
}

type Labels = Vec<(String, String)>;
/// Gauges of floating-point values, one series per label set.
type Gauges = Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>;

impl NodeExporter {
    /// Start following `daemon`: its inventory now, then every state change and sample.
    pub async fn spawn(daemon: &NodeDaemon) -> Self {
        let exporter = Self::default();
        let mut events = daemon.subscribe();
        if let Ok(NodeResponse::Inventory { servers }) = daemon.handle(NodeRequest::Inventory).await {
            exporter.lock().states.extend(servers);
        }
        let seen = exporter.seen.clone();
        tokio::spawn(async move {
            while let Some((_, event)) = events.next().await {
                let mut seen = lock(&seen);
                match event {
                    NodeEvent::StateChanged { server_id, to, .. } => {
                        seen.states.insert(server_id, to);
                    }
                    NodeEvent::Stats(m) => {
                        seen.samples.insert(m.server_id, m);
                    }
                    _ => {}
                }
            }
        });
        exporter
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    /// The Prometheus (OpenMetrics) text.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("catalyst_agent");
        let servers = Family::<Labels, Gauge>::default();
        registry.register("servers", "Servers on this node by lifecycle state", servers.clone());
        let gauges: Vec<(&str, &str, Gauges)> = vec![
            ("server_cpu_percent", "CPU in percent of one core, latest sample", Family::default()),
            ("server_memory_bytes", "Resident memory, latest sample", Family::default()),
            ("server_disk_bytes", "Size of the server directory, latest sample", Family::default()),
            ("server_network_receive_bytes", "Bytes received, latest sample", Family::default()),
            ("server_network_transmit_bytes", "Bytes sent, latest sample", Family::default()),
        ];
        for (name, help, family) in &gauges {
            registry.register(*name, *help, family.clone());
        }
        let seen = self.lock();
        let mut by_state: HashMap<&'static str, i64> = HashMap::new();
        for state in seen.states.values() {
            *by_state.entry(state.as_str()).or_default() += 1;
        }
        for (state, n) in by_state {
            servers.get_or_create(&vec![("state".into(), state.into())]).set(n);
        }
        for m in seen.samples.values() {
            let labels = vec![("server_id".to_string(), m.server_id.to_string())];
            let values =
                [m.cpu_percent, m.memory_bytes as f64, m.disk_bytes as f64, m.rx_bytes as f64, m.tx_bytes as f64];
            for ((_, _, family), value) in gauges.iter().zip(values) {
                family.get_or_create(&labels).set(value);
            }
        }
        drop(seen);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
