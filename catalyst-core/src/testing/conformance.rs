//! Conformance suites: every store adapter must pass all of them, every backup target
//! [`backup_target`].
//!
//! Each suite takes a fresh, empty store. A store call that fails is returned as an error
//! naming the step; a wrong answer panics with a message.

use std::collections::BTreeMap;

use crate::ErrorKind;
use crate::clock::{Clock, SystemClock};
use crate::id::{
    AlertId, AlertRuleId, ApiKeyId, AuditId, DeliveryId, LocationId, NodeId, RoleId, ServerId, SessionId, TaskId,
    TemplateId, UserId,
};
use crate::lifecycle::ServerState;
use crate::model::{
    ActorRef, Alert, AlertCondition, AlertFilter, AlertMetric, AlertRule, Allocation, ApiKey, AuditLog, AuditQuery,
    CatchUp, Limits, Location, LogQuery, LogStream, MetricsRollup, Node, Page, Period, Role, ScheduledTask, Server,
    ServerAccess, ServerLog, ServerMetrics, Session, Severity, StopAction, TaskAction, Template, Timestamp, User,
    WebhookDelivery, WebhookFormat, WebhookTarget,
};
use crate::permission::Permission;
use crate::ports::{ServerFilter, Store};
use crate::restart::RestartPolicy;

/// Fixture builders shared by the suites and by other crates' tests.
pub mod fixtures {
    use super::*;

    /// `n` deterministic, incompressible bytes (xorshift from `seed`).
    pub fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Now, truncated to microseconds.
    pub fn now() -> Timestamp {
        SystemClock.now()
    }

    /// A user named `name` with email `name@example.test`.
    pub fn user(name: &str) -> User {
        User {
            id: UserId::new(),
            number: 0,
            external_id: None,
            first_name: String::new(),
            last_name: String::new(),
            email: format!("{name}@example.test"),
            username: name.to_string(),
            password_hash: "$argon2id$fake".into(),
            roles: vec![],
            created_at: now(),
            updated_at: now(),
            version: 0,
        }
    }

    /// An API key of `user` with public prefix `prefix` and scope `server.read`.
    pub fn api_key(prefix: &str, user: UserId) -> ApiKey {
        ApiKey {
            id: ApiKeyId::new(),
            name: format!("key {prefix}"),
            prefix: prefix.into(),
            secret_hash: format!("hash-of-{prefix}"),
            user_id: user,
            scopes: vec![Permission::ServerRead],
            rate_limit: Some(60),
            rate_window_secs: 60,
            expires_at: None,
            last_used_at: None,
            revoked: false,
            created_at: now(),
            version: 0,
        }
    }

    /// An enabled task on `server` by `creator`, every minute, next firing at `next`.
    pub fn task(name: &str, server: ServerId, creator: UserId, next: Option<Timestamp>) -> ScheduledTask {
        ScheduledTask {
            id: TaskId::new(),
            server_id: server,
            name: name.into(),
            cron: "* * * * *".into(),
            timezone: "UTC".into(),
            action: TaskAction::Command(format!("say {name}")),
            enabled: true,
            catch_up: CatchUp::Skip,
            created_by: creator,
            last_run_at: None,
            next_run_at: next,
            run_count: 0,
            last_result: None,
            last_error: None,
            version: 0,
        }
    }

    /// A location.
    pub fn location(name: &str) -> Location {
        Location {
            id: LocationId::new(),
            number: 0,
            name: name.into(),
            description: String::new(),
            created_at: now(),
            version: 0,
        }
    }

    /// A node in `location`.
    pub fn node(name: &str, location: LocationId) -> Node {
        Node {
            id: NodeId::new(),
            number: 0,
            name: name.into(),
            location_id: location,
            fqdn: format!("{name}.example.test"),
            memory_mb: 16_384,
            disk_mb: 102_400,
            overallocate_percent: 0,
            deployment_token_hash: None,
            deployment_token_expires_at: None,
            credential_hash: None,
            last_seen_at: None,
            created_at: now(),
            version: 0,
        }
    }

