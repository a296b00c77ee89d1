//! The control plane behind one facade, [`Catalyst`]: every method takes the acting
//! [`Principal`], authorizes, validates, writes through the store ports, audits, and talks to
//! nodes through the [`NodeLink`] port. Cheap to clone, `Send + Sync`, serde in and out: the
//! HTTP layer and the Python/Node bindings wrap it as it is.

mod admin;
mod alerts;
mod allocations;
mod api_keys;
pub mod auth;
mod backups;
mod bus;
mod cache;
mod customer;
mod files;
mod inputs;
mod lookups;
mod metrics;
mod node_events;
mod nodes;
mod servers;
mod spec;
mod tasks;
mod templates;
mod tickets;
mod transfers;
mod users;

use std::sync::Arc;

pub use alerts::{EVALUATE_EVERY, SUPPRESS_FOR};
pub use api_keys::KEY_PREFIX;
pub use bus::EventBus;
use catalyst_core::clock::{Clock, SystemClock};
use catalyst_core::id::AuditId;
use catalyst_core::model::AuditLog;
use catalyst_core::permission::{Grant, Principal};
use catalyst_core::ports::{EventSink, NodeLink, Store};
use catalyst_core::{Error, Result};
pub use customer::{NodeAddress, ServerStartup};
pub use files::{CHUNK, Download, UploadStatus};
pub use inputs::*;
pub use metrics::MetricsRetention;
pub use tasks::MISSED_AFTER;
pub use tickets::{TICKET_PREFIX, TICKET_TTL};

use self::auth::{AuthConfig, Tokens};

/// The control plane.
#[derive(Debug, Clone)]
pub struct Catalyst {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    link: Arc<dyn NodeLink>,
    clock: Arc<dyn Clock>,
    bus: Arc<EventBus>,
    tokens: Tokens,
    auth: AuthConfig,
    cache: cache::ReadCache,
    key_usage: api_keys::KeyUsage,
    latest: metrics::Latest,
    tickets: tickets::Tickets,
    retention: metrics::MetricsRetention,
    webhooks: crate::webhook::WebhookSender,
    alert_interval: std::time::Duration,
    backup_storage: catalyst_core::model::BackupStorage,
    backup_retention: catalyst_core::model::RetentionPolicy,
    transfers: std::sync::Mutex<std::collections::HashSet<catalyst_core::id::ServerId>>,
    background: crate::background::Background,
}

impl Drop for Inner {
    /// The last handle is gone: stop the event loop and the scheduler (they hold only weak
    /// references, so they cannot keep the control plane alive).
    fn drop(&mut self) {
        self.background.cancel();
    }
}

/// A handle that does not keep the control plane alive, for its own background loops.
#[derive(Debug, Clone)]
struct WeakCatalyst(std::sync::Weak<Inner>);

impl WeakCatalyst {
    fn upgrade(&self) -> Option<Catalyst> {
        self.0.upgrade().map(|inner| Catalyst { inner })
    }
}

/// Builds a [`Catalyst`] from its ports.
#[derive(Debug)]
pub struct CatalystBuilder {
    store: Option<Arc<dyn Store>>,
    link: Option<Arc<dyn NodeLink>>,
    clock: Arc<dyn Clock>,
    bus: Option<Arc<EventBus>>,
    auth: Option<AuthConfig>,
    cache_ttl: std::time::Duration,
    scheduler: Option<std::time::Duration>,
    retention: metrics::MetricsRetention,
    webhooks: crate::webhook::WebhookPolicy,
    alert_interval: std::time::Duration,
    backup_storage: catalyst_core::model::BackupStorage,
    backup_retention: catalyst_core::model::RetentionPolicy,
}

impl Default for CatalystBuilder {
    fn default() -> Self {
        Self {
            store: None,
            link: None,
            clock: Arc::new(SystemClock),
            bus: None,
            auth: None,
            cache_ttl: cache::DEFAULT_TTL,
            scheduler: Some(std::time::Duration::from_secs(1)),
            retention: Default::default(),
            webhooks: Default::default(),
            alert_interval: alerts::EVALUATE_EVERY,
            backup_storage: catalyst_core::model::BackupStorage::Local { directory: String::new() },
            backup_retention: Default::default(),
        }
    }
}

