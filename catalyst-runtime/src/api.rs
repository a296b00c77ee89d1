//! `CatalystApi`: one surface over the control plane, whether it runs in this process
//! ([`Embedded`]) or behind a catalyst-server (`catalyst_http::client::Client`). The Python and
//! Node bindings wrap this trait, so both modes behave the same; a test runs one scenario
//! against both.

use async_trait::async_trait;
use catalyst_core::Result;
use catalyst_core::egg::EggFormat;
use catalyst_core::id::{BackupId, NodeId, ServerId, TemplateId};
use catalyst_core::model::{
    Backup, Location, LogQuery, NewAllocations, Node, NodeAllocation, Page, Paged, Server, ServerLog, Template, User,
};
use catalyst_core::permission::Principal;

use crate::Catalyst;

mod driver;
pub mod follow;
mod subscription;

use crate::control::{AllocationPatch, Me, NewLocation, NewNode, NewServer, NewTemplate, NewUser, ServerPatch};
pub use catalyst_core::follow::{Cursor, MAX_REPLAY};
pub use driver::{Driver, runtime};
pub use subscription::{Closer, FEED_BUFFER, SharedFeed, Subscription};

/// What a caller can do with Catalyst, acting as one user.
#[async_trait]
pub trait CatalystApi: Send + Sync + std::fmt::Debug {
    /// The caller.
    async fn me(&self) -> Result<Me>;
    /// A new user account (by an operator; e.g. a customer who just paid).
    async fn create_user(&self, input: NewUser) -> Result<User>;
    /// Every location.
    async fn list_locations(&self) -> Result<Vec<Location>>;
    /// A new location.
    async fn create_location(&self, input: NewLocation) -> Result<Location>;
    /// A page of nodes.
    async fn list_nodes(&self, page: Page) -> Result<Paged<Node>>;
    /// A new node.
    async fn create_node(&self, input: NewNode) -> Result<Node>;
    /// One node.
    async fn get_node(&self, id: NodeId) -> Result<Node>;
    /// Add ports to a node's allocation pool; how many were new.
    async fn add_allocations(&self, node: NodeId, input: NewAllocations) -> Result<u64>;
    /// A page of a node's allocation pool.
    async fn list_allocations(&self, node: NodeId, page: Page) -> Result<Paged<NodeAllocation>>;
    /// Change an allocation's alias or notes.
    async fn update_allocation(&self, node: NodeId, number: u64, patch: AllocationPatch) -> Result<NodeAllocation>;
    /// Remove a free allocation from the pool.
    async fn delete_allocation(&self, node: NodeId, number: u64) -> Result<()>;
    /// A new template.
    async fn create_template(&self, input: NewTemplate) -> Result<Template>;
    /// A page of templates.
    async fn list_templates(&self, page: Page) -> Result<Paged<Template>>;
    /// One template.
    async fn get_template(&self, id: TemplateId) -> Result<Template>;
    /// Import a Pterodactyl or Pelican egg (JSON or YAML): a new template, or the one from the
    /// same egg updated.
    async fn import_template(&self, egg: Vec<u8>) -> Result<Template>;
    /// A template as an egg file.
    async fn export_template(&self, id: TemplateId, format: EggFormat) -> Result<String>;
    /// A new server (installed in the background).
    async fn create_server(&self, input: NewServer) -> Result<Server>;
    /// One server.
    async fn get_server(&self, id: ServerId) -> Result<Server>;
    /// A page of the servers the caller may see.
    async fn list_servers(&self, page: Page) -> Result<Paged<Server>>;
    /// Change a server.
    async fn update_server(&self, id: ServerId, patch: ServerPatch) -> Result<Server>;
    /// Delete a server.
    async fn delete_server(&self, id: ServerId) -> Result<()>;
    /// Start a stopped or crashed server.
    async fn start_server(&self, id: ServerId) -> Result<Server>;
    /// Stop gracefully.
    async fn stop_server(&self, id: ServerId) -> Result<Server>;
    /// Stop then start.
    async fn restart_server(&self, id: ServerId) -> Result<Server>;
    /// Kill at once.
    async fn kill_server(&self, id: ServerId) -> Result<Server>;
    /// A console command.
    async fn send_command(&self, id: ServerId, line: &str) -> Result<()>;
    /// Suspend (operators).
    async fn suspend_server(&self, id: ServerId) -> Result<Server>;
    /// Lift a suspension (operators).
    async fn unsuspend_server(&self, id: ServerId) -> Result<Server>;
    /// Stored console lines.
    async fn server_logs(&self, id: ServerId, query: LogQuery) -> Result<Vec<ServerLog>>;
    /// Take a backup (completes in the background).
    async fn create_backup(&self, id: ServerId, name: Option<String>) -> Result<Backup>;
    /// A server's backups, newest first.
    async fn list_backups(&self, id: ServerId) -> Result<Vec<Backup>>;
    /// Restore a backup (the server is stopped first).
    async fn restore_backup(&self, id: ServerId, backup: BackupId) -> Result<Backup>;
    /// Delete a backup.
    async fn delete_backup(&self, id: ServerId, backup: BackupId) -> Result<()>;
    /// Follow a server: console lines (with `console.read`; those after `since`, up to
    /// [`MAX_REPLAY`], replayed first), state changes, resource samples, install output, backup
    /// and transfer progress. [`Subscription::console`] keeps only the console.
    async fn events(&self, id: ServerId, since: Option<i64>) -> Result<Subscription>;
    /// Release what this handle holds: an embedded control plane that it opened stops (its
    /// node, tasks and database connections end; running game servers keep running in their
    /// runtime). Calls made afterwards fail or start nothing; closing twice is harmless.
    async fn close(&self);
}

