//! Resource metrics: every sample a node reports is stored, rolled up hourly and daily, and
//! pruned by a retention policy; the latest sample per server and the fleet's counts are
//! exported in the Prometheus text format.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Period, ServerMetrics, Timestamp};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::{Error, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Catalyst, MetricsQuery, MetricsSeries, Resolution};

/// How long samples and roll-ups are kept.
#[derive(Debug, Clone, Copy)]
pub struct MetricsRetention {
    /// Raw samples (default one day).
    pub samples: Duration,
    /// Hourly roll-ups (default 30 days).
    pub hours: Duration,
    /// Daily roll-ups (default a year).
    pub days: Duration,
}

impl Default for MetricsRetention {
    fn default() -> Self {
        Self {
            samples: Duration::from_secs(86_400),
            hours: Duration::from_secs(30 * 86_400),
            days: Duration::from_secs(365 * 86_400),
        }
    }
}

/// The latest sample of each server, for the Prometheus export.
#[derive(Debug, Default)]
pub(super) struct Latest(Mutex<HashMap<ServerId, ServerMetrics>>);

impl Latest {
    pub fn record(&self, m: &ServerMetrics) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(m.server_id, m.clone());
    }

    pub fn forget(&self, id: ServerId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    pub fn get(&self, id: ServerId) -> Option<ServerMetrics> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn all(&self) -> Vec<ServerMetrics> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

fn before(now: Timestamp, keep: Duration) -> Timestamp {
    now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX)
}

type Labels = Vec<(String, String)>;

fn gauge_f64() -> Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> {
    Family::default()
}

impl Catalyst {
    /// A server's samples or roll-ups in a window (`server.read`). Defaults: raw samples of the
    /// last hour, hourly roll-ups of the last week, daily ones of the last 90 days.
    pub async fn server_metrics(&self, who: &Principal, id: ServerId, q: &MetricsQuery) -> Result<MetricsSeries> {
        self.check_server_permission(who, id, Permission::ServerRead).await?;
        let to = q.to.unwrap_or_else(|| self.now());
        let span = match q.resolution {
            Resolution::Raw => chrono::Duration::hours(1),
            Resolution::Hour => chrono::Duration::days(7),
            Resolution::Day => chrono::Duration::days(90),
        };
        let from = q.from.unwrap_or(to - span);
        if from >= to {
            return Err(Error::invalid("from: must be before to"));
        }
        let store = &self.inner.store;
        Ok(match q.resolution {
            Resolution::Raw => MetricsSeries::Samples(
                store.list_metrics(id, from, to, q.limit.unwrap_or(1000).clamp(1, 10_000)).await?,
            ),
            Resolution::Hour => MetricsSeries::Rollups(store.list_rollups(id, Period::Hour, from, to).await?),
            Resolution::Day => MetricsSeries::Rollups(store.list_rollups(id, Period::Day, from, to).await?),
        })
    }

    /// Roll up the current and previous hour and day, then apply the retention policy.
    /// Runs every few minutes; idempotent, so several instances may run it.
    pub async fn run_metrics_maintenance(&self) -> Result<u64> {
        let now = self.now();
        let store = &self.inner.store;
        // Hours first: a day is summarised from its hours.
        for period in [Period::Hour, Period::Day] {
            let current = period.start_of(now);
            store.roll_up(period, current - period.length()).await?;
            store.roll_up(period, current).await?;
        }
        let r = self.inner.retention;
        store.prune_metrics(before(now, r.samples), before(now, r.hours), before(now, r.days)).await
    }