impl CatalystBuilder {
    /// The store (required).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The node link (required).
    pub fn link(mut self, link: Arc<dyn NodeLink>) -> Self {
        self.link = Some(link);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The event bus (default: a new one).
    pub fn bus(mut self, bus: Arc<EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Token settings (required).
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// How long sessions and server rows stay cached (default 2 s; zero turns caching off).
    /// Writes through this instance take effect at once; this bounds how long writes by other
    /// instances sharing the store take to be seen.
    pub fn cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long metrics samples and roll-ups are kept.
    pub fn metrics_retention(mut self, retention: metrics::MetricsRetention) -> Self {
        self.retention = retention;
        self
    }

    /// How webhooks are delivered (private targets refused by default).
    pub fn webhooks(mut self, policy: crate::webhook::WebhookPolicy) -> Self {
        self.webhooks = policy;
        self
    }

    /// Where nodes store backups (default: a directory on each node, `<data>/backups`).
    pub fn backup_storage(mut self, storage: catalyst_core::model::BackupStorage) -> Self {
        self.backup_storage = storage;
        self
    }

    /// Which backups to keep after each new one (default: all).
    pub fn backup_retention(mut self, policy: catalyst_core::model::RetentionPolicy) -> Self {
        self.backup_retention = policy;
        self
    }

    /// How often alert rules are evaluated (default 30 s).
    pub fn alert_interval(mut self, every: std::time::Duration) -> Self {
        self.alert_interval = every;
        self
    }

    /// How often due tasks are looked for (default every second); metrics maintenance and
    /// alert evaluation ride on the same loop. `None` runs no background loop: tasks, roll-ups
    /// and alerts then happen on explicit calls (tests with a manual clock).
    pub fn scheduler(mut self, every: Option<std::time::Duration>) -> Self {
        self.scheduler = every;
        self
    }

    /// Build and start consuming node events. Must run inside a tokio runtime. The control
    /// plane owns every task it starts: [`Catalyst::shutdown`] ends them, and so does dropping
    /// the last handle.
    pub async fn build(self) -> Result<Catalyst> {
        let store = self.store.ok_or_else(|| Error::invalid("CatalystBuilder: a store is required"))?;
        let link = self.link.ok_or_else(|| Error::invalid("CatalystBuilder: a node link is required"))?;
        let auth = self.auth.ok_or_else(|| Error::invalid("CatalystBuilder: auth settings are required"))?;
        let catalyst = Catalyst {
            inner: Arc::new(Inner {
                tokens: Tokens::new(&auth),
                auth,
                store,
                link,
                clock: self.clock,
                bus: self.bus.unwrap_or_default(),
                cache: cache::ReadCache::new(self.cache_ttl),
                key_usage: Default::default(),
                latest: Default::default(),
                tickets: Default::default(),
                retention: self.retention,
                webhooks: crate::webhook::WebhookSender::new(self.webhooks)?,
                alert_interval: self.alert_interval,
                backup_storage: self.backup_storage,
                backup_retention: self.backup_retention,
                transfers: Default::default(),
                background: Default::default(),
            }),
        };
        node_events::spawn(&catalyst);
        if let Some(every) = self.scheduler {
            tasks::spawn_scheduler(&catalyst, every);
        }
        Ok(catalyst)
    }
}

impl Catalyst {
    /// Start building.
    pub fn builder() -> CatalystBuilder {
        CatalystBuilder::default()
    }

    /// The event bus: subscribe for state changes, console lines, stats.
    pub fn events(&self) -> &EventBus {
        &self.inner.bus
    }

    /// Stop the event loop, the scheduler and every task they started (transfers, webhook
    /// deliveries), and wait until all have ended; console lines and samples already received
    /// are written first. Calls made afterwards still work but start no background work.
    pub async fn shutdown(&self) {
        self.inner.background.shutdown().await;
    }

    /// The owner of this control plane's background tasks (adapters hang their own loops on
    /// it, so they end with it).
    pub fn background(&self) -> &crate::background::Background {
        &self.inner.background
    }

    fn downgrade(&self) -> WeakCatalyst {
        WeakCatalyst(Arc::downgrade(&self.inner))
    }

    /// The store, for adapters that need direct reads (e.g. health checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn now(&self) -> catalyst_core::model::Timestamp {
        self.inner.clock.now()
    }

    fn publish(&self, event: catalyst_core::events::DomainEvent) {
        self.inner.cache.observe(&event);
        match &event {
            catalyst_core::events::DomainEvent::ResourceStats(m) => self.inner.latest.record(m),
            catalyst_core::events::DomainEvent::ServerDeleted { server_id } => self.inner.latest.forget(*server_id),
            _ => {}
        }
        self.inner.bus.publish(event);
    }

    /// Record an audit entry. A failing audit write is logged, never silently dropped, and does
    /// not undo the action it describes.
    async fn audit(
        &self,
        who: Who<'_>,
        action: &str,
        target: (&str, Option<String>),
        success: bool,
        details: serde_json::Value,
    ) {
        let (actor, user_id, ip) = match who {
            Who::Principal(p) => (p.actor(), p.user_id(), p.ip()),
            Who::Grant(g, p) => (g.actor(), g.user_id(), p.ip()),
            Who::Anonymous(ip) => (catalyst_core::model::ActorRef::Anonymous, None, ip),
        };
        let entry = AuditLog {
            id: AuditId::new(),
            actor,
            user_id,
            action: action.to_string(),
            target_type: target.0.to_string(),
            target_id: target.1,
            success,
            details,
            ip: ip.map(|i| i.to_string()),
            at: self.now(),
        };
        if let Err(e) = self.inner.store.append_audit(&entry).await {
            tracing::error!(action, error = %e, "audit entry could not be written");
        }
    }
}

/// Who an audit entry is about.
enum Who<'a> {
    Principal(&'a Principal),
    Grant(&'a Grant, &'a Principal),
    Anonymous(Option<std::net::IpAddr>),
}
