//! A whole Catalyst in one process for tests and benches: a store, a node hub and a control
//! plane, and on request an administrator, a node daemon, an owner, a template and a server
//! that has finished installing.
//!
//! Behind the `testing` feature, which only `[dev-dependencies]` turn on: nothing here ships.
//!
//! ```ignore
//! let w = TestWorld::sqlite().await.with_server().build().await;
//! w.catalyst.start_server(w.owner(), w.server()).await?;
//! w.wait_for_state(w.server(), ServerState::Running).await;
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::clock::{Clock, SystemClock};
use catalyst_core::id::{NodeId, ServerId, TemplateId, UserId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, DonePattern, Limits, StopAction, User};
use catalyst_core::permission::Principal;
use catalyst_core::ports::{ContainerRuntime, Store};
use catalyst_core::testing::FakeRuntime;

use crate::control::auth::AuthConfig;
use crate::control::{LoginInput, NewLocation, NewNode, NewServer, NewTemplate, RegisterInput};
use crate::link::NodeHub;
use crate::node::{DaemonConfig, NodeDaemon};
use crate::{Catalyst, CatalystBuilder};

/// The password of every user made here except the administrator.
pub const PASSWORD: &str = "password-123";
/// The owner's email ([`TestWorldBuilder::with_owner`]).
pub const OWNER_EMAIL: &str = "owner@example.test";
/// The administrator's email ([`TestWorldBuilder::with_admin`]).
pub const ADMIN_EMAIL: &str = "admin@example.test";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "admin-password";

/// How long [`wait_for_state`] waits: node events are applied asynchronously, and a loaded
/// machine running a bench next to the tests is slow.
const WAIT: Duration = Duration::from_secs(15);

/// The template most tests run: `./run`, stopped with `stop`, started once it prints `Done`.
pub fn game_template() -> NewTemplate {
    NewTemplate {
        name: "game".into(),
        description: String::new(),
        image: "img".into(),
        startup: "./run".into(),
        env: Default::default(),
        variables: vec![],
        install: None,
        stop: StopAction::Command("stop".into()),
        done_patterns: vec![DonePattern::Substring("Done".into())],
        ..Default::default()
    }
}

/// A server `s` of `owner` on `node` from `template`, on port 25565, with default limits.
pub fn new_server(owner: UserId, node: NodeId, template: TemplateId) -> NewServer {
    NewServer {
        name: "s".into(),
        description: String::new(),
        owner_id: owner,
        node_id: Some(node),
        deploy: None,
        external_id: None,
        template_id: template,
        variables: Default::default(),
        limits: Default::default(),
        allocations: vec![Allocation { ip: "0.0.0.0".into(), port: 25565, primary: true }],
        restart_policy: Default::default(),
        image: None,
        startup_command: None,
    }
}

/// The builder every test control plane starts from: `store`, `hub` as its node link, and a
/// fixed signing secret. Add settings, then `build()`.
pub fn control_plane(store: Arc<dyn Store>, hub: &NodeHub) -> CatalystBuilder {
    Catalyst::builder()
        .store(store)
        .link(Arc::new(hub.clone()))
        .auth(AuthConfig::with_secret(vec![7u8; 32]).expect("test secret"))
}