    /// The fleet in the Prometheus text format (`admin.stats`): servers by state, nodes by
    /// connection, per-node usage and capacity, users, and each server's latest sample.
    pub async fn prometheus_metrics(&self, who: &Principal) -> Result<String> {
        authorize(who, Permission::AdminStats, Scope::Global)?;
        let mut registry = Registry::with_prefix("catalyst");
        let servers = Family::<Labels, Gauge>::default();
        registry.register("servers", "Servers by lifecycle state", servers.clone());
        let mut by_state: HashMap<ServerState, i64> = HashMap::new();
        let mut node_of: HashMap<ServerId, catalyst_core::id::NodeId> = HashMap::new();
        for s in self.all_servers().await? {
            *by_state.entry(s.state).or_default() += 1;
            node_of.insert(s.id, s.node_id);
        }
        for (state, n) in by_state {
            servers.get_or_create(&vec![("state".into(), state.as_str().into())]).set(n);
        }
        let nodes = Family::<Labels, Gauge>::default();
        registry.register("nodes", "Nodes by agent connection", nodes.clone());
        let all = self.admin_nodes(&Principal::system()).await?;
        let online = all.iter().filter(|n| n.online).count() as i64;
        nodes.get_or_create(&vec![("online".into(), "true".into())]).set(online);
        nodes.get_or_create(&vec![("online".into(), "false".into())]).set(all.len() as i64 - online);
        let users = Gauge::<i64>::default();
        registry.register("users", "User accounts", users.clone());
        users.set(i64::try_from(self.inner.store.count_users().await?).unwrap_or(i64::MAX));

        let cpu = gauge_f64();
        let memory = gauge_f64();
        let memory_limit = gauge_f64();
        let disk = gauge_f64();
        let rx = gauge_f64();
        let tx = gauge_f64();
        registry.register("server_cpu_percent", "CPU in percent of one core, latest sample", cpu.clone());
        registry.register("server_memory_bytes", "Resident memory, latest sample", memory.clone());
        registry.register("server_memory_limit_bytes", "Memory limit", memory_limit.clone());
        registry.register("server_disk_bytes", "Size of the server directory, latest sample", disk.clone());
        registry.register("server_network_receive_bytes", "Bytes received, latest sample", rx.clone());
        registry.register("server_network_transmit_bytes", "Bytes sent, latest sample", tx.clone());
        // Per node: what its servers use now (sums of their latest samples) and what it may
        // hand out.
        let node_cpu = gauge_f64();
        let node_memory = gauge_f64();
        let node_disk = gauge_f64();
        let node_memory_capacity = gauge_f64();
        let node_memory_allocated = gauge_f64();
        registry.register("node_cpu_percent", "Sum of its servers' CPU, latest samples", node_cpu.clone());
        registry.register("node_memory_bytes", "Sum of its servers' resident memory", node_memory.clone());
        registry.register("node_disk_bytes", "Sum of its servers' directory sizes", node_disk.clone());
        registry.register("node_memory_capacity_bytes", "Memory it may hand out", node_memory_capacity.clone());
        registry.register(
            "node_memory_allocated_bytes",
            "Memory its servers are limited to",
            node_memory_allocated.clone(),
        );
        let node_labels = |id: catalyst_core::id::NodeId| vec![("node_id".to_string(), id.to_string())];
        for n in &all {
            let labels = node_labels(n.node.id);
            node_memory_capacity.get_or_create(&labels).set(n.memory_capacity_mb as f64 * 1_048_576.0);
            node_memory_allocated.get_or_create(&labels).set(n.memory_used_mb as f64 * 1_048_576.0);
            for family in [&node_cpu, &node_memory, &node_disk] {
                family.get_or_create(&labels).set(0.0);
            }
        }
        for m in self.inner.latest.all() {
            if let Some(node) = node_of.get(&m.server_id) {
                let labels = node_labels(*node);
                node_cpu.get_or_create(&labels).inc_by(m.cpu_percent);
                node_memory.get_or_create(&labels).inc_by(m.memory_bytes as f64);
                node_disk.get_or_create(&labels).inc_by(m.disk_bytes as f64);
            }
            let labels = vec![("server_id".to_string(), m.server_id.to_string())];
            cpu.get_or_create(&labels).set(m.cpu_percent);
            memory.get_or_create(&labels).set(m.memory_bytes as f64);
            memory_limit.get_or_create(&labels).set(m.memory_limit_bytes as f64);
            disk.get_or_create(&labels).set(m.disk_bytes as f64);
            rx.get_or_create(&labels).set(m.rx_bytes as f64);
            tx.get_or_create(&labels).set(m.tx_bytes as f64);
        }
        let mut out = String::new();
        encode(&mut out, &registry).map_err(|e| Error::internal("cannot encode metrics", e))?;
        Ok(out)
    }
}