    /// A minimal template.
    pub fn template(name: &str) -> Template {
        crate::model::NewTemplate {
            name: name.into(),
            image: "catalyst/test:latest".into(),
            startup: "./run.sh".into(),
            stop: StopAction::Command("stop".into()),
            ..Default::default()
        }
        .into_template(TemplateId::new(), now(), 0)
    }

    /// A server on `node` owned by `owner` listening on `port`.
    pub fn server(name: &str, owner: UserId, node: NodeId, template: TemplateId, port: u16) -> Server {
        Server {
            id: ServerId::new(),
            number: 0,
            external_id: None,
            name: name.into(),
            description: String::new(),
            owner_id: owner,
            node_id: node,
            template_id: template,
            variables: BTreeMap::new(),
            limits: Limits::default(),
            allocations: vec![Allocation { ip: "0.0.0.0".into(), port, primary: true }],
            restart_policy: RestartPolicy::default(),
            image: None,
            startup_command: None,
            state: ServerState::Stopped,
            crash_count: 0,
            crash_history: vec![],
            created_at: now(),
            updated_at: now(),
            version: 0,
        }
    }

    /// One console line.
    pub fn log(server: ServerId, seq: i64, stream: LogStream) -> ServerLog {
        ServerLog { server_id: server, seq, stream, line: format!("line {seq}"), at: now() }
    }

    /// An audit entry.
    pub fn audit_entry(user: Option<UserId>, action: &str, at: Timestamp) -> AuditLog {
        AuditLog {
            id: AuditId::new(),
            actor: user.map(ActorRef::User).unwrap_or(ActorRef::System),
            user_id: user,
            action: action.into(),
            target_type: "server".into(),
            target_id: Some("t1".into()),
            success: true,
            details: serde_json::json!({"k": "v"}),
            ip: Some("127.0.0.1".into()),
            at,
        }
    }
}

use fixtures::*;

mod backup_target;
mod ops;
mod pools;
mod runtime;

pub use backup_target::backup_target;
pub use ops::{alerts, api_keys, backups, metrics, tasks};
pub use pools::{numbers, pools};
pub use runtime::{ECHO_SCRIPT, RuntimeTarget, container_runtime};

/// Say which step of a suite failed, keeping the store's error as the source.
trait Context<T> {
    fn context(self, step: &str) -> crate::Result<T>;
}

impl<T> Context<T> for crate::Result<T> {
    fn context(self, step: &str) -> crate::Result<T> {
        self.map_err(|e| crate::Error::new(e.kind(), format!("{step}: {}", e.message())).with_source(e))
    }
}

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

/// Run every suite on `store`, which must be empty. Tests prefer [`crate::store_conformance!`],
/// which makes each suite its own test.
pub async fn all(store: &dyn Store) -> crate::Result<()> {
    users(store).await?;
    nodes(store).await?;
    templates(store).await?;
    servers(store).await?;
    logs(store).await?;
    audit(store).await?;
    api_keys(store).await?;
    tasks(store).await?;
    metrics(store).await?;
    alerts(store).await?;
    backups(store).await?;
    numbers(store).await?;
    pools(store).await?;
    Ok(())
}

/// A store a conformance test runs on, and what to clean up once it passed.
pub trait StoreUnderTest: Sized {
    /// The store.
    fn store(&self) -> &dyn Store;
    /// Clean up (drop a schema, …) after the suite passed.
    fn finish(self) -> impl std::future::Future<Output = ()> {
        async {}
    }
}

impl StoreUnderTest for crate::store::MemoryStore {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// Stamp one `#[tokio::test]` per store suite into a module `$adapter`, so one failing suite
/// does not hide the others. `$open` is a closure returning a future of
/// `Option<impl StoreUnderTest>`, a fresh empty store per test; `None` skips (the opener says why).
///
/// ```ignore
/// catalyst_core::store_conformance!(memory, || async { Some(MemoryStore::new()) });
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($adapter:ident, $open:expr) => {
        $crate::store_conformance!(@each $adapter, $open;
            users nodes templates servers logs audit api_keys tasks metrics alerts backups numbers pools);
    };
    (@each $adapter:ident, $open:expr; $($suite:ident)*) => {
        mod $adapter {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $suite() -> $crate::Result<()> {
                    use $crate::testing::conformance::StoreUnderTest as _;
                    let Some(target) = ($open)().await else { return Ok(()) };
                    $crate::testing::conformance::$suite(target.store()).await?;
                    target.finish().await;
                    Ok(())
                }
            )*
        }
    };
}