/// Poll until the stored `server` is in `state`; panics after 15 s.
pub async fn wait_for_state(catalyst: &Catalyst, server: ServerId, state: ServerState) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = catalyst.get_server(&Principal::system(), server).await.expect("get server").state;
        if now == state {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {state:?} (still {now:?})");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type Configure = Box<dyn FnOnce(CatalystBuilder) -> CatalystBuilder + Send>;
type ConfigureDaemon = Box<dyn FnOnce(&mut DaemonConfig) + Send>;

/// What [`TestWorldBuilder::build`] sets up. Steps imply what they need: a server brings a node,
/// an owner and (unless one was given) [`game_template`].
pub struct TestWorldBuilder {
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    clock: Option<Arc<dyn Clock>>,
    configure: Option<Configure>,
    admin: bool,
    runtime: Option<Arc<dyn ContainerRuntime>>,
    daemon_config: Option<ConfigureDaemon>,
    owner: bool,
    template: Option<NewTemplate>,
    server: Option<Limits>,
}

impl std::fmt::Debug for TestWorldBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestWorldBuilder")
            .field("dir", &self.dir.path())
            .field("admin", &self.admin)
            .field("node", &self.runtime.is_some())
            .field("owner", &self.owner)
            .field("template", &self.template.as_ref().map(|t| &t.name))
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl TestWorldBuilder {
    /// The control plane's clock (the system clock by default). The daemon keeps the system
    /// clock: its stop grace and crash backoff are real waits.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// More control-plane settings (scheduler, backups, webhooks, auth), applied after the
    /// defaults of [`control_plane`].
    pub fn configure(mut self, f: impl FnOnce(CatalystBuilder) -> CatalystBuilder + Send + 'static) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Bootstrap an administrator ([`ADMIN_EMAIL`]) and act as them in [`TestWorld::admin`].
    pub fn with_admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// A location and a node whose daemon runs in this process over the [`FakeRuntime`],
    /// with its data in [`TestWorld::dir`].
    pub fn with_node(mut self) -> Self {
        self.runtime.get_or_insert_with(|| Arc::new(FakeRuntime::new()));
        self
    }

    /// The node, with its daemon over `runtime` (keep a clone to look at what it was asked).
    pub fn with_runtime(mut self, runtime: Arc<dyn ContainerRuntime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The node, with its daemon's settings changed by `f`.
    pub fn with_daemon_config(mut self, f: impl FnOnce(&mut DaemonConfig) + Send + 'static) -> Self {
        self.daemon_config = Some(Box::new(f));
        self.with_node()
    }

    /// A registered customer ([`OWNER_EMAIL`], [`PASSWORD`]), signed in as [`TestWorld::owner`].
    pub fn with_owner(mut self) -> Self {
        self.owner = true;
        self
    }

    /// Create `template`.
    pub fn with_template(mut self, template: NewTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// The owner's server ([`new_server`]) on the node, installed: `build` waits for `Stopped`.
    pub fn with_server(self) -> Self {
        self.with_server_limits(Limits::default())
    }

    /// [`with_server`](Self::with_server) with `limits`.
    pub fn with_server_limits(mut self, limits: Limits) -> Self {
        self.server = Some(limits);
        self.owner = true;
        self.template.get_or_insert_with(game_template);
        self.with_node()
    }

    /// Set it all up; panics on any failure.
    pub async fn build(self) -> TestWorld {
        let hub = NodeHub::new();
        let mut builder = control_plane(self.store.clone(), &hub);
        if let Some(clock) = self.clock {
            builder = builder.clock(clock);
        }
        if let Some(configure) = self.configure {
            builder = configure(builder);
        }
        let catalyst = builder.build().await.expect("build the control plane");
        let mut w = TestWorld {
            catalyst,
            hub,
            store: self.store,
            admin: Principal::system(),
            dir: self.dir,
            node: None,
            owner: None,
            template: None,
            server: None,
        };
        let system = Principal::system();
        if self.admin {
            w.catalyst.bootstrap_admin(ADMIN_EMAIL, "admin", ADMIN_PASSWORD.into()).await.expect("bootstrap admin");
            let token = w.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
            w.admin = w.catalyst.authenticate(&token, None).await.expect("authenticate admin");
        }
        if let Some(runtime) = self.runtime {
            let location = NewLocation { name: "loc".into(), description: String::new() };
            let location = w.catalyst.create_location(&system, location).await.expect("location");
            let node = NewNode {
                name: "n".into(),
                location_id: location.id,
                fqdn: "n.example.test".into(),
                memory_mb: 8192,
                disk_mb: 100_000,
                overallocate_percent: 0,
            };
            let node = w.catalyst.create_node(&system, node).await.expect("node");
            let mut config = DaemonConfig::new(w.dir.path());
            if let Some(configure) = self.daemon_config {
                configure(&mut config);
            }
            let daemon = NodeDaemon::new(node.id, runtime, Arc::new(SystemClock), config);
            w.hub.add_node(daemon.clone());
            w.node = Some((node.id, daemon));
        }
        if self.owner {
            let (_, token) = w.user("owner").await;
            w.owner = Some(w.catalyst.authenticate(&token, None).await.expect("authenticate owner"));
        }
        if let Some(template) = self.template {
            w.template = Some(w.catalyst.create_template(&system, template).await.expect("template").id);
        }
        if let Some(limits) = self.server {
            let owner = w.owner().user_id().expect("the owner is a user");
            let server = NewServer { limits, ..new_server(owner, w.node(), w.template()) };
            let server = w.catalyst.create_server(&system, server).await.expect("server").id;
            wait_for_state(&w.catalyst, server, ServerState::Stopped).await;
            w.server = Some(server);
        }
        w
    }
}

/// A control plane with what its builder asked for. What every world has is a field; the rest
/// are accessors that panic naming the builder step that was left out.
#[derive(Debug)]
pub struct TestWorld {
    /// The control plane.
    pub catalyst: Catalyst,
    /// Its node link; attach more nodes here.
    pub hub: NodeHub,
    /// Its store.
    pub store: Arc<dyn Store>,
    /// The administrator of [`TestWorldBuilder::with_admin`], or else the system principal.
    pub admin: Principal,
    /// The temporary directory (the SQLite file, the node's data); removed on drop.
    pub dir: tempfile::TempDir,
    node: Option<(NodeId, NodeDaemon)>,
    owner: Option<Principal>,
    template: Option<TemplateId>,
    server: Option<ServerId>,
}

impl TestWorld {
    /// A world on a SQLite file in its temporary directory.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite() -> TestWorldBuilder {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::SqliteStore::open(&dir.path().join("catalyst.db")).await.expect("open sqlite");
        Self::builder(Arc::new(store), dir)
    }

    /// A world on `store` (which the caller cleans up).
    pub fn on(store: Arc<dyn Store>) -> TestWorldBuilder {
        Self::builder(store, tempfile::tempdir().expect("tempdir"))
    }

    fn builder(store: Arc<dyn Store>, dir: tempfile::TempDir) -> TestWorldBuilder {
        TestWorldBuilder {
            store,
            dir,
            clock: None,
            configure: None,
            admin: false,
            runtime: None,
            daemon_config: None,
            owner: false,
            template: None,
            server: None,
        }
    }

    /// The node's id ([`TestWorldBuilder::with_node`]).
    pub fn node(&self) -> NodeId {
        self.node.as_ref().expect("TestWorld built without with_node()").0
    }

    /// The node's daemon ([`TestWorldBuilder::with_node`]).
    pub fn daemon(&self) -> &NodeDaemon {
        &self.node.as_ref().expect("TestWorld built without with_node()").1
    }

    /// The owner, signed in ([`TestWorldBuilder::with_owner`]).
    pub fn owner(&self) -> &Principal {
        self.owner.as_ref().expect("TestWorld built without with_owner()")
    }

    /// The template ([`TestWorldBuilder::with_template`]).
    pub fn template(&self) -> TemplateId {
        self.template.expect("TestWorld built without with_template()")
    }

    /// The server ([`TestWorldBuilder::with_server`]).
    pub fn server(&self) -> ServerId {
        self.server.expect("TestWorld built without with_server()")
    }

    /// The server's files on the node.
    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("servers").join(self.server().to_string())
    }

    /// Poll until `server` is in `state` ([`wait_for_state`]).
    pub async fn wait_for_state(&self, server: ServerId, state: ServerState) {
        wait_for_state(&self.catalyst, server, state).await;
    }

    /// Sign in; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let input = LoginInput { email: email.into(), password: password.into() };
        self.catalyst.login(input, None).await.expect("login").access_token
    }

    /// Register `{name}@example.test` with [`PASSWORD`] and sign in; returns the user and the
    /// access token.
    pub async fn user(&self, name: &str) -> (User, String) {
        let email = format!("{name}@example.test");
        let input = RegisterInput { email: email.clone(), username: name.into(), password: PASSWORD.into() };
        let user = self.catalyst.register(input).await.expect("register");
        let token = self.login(&email, PASSWORD).await;
        (user, token)
    }
}