/// The control plane in this process, acting as `principal`.
#[derive(Debug, Clone)]
pub struct Embedded {
    catalyst: Catalyst,
    principal: Principal,
    /// Set by [`Embedded::open`], which owns what it started; `None` for a handle over a
    /// control plane someone else owns.
    opened: Option<std::sync::Arc<Opened>>,
}

impl Embedded {
    /// Act as `principal` on `catalyst` (owned by the caller: `close` leaves it running).
    pub fn new(catalyst: Catalyst, principal: Principal) -> Self {
        Self { catalyst, principal, opened: None }
    }
}

#[async_trait]
impl CatalystApi for Embedded {
    async fn me(&self) -> Result<Me> {
        self.catalyst.me(&self.principal).await
    }
    async fn create_user(&self, input: NewUser) -> Result<User> {
        self.catalyst.create_user(&self.principal, input).await
    }
    async fn add_allocations(&self, node: NodeId, input: NewAllocations) -> Result<u64> {
        self.catalyst.add_allocations(&self.principal, node, input).await
    }
    async fn list_allocations(&self, node: NodeId, page: Page) -> Result<Paged<NodeAllocation>> {
        self.catalyst.list_allocations(&self.principal, node, page).await
    }
    async fn update_allocation(&self, node: NodeId, number: u64, patch: AllocationPatch) -> Result<NodeAllocation> {
        self.catalyst.update_allocation(&self.principal, node, number, patch).await
    }
    async fn delete_allocation(&self, node: NodeId, number: u64) -> Result<()> {
        self.catalyst.delete_allocation(&self.principal, node, number).await
    }
    async fn list_locations(&self) -> Result<Vec<Location>> {
        self.catalyst.list_locations(&self.principal).await
    }
    async fn create_location(&self, input: NewLocation) -> Result<Location> {
        self.catalyst.create_location(&self.principal, input).await
    }
    async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
        self.catalyst.list_nodes(&self.principal, page).await
    }
    async fn create_node(&self, input: NewNode) -> Result<Node> {
        self.catalyst.create_node(&self.principal, input).await
    }
    async fn get_node(&self, id: NodeId) -> Result<Node> {
        self.catalyst.get_node(&self.principal, id).await
    }
    async fn create_template(&self, input: NewTemplate) -> Result<Template> {
        self.catalyst.create_template(&self.principal, input).await
    }
    async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
        self.catalyst.list_templates(&self.principal, page).await
    }
    async fn get_template(&self, id: TemplateId) -> Result<Template> {
        self.catalyst.get_template(&self.principal, id).await
    }
    async fn import_template(&self, egg: Vec<u8>) -> Result<Template> {
        self.catalyst.import_template(&self.principal, &egg).await
    }
    async fn export_template(&self, id: TemplateId, format: EggFormat) -> Result<String> {
        self.catalyst.export_template(&self.principal, id, format).await
    }
    async fn create_server(&self, input: NewServer) -> Result<Server> {
        self.catalyst.create_server(&self.principal, input).await
    }
    async fn get_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.get_server(&self.principal, id).await
    }
    async fn list_servers(&self, page: Page) -> Result<Paged<Server>> {
        self.catalyst.list_servers(&self.principal, page).await
    }
    async fn update_server(&self, id: ServerId, patch: ServerPatch) -> Result<Server> {
        self.catalyst.update_server(&self.principal, id, patch).await
    }
    async fn delete_server(&self, id: ServerId) -> Result<()> {
        self.catalyst.delete_server(&self.principal, id).await
    }
    async fn start_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.start_server(&self.principal, id).await
    }
    async fn stop_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.stop_server(&self.principal, id).await
    }
    async fn restart_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.restart_server(&self.principal, id).await
    }
    async fn kill_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.kill_server(&self.principal, id).await
    }
    async fn send_command(&self, id: ServerId, line: &str) -> Result<()> {
        self.catalyst.send_command(&self.principal, id, line).await
    }
    async fn suspend_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.suspend_server(&self.principal, id).await
    }
    async fn unsuspend_server(&self, id: ServerId) -> Result<Server> {
        self.catalyst.unsuspend_server(&self.principal, id).await
    }
    async fn server_logs(&self, id: ServerId, query: LogQuery) -> Result<Vec<ServerLog>> {
        self.catalyst.server_logs(&self.principal, id, &query).await
    }
    async fn create_backup(&self, id: ServerId, name: Option<String>) -> Result<Backup> {
        self.catalyst.create_backup(&self.principal, id, name).await
    }
    async fn list_backups(&self, id: ServerId) -> Result<Vec<Backup>> {
        self.catalyst.list_backups(&self.principal, id).await
    }
    async fn restore_backup(&self, id: ServerId, backup: BackupId) -> Result<Backup> {
        self.catalyst.restore_backup(&self.principal, id, backup).await
    }
    async fn delete_backup(&self, id: ServerId, backup: BackupId) -> Result<()> {
        self.catalyst.delete_backup(&self.principal, id, backup).await
    }
    async fn events(&self, id: ServerId, since: Option<i64>) -> Result<Subscription> {
        subscription::embedded(self.catalyst.clone(), self.principal.clone(), id, since).await
    }
    async fn close(&self) {
        if let Some(opened) = &self.opened {
            opened.close().await;
        }
    }
}