/// [`crate::ports::UserStore`] conformance.
pub async fn users(store: &dyn Store) -> crate::Result<()> {
    let alice = store.create_user(&user("alice")).await.context("create user")?;
    assert!(alice.number > 0, "the store numbers a new user");
    assert_eq!(store.get_user(alice.id).await.context("get user")?, alice, "user round-trips");
    let mut dup = user("alice2");
    dup.email = alice.email.clone();
    assert_eq!(kind(store.create_user(&dup).await), ErrorKind::Conflict, "duplicate email");
    let mut dup = user("alice3");
    dup.username = alice.username.clone();
    assert_eq!(kind(store.create_user(&dup).await), ErrorKind::Conflict, "duplicate username");
    assert_eq!(kind(store.get_user(UserId::new()).await), ErrorKind::NotFound);
    assert_eq!(store.find_user_by_email(&alice.email).await.context("find")?.map(|u| u.id), Some(alice.id));
    assert!(store.find_user_by_email("nobody@example.test").await.context("find")?.is_none());
    let by_name = store.find_user_by_username(&alice.username).await.context("by username")?;
    assert_eq!(by_name.map(|u| u.id), Some(alice.id));
    assert!(store.find_user_by_username(&alice.username[..2]).await.context("prefix")?.is_none(), "exact");

    // Compare-and-swap: exactly one of two writers holding version 0 wins.
    let mut a = alice.clone();
    a.username = "alice_a".into();
    let mut b = alice.clone();
    b.username = "alice_b".into();
    let stored = store.update_user(&a).await.context("first writer wins")?;
    assert_eq!(stored.version, 1);
    assert_eq!(kind(store.update_user(&b).await), ErrorKind::Conflict, "second writer loses");
    assert_eq!(store.get_user(alice.id).await.context("get")?.username, "alice_a");

    let bob = user("bob");
    store.create_user(&bob).await.context("create bob")?;
    let mut steal = store.get_user(bob.id).await.context("get bob")?;
    steal.email = alice.email.clone();
    assert_eq!(kind(store.update_user(&steal).await), ErrorKind::Conflict, "update to a taken email");
    assert_eq!(store.count_users().await.context("count")?, 2);
    let page = store.list_users(Page::new(0, 1)).await.context("list")?;
    assert_eq!((page.items.len(), page.total), (1, 2), "paging");

    // Roles.
    let role = Role {
        id: RoleId::new(),
        name: "operators".into(),
        description: "ops".into(),
        permissions: vec!["server.*".into()],
        created_at: now(),
        version: 0,
    };
    store.create_role(&role).await.context("create role")?;
    assert_eq!(kind(store.create_role(&Role { id: RoleId::new(), ..role.clone() }).await), ErrorKind::Conflict);
    assert_eq!(store.get_role(role.id).await.context("get role")?, role);
    assert_eq!(store.find_role_by_name("operators").await.context("find")?.map(|r| r.id), Some(role.id));
    let mut held = store.get_user(bob.id).await.context("bob")?;
    held.roles = vec![role.id];
    store.update_user(&held).await.context("give role")?;
    assert_eq!(store.get_user(bob.id).await.context("bob")?.roles, vec![role.id], "roles round-trip");
    assert_eq!(kind(store.delete_role(role.id).await), ErrorKind::Conflict, "role in use");
    let mut r2 = role.clone();
    r2.permissions.push("file.read".into());
    assert_eq!(store.update_role(&r2).await.context("update role")?.version, 1);
    assert_eq!(kind(store.update_role(&r2).await), ErrorKind::Conflict, "stale role version");
    assert_eq!(store.list_roles().await.context("roles")?.len(), 1);

    // Sessions.
    let session = Session {
        id: SessionId::new(),
        user_id: bob.id,
        refresh_hash: "h1".into(),
        created_at: now(),
        expires_at: now() + chrono::Duration::days(1),
        revoked: false,
    };
    store.create_session(&session).await.context("session")?;
    store.rotate_session(session.id, "h1", "h2").await.context("rotate")?;
    assert_eq!(kind(store.rotate_session(session.id, "h1", "h3").await), ErrorKind::Conflict, "replayed token");
    assert_eq!(store.get_session(session.id).await.context("get")?.refresh_hash, "h2");
    assert_eq!(store.revoke_user_sessions(bob.id).await.context("revoke all")?, 1);
    assert!(store.get_session(session.id).await.context("get")?.revoked);
    assert_eq!(kind(store.rotate_session(session.id, "h2", "h4").await), ErrorKind::Conflict, "revoked session");

    // Deleting a user removes their sessions.
    store.delete_user(bob.id).await.context("delete bob")?;
    assert_eq!(kind(store.get_session(session.id).await), ErrorKind::NotFound);
    assert_eq!(kind(store.delete_user(bob.id).await), ErrorKind::NotFound);
    store.delete_role(role.id).await.context("delete role once unused")?;
    Ok(())
}

/// [`crate::ports::NodeStore`] conformance.
pub async fn nodes(store: &dyn Store) -> crate::Result<()> {
    let loc = store.create_location(&location("eu-west")).await.context("location")?;
    assert_eq!(kind(store.create_location(&location("eu-west")).await), ErrorKind::Conflict);
    assert_eq!(store.get_location(loc.id).await.context("get")?, loc);
    assert_eq!(store.find_location(loc.number).await.context("by number")?, Some(loc.clone()));
    let n = store.create_node(&node("n1", loc.id)).await.context("node")?;
    assert_eq!(store.get_node(n.id).await.context("get node")?, n);
    assert_eq!(store.find_node(n.number).await.context("by number")?, Some(n.clone()));
    assert_eq!(store.find_node(n.number + 1000).await.context("unknown number")?, None);
    assert_eq!(kind(store.create_node(&node("n1", loc.id)).await), ErrorKind::Conflict, "node name");
    assert_eq!(kind(store.create_node(&node("n2", LocationId::new())).await), ErrorKind::NotFound, "missing location");
    assert_eq!(kind(store.delete_location(loc.id).await), ErrorKind::Conflict, "location in use");

    let mut enrolled = n.clone();
    enrolled.deployment_token_hash = Some("tok".into());
    enrolled.deployment_token_expires_at = Some(now());
    enrolled.credential_hash = Some("cred".into());
    enrolled.last_seen_at = Some(now());
    let stored = store.update_node(&enrolled).await.context("update node")?;
    assert_eq!(stored.version, 1);
    let back = store.get_node(n.id).await.context("get")?;
    assert_eq!(back.number, n.number, "an update keeps the number");
    assert_eq!(back.credential_hash.as_deref(), Some("cred"), "secrets are stored (hashed) and read back");
    assert_eq!(back.deployment_token_hash.as_deref(), Some("tok"));
    assert_eq!(kind(store.update_node(&enrolled).await), ErrorKind::Conflict, "stale node version");

    let mut l2 = loc.clone();
    l2.description = "Dublin".into();
    assert_eq!(store.update_location(&l2).await.context("update loc")?.description, "Dublin");
    assert_eq!(store.list_locations().await.context("list")?.len(), 1);
    assert_eq!(store.list_nodes(Page::default()).await.context("nodes")?.total, 1);
    store.delete_node(n.id).await.context("delete node")?;
    assert_eq!(kind(store.get_node(n.id).await), ErrorKind::NotFound);
    store.delete_location(loc.id).await.context("delete location")?;
    Ok(())
}