/// How to run an embedded control plane.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// `sqlite:<path>` (or a plain path) for the embedded database, `postgres://…` for PostgreSQL.
    pub database_url: String,
    /// Where node files live when `local_node` is set.
    pub data_dir: std::path::PathBuf,
    /// Run a node in this process too (`None`: no local node).
    pub local_node: Option<crate::node::RuntimeChoice>,
    /// Let that node run servers it cannot confine (plain processes without root): they can
    /// then read everything this process can. Only for servers you trust, e.g. on a laptop.
    pub allow_unconfined: bool,
}

impl Embedded {
    /// Open a control plane in this process acting as the system (the embedding application
    /// is the operator), with an optional local node named `local`. It owns what it opened:
    /// [`CatalystApi::close`] stops it, and so does dropping the last clone.
    pub async fn open(config: EmbeddedConfig) -> Result<Self> {
        use std::sync::Arc;
        let store = crate::bootstrap::open_store(&config.database_url).await?;
        let hub = crate::link::NodeHub::new();
        let secret = crate::control::auth::random_secret();
        let catalyst = Catalyst::builder()
            .store(store.clone())
            .link(Arc::new(hub.clone()))
            .auth(crate::control::auth::AuthConfig::with_secret(secret.into_bytes())?)
            .build()
            .await?;
        let mut node = None;
        if let Some(choice) = config.local_node {
            let started = async {
                let registered = catalyst.local_node("This process", 64 * 1024, 1024 * 1024).await?;
                let boot = crate::bootstrap::NodeBootstrap {
                    runtime: choice,
                    allow_unconfined: config.allow_unconfined,
                    ..crate::bootstrap::NodeBootstrap::new(&config.data_dir)
                };
                crate::bootstrap::LocalNode::start(registered.id, &boot).await
            };
            match started.await {
                Ok(local) => {
                    hub.add_node(local.daemon.clone());
                    node = Some(local.daemon);
                }
                Err(e) => {
                    catalyst.shutdown().await;
                    store.close().await;
                    return Err(e);
                }
            }
        }
        let opened = Arc::new(Opened { store, hub, node, catalyst: catalyst.clone() });
        Ok(Self { catalyst, principal: Principal::system(), opened: Some(opened) })
    }

    /// The hub the local node (if any) is attached to, for serving agents or HTTP beside it.
    pub fn hub(&self) -> Option<&crate::link::NodeHub> {
        self.opened.as_ref().map(|o| &o.hub)
    }

    /// The control plane this handle acts on.
    pub fn catalyst(&self) -> &Catalyst {
        &self.catalyst
    }
}

/// What [`Embedded::open`] started. Dropped with the last clone of the handle: its tasks are
/// then cancelled (without waiting), and the store closes once they have let go of it.
#[derive(Debug)]
struct Opened {
    store: std::sync::Arc<dyn catalyst_core::ports::Store>,
    hub: crate::link::NodeHub,
    node: Option<crate::node::NodeDaemon>,
    catalyst: Catalyst,
}

impl Opened {
    async fn close(&self) {
        if let Some(node) = &self.node {
            node.shutdown().await;
            self.hub.remove_node(node.node_id());
        }
        self.catalyst.shutdown().await;
        self.store.close().await;
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(node) = &self.node {
            node.background().cancel();
        }
        self.catalyst.background().cancel();
    }
}