/// [`crate::ports::TemplateStore`] conformance.
pub async fn templates(store: &dyn Store) -> crate::Result<()> {
    let mut t = template("paper");
    t.env.insert("EULA".into(), "true".into());
    t.variables.push(crate::model::TemplateVariable {
        name: "VERSION".into(),
        label: "Game version".into(),
        description: "game version".into(),
        default: Some("1.21".into()),
        user_viewable: false,
        user_editable: false,
        rules: crate::model::VariableRules::parse("required|string|max:20"),
        sort: 3,
    });
    // Every field an egg brings must survive the store.
    t.group = "Minecraft".into();
    t.images = vec![crate::model::ImageChoice { name: "Java 21".into(), image: "yolks:java_21".into() }];
    t.startup_commands = vec![crate::model::StartupCommand { name: "Fast".into(), command: "./run.sh -f".into() }];
    t.startup_mode = crate::model::StartupMode::Entrypoint;
    t.file_denylist = vec!["*.jar".into()];
    t.features = vec!["eula".into()];
    t.egg = Some(crate::model::EggOrigin {
        uuid: "9ac39f3d-0c34-4d93-8174-c52ab9e6c57b".into(),
        format: "PLCN_v3".into(),
        author: "a@b.c".into(),
        update_url: Some("https://example.com/egg.json".into()),
        tags: vec!["minecraft".into()],
        icon: None,
    });
    t.config_files = vec![crate::model::ConfigFileEdit {
        path: "config.yml".into(),
        format: crate::model::ConfigFormat::Yaml,
        set: BTreeMap::from([(
            "servers.*.address".into(),
            crate::model::ConfigValue::IfValue(BTreeMap::from([(
                "127.0.0.1".into(),
                "{{config.docker.interface}}".into(),
            )])),
        )]),
    }];
    t.install = Some(crate::model::InstallScript {
        image: "debian".into(),
        entrypoint: "/bin/sh".into(),
        script: "echo hi".into(),
    });
    t.done_patterns.push(crate::model::DonePattern::Regex("Done \\(".into()));
    let t = store.create_template(&t).await.context("template")?;
    assert_eq!(store.get_template(t.id).await.context("get")?, t, "nested fields round-trip");
    assert_eq!(store.find_template(t.number).await.context("by number")?, Some(t.clone()));
    assert_eq!(kind(store.create_template(&template("paper")).await), ErrorKind::Conflict);
    let mut t2 = t.clone();
    t2.startup = "./other.sh".into();
    let updated = store.update_template(&t2).await.context("update")?;
    assert_eq!((updated.version, updated.number), (1, t.number));
    assert_eq!(kind(store.update_template(&t2).await), ErrorKind::Conflict);
    assert_eq!(store.list_templates(Page::default()).await.context("list")?.total, 1);
    store.delete_template(t.id).await.context("delete")?;
    assert_eq!(kind(store.delete_template(t.id).await), ErrorKind::NotFound);
    Ok(())
}

struct World {
    owner: User,
    other: User,
    node: Node,
    template: Template,
}

async fn world(store: &dyn Store, tag: &str) -> crate::Result<World> {
    let owner = user(&format!("owner_{tag}"));
    let other = user(&format!("other_{tag}"));
    store.create_user(&owner).await.context("owner")?;
    store.create_user(&other).await.context("other")?;
    let loc = location(&format!("loc-{tag}"));
    store.create_location(&loc).await.context("loc")?;
    let node = node(&format!("node-{tag}"), loc.id);
    store.create_node(&node).await.context("node")?;
    let template = template(&format!("tpl-{tag}"));
    store.create_template(&template).await.context("template")?;
    Ok(World { owner, other, node, template })
}

/// [`crate::ports::ServerStore`] conformance.
pub async fn servers(store: &dyn Store) -> crate::Result<()> {
    let w = world(store, "srv").await?;
    let mut s = server("alpha", w.owner.id, w.node.id, w.template.id, 25565);
    s.variables.insert("VERSION".into(), "1.21".into());
    s.crash_history = vec![now()];
    s.external_id = Some("whmcs-1".into());
    let s = store.create_server(&s).await.context("create server")?;
    assert_eq!(store.get_server(s.id).await.context("get")?, s, "server round-trips");

    // Allocation conflicts are refused and nothing is half-written.
    let clash = server("beta", w.owner.id, w.node.id, w.template.id, 25565);
    assert_eq!(kind(store.create_server(&clash).await), ErrorKind::Conflict, "same ip:port on one node");
    assert_eq!(kind(store.get_server(clash.id).await), ErrorKind::NotFound, "refused server not stored");
    let missing_owner = server("gamma", UserId::new(), w.node.id, w.template.id, 1);
    assert_eq!(kind(store.create_server(&missing_owner).await), ErrorKind::NotFound, "unknown owner");
    let missing_node = server("gamma", w.owner.id, NodeId::new(), w.template.id, 1);
    assert_eq!(kind(store.create_server(&missing_node).await), ErrorKind::NotFound, "unknown node");

    let beta = server("beta", w.owner.id, w.node.id, w.template.id, 25566);
    store.create_server(&beta).await.context("beta")?;

    // Lifecycle CAS: two transitions from the same version, one wins.
    let mut starting = s.clone();
    starting.state = ServerState::Starting;
    let mut suspended = s.clone();
    suspended.state = ServerState::Suspended;
    let won = store.update_server(&starting).await.context("first transition")?;
    assert_eq!(won.version, s.version + 1);
    assert_eq!(kind(store.update_server(&suspended).await), ErrorKind::Conflict, "second transition loses");
    assert_eq!(store.get_server(s.id).await.context("get")?.state, ServerState::Starting);

    // Moving onto a taken allocation by update is refused too.
    let mut b2 = store.get_server(beta.id).await.context("beta")?;
    b2.allocations[0].port = 25565;
    assert_eq!(kind(store.update_server(&b2).await), ErrorKind::Conflict, "update into a taken allocation");

    // Usage and filters.
    let usage = store.node_usage(w.node.id).await.context("usage")?;
    assert_eq!((usage.servers, usage.memory_mb), (2, 2 * Limits::default().memory_mb));
    let visible = store
        .list_servers(&ServerFilter { visible_to: Some(w.other.id), ..Default::default() }, Page::default())
        .await
        .context("list")?;
    assert_eq!(visible.total, 0, "a stranger sees nothing");

    // Access.
    let access = ServerAccess {
        server_id: s.id,
        user_id: w.other.id,
        permissions: vec![Permission::ServerRead, Permission::ConsoleRead],
        created_at: now(),
    };
    store.put_access(&access).await.context("grant")?;
    assert_eq!(store.get_access(s.id, w.other.id).await.context("get access")?, Some(access.clone()));
    let visible = store
        .list_servers(&ServerFilter { visible_to: Some(w.other.id), ..Default::default() }, Page::default())
        .await
        .context("list")?;
    assert_eq!(visible.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![s.id], "subuser sees the shared server");
    let mut more = access.clone();
    more.permissions.push(Permission::FileRead);
    store.put_access(&more).await.context("replace grant")?;
    assert_eq!(store.list_access(s.id).await.context("list access")?, vec![more]);
    let owned = store
        .list_servers(&ServerFilter { owner_id: Some(w.owner.id), ..Default::default() }, Page::new(1, 10))
        .await
        .context("page 2")?;
    assert_eq!((owned.items.len(), owned.total), (1, 2), "offset paging");
    for target in [s.id, beta.id] {
        let by_prefix = store
            .list_servers(&ServerFilter { id_prefix: Some(target.prefix()), ..Default::default() }, Page::default())
            .await
            .context("by prefix")?;
        assert_eq!(by_prefix.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![target], "identifier prefix");
    }
    let beyond = u32::from_be_bytes(s.id.prefix()).wrapping_add(1);
    let none = store
        .list_servers(&ServerFilter { id_prefix: Some(beyond.to_be_bytes()), ..Default::default() }, Page::default())
        .await
        .context("other prefix")?;
    assert!(none.items.iter().all(|x| x.id != s.id), "a neighbouring prefix is not a match");
    assert_eq!(kind(store.delete_user(w.owner.id).await), ErrorKind::Conflict, "owner of servers");
    assert_eq!(kind(store.delete_node(w.node.id).await), ErrorKind::Conflict, "node with servers");
    assert_eq!(kind(store.delete_template(w.template.id).await), ErrorKind::Conflict, "template in use");

    // Deleting the subuser removes their access; deleting the server removes everything.
    store.delete_access(s.id, w.other.id).await.context("revoke")?;
    assert_eq!(kind(store.delete_access(s.id, w.other.id).await), ErrorKind::NotFound);
    store.append_logs(&[log(s.id, 1, LogStream::Stdout)]).await.context("log")?;
    store.delete_server(s.id).await.context("delete")?;
    assert_eq!(kind(store.get_server(s.id).await), ErrorKind::NotFound);
    assert!(store.list_logs(s.id, &LogQuery::default()).await.context("logs")?.is_empty(), "logs cascade");
    let again = server("alpha2", w.owner.id, w.node.id, w.template.id, 25565);
    store.create_server(&again).await.context("a freed allocation is reusable")?;
    Ok(())
}

/// [`crate::ports::LogStore`] conformance, including a batch larger than SQLite's
/// 32 766-parameter limit.
pub async fn logs(store: &dyn Store) -> crate::Result<()> {
    let w = world(store, "logs").await?;
    let s = server("logger", w.owner.id, w.node.id, w.template.id, 30000);
    store.create_server(&s).await.context("server")?;
    let batch: Vec<ServerLog> =
        (1..=20_000).map(|i| log(s.id, i, if i % 10 == 0 { LogStream::Stderr } else { LogStream::Stdout })).collect();
    assert_eq!(store.append_logs(&batch).await.context("big batch")?, 20_000);
    assert_eq!(store.append_logs(&batch[..100]).await.context("resend")?, 0, "resent lines are skipped");
    let newest = store.list_logs(s.id, &LogQuery { limit: Some(3), ..Default::default() }).await.context("list")?;
    assert_eq!(newest.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![20_000, 19_999, 19_998], "newest first");
    assert_eq!(newest[0], batch[19_999], "line round-trips");
    let errs = store
        .list_logs(
            s.id,
            &LogQuery { stream: Some(LogStream::Stderr), before: Some(100), limit: Some(500), ..Default::default() },
        )
        .await
        .context("filter")?;
    assert_eq!(errs.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![90, 80, 70, 60, 50, 40, 30, 20, 10]);
    let resumed =
        store.list_logs(s.id, &LogQuery { after: Some(19_995), ..Default::default() }).await.context("resume")?;
    assert_eq!(resumed.len(), 5);
    assert_eq!(kind(store.append_logs(&[log(ServerId::new(), 1, LogStream::System)]).await), ErrorKind::NotFound);
    let mut old = log(s.id, 30_000, LogStream::System);
    old.at = now() - chrono::Duration::days(40);
    store.append_logs(&[old]).await.context("old line")?;
    assert_eq!(store.prune_logs(now() - chrono::Duration::days(30)).await.context("prune")?, 1);
    Ok(())
}

/// [`crate::ports::AuditStore`] conformance.
pub async fn audit(store: &dyn Store) -> crate::Result<()> {
    let u = UserId::new();
    let t0 = now() - chrono::Duration::hours(2);
    let entries = [
        audit_entry(Some(u), "server.start", t0),
        audit_entry(Some(u), "server.stop", t0 + chrono::Duration::hours(1)),
        audit_entry(None, "auth.login", t0 + chrono::Duration::minutes(90)),
    ];
    for e in &entries {
        store.append_audit(e).await.context("append")?;
    }
    let all = store.query_audit(&AuditQuery::default(), Page::default()).await.context("all")?;
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0], entries[2], "newest first, round-trips");
    let by_user = store
        .query_audit(&AuditQuery { user_id: Some(u), ..Default::default() }, Page::default())
        .await
        .context("user")?;
    assert_eq!(by_user.total, 2);
    let prefix = store
        .query_audit(&AuditQuery { action: Some("server.".into()), ..Default::default() }, Page::default())
        .await
        .context("prefix")?;
    assert_eq!(prefix.total, 2);
    let exact = store
        .query_audit(&AuditQuery { action: Some("server.stop".into()), ..Default::default() }, Page::default())
        .await
        .context("exact")?;
    assert_eq!(exact.items.iter().map(|e| e.id).collect::<Vec<_>>(), vec![entries[1].id]);
    let window = AuditQuery {
        from: Some(t0 + chrono::Duration::minutes(30)),
        to: Some(t0 + chrono::Duration::minutes(80)),
        ..Default::default()
    };
    assert_eq!(store.query_audit(&window, Page::default()).await.context("range")?.total, 1);
    let target = AuditQuery { target_type: Some("server".into()), target_id: Some("t1".into()), ..Default::default() };
    assert_eq!(store.query_audit(&target, Page::new(2, 10)).await.context("target")?.items.len(), 1);
    Ok(())
}
