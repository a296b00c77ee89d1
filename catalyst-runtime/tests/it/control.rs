//! The control-plane facade end to end on real stores, with an in-process node over the fake
//! container runtime.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::ErrorKind;
use catalyst_core::clock::SystemClock;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{
    Allocation, AuditQuery, DonePattern, InstallScript, Limits, LogQuery, LogStream, Page, StopAction,
    TemplateVariable, VariableRules,
};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::ports::{ExitStatus, Store};
use catalyst_core::restart::{RestartMode, RestartPolicy};
use catalyst_core::testing::{FakeRuntime, FakeRuntimeCall};
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::{
    GrantAccess, LoginInput, NewLocation, NewNode, NewRole, NewServer, NewTemplate, RegisterInput, ServerPatch,
    UserPatch,
};
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing::TestWorld;

use crate::support;

pub struct World {
    pub catalyst: Catalyst,
    pub admin: Principal,
    pub runtime: Arc<FakeRuntime>,
    pub node: catalyst_core::model::Node,
    pub template: catalyst_core::model::Template,
    _dir: tempfile::TempDir,
}

fn kind<T: std::fmt::Debug>(r: catalyst_core::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

/// A signed-in administrator, a small node (4096 MB, for the capacity checks) over the fake
/// runtime with a short stop grace, and the `game` template.
pub async fn world(store: Arc<dyn Store>) -> World {
    let TestWorld { catalyst, hub: link, admin, dir, .. } = TestWorld::on(store).with_admin().build().await;
    let loc = catalyst
        .create_location(&admin, NewLocation { name: "loc".into(), description: String::new() })
        .await
        .expect("location");
    let node = catalyst
        .create_node(
            &admin,
            NewNode {
                name: "node".into(),
                location_id: loc.id,
                fqdn: "node.example.test".into(),
                memory_mb: 4096,
                disk_mb: 50_000,
                overallocate_percent: 0,
            },
        )
        .await
        .expect("node");
    let runtime = Arc::new(FakeRuntime::new());
    let mut config = DaemonConfig::new(dir.path());
    config.stop_grace = Duration::from_millis(200);
    link.add_node(NodeDaemon::new(node.id, runtime.clone(), Arc::new(SystemClock), config));
    let template = catalyst.create_template(&admin, template("game")).await.expect("template");
    World { catalyst, admin, runtime, node, template, _dir: dir }
}

fn template(name: &str) -> NewTemplate {
    NewTemplate {
        name: name.into(),
        description: String::new(),
        image: "catalyst/game:1".into(),
        startup: "./game --port {{SERVER_PORT}} --motd {{MOTD}}".into(),
        env: Default::default(),
        variables: vec![
            TemplateVariable {
                name: "MOTD".into(),
                default: Some("hello".into()),
                rules: VariableRules::parse("nullable|string|max:20"),
                ..Default::default()
            },
            TemplateVariable {
                name: "MAX_PLAYERS".into(),
                default: Some("10".into()),
                user_editable: false,
                rules: VariableRules::parse("required|integer|between:1,100"),
                ..Default::default()
            },
        ],
        install: Some(InstallScript {
            image: "catalyst/installer".into(),
            entrypoint: "/bin/sh".into(),
            script: "echo ok".into(),
        }),
        stop: StopAction::Command("stop".into()),
        done_patterns: vec![DonePattern::Regex("^Done".into())],
        ..Default::default()
    }
}

impl World {
    pub async fn user(&self, name: &str) -> (catalyst_core::model::User, Principal) {
        let user = self
            .catalyst
            .register(RegisterInput {
                email: format!("{name}@example.test"),
                username: name.into(),
                password: "password-123".into(),
            })
            .await
            .expect("register");
        let login = self
            .catalyst
            .login(LoginInput { email: format!("{name}@example.test"), password: "password-123".into() }, None)
            .await
            .expect("login");
        let p = self.catalyst.authenticate(&login.access_token, None).await.expect("auth");
        (user, p)
    }

    pub fn new_server(&self, owner: catalyst_core::id::UserId, port: u16) -> NewServer {
        NewServer {
            name: format!("srv-{port}"),
            description: String::new(),
            owner_id: owner,
            node_id: Some(self.node.id),
            deploy: None,
            external_id: None,
            template_id: self.template.id,
            variables: Default::default(),
            limits: Limits { memory_mb: 512, disk_mb: 1024, ..Limits::default() },
            allocations: vec![Allocation { ip: "0.0.0.0".into(), port, primary: false }],
            restart_policy: RestartPolicy {
                mode: RestartMode::OnFailure,
                max_restarts: 2,
                window_secs: 600,
                backoff_initial_ms: 10,
                backoff_max_ms: 40,
                restart_on_oom: false,
            },
            image: None,
            startup_command: None,
        }
    }

    /// Poll until `check` holds on the stored server (node events are applied asynchronously).
    pub async fn until(
        &self,
        id: catalyst_core::id::ServerId,
        what: &str,
        check: impl Fn(&catalyst_core::model::Server) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.catalyst.get_server(&self.admin, id).await.expect("get server");
            if check(&s) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; server is {} (crashes {})",
                s.state,
                s.crash_count
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn until_state(&self, id: catalyst_core::id::ServerId, state: ServerState) {
        self.until(id, state.as_str(), |s| s.state == state).await;
    }
}

async fn lifecycle(store: Arc<dyn Store>) {
    let w = world(store).await;
    let (owner, owner_p) = w.user("owner").await;
    let s = w.catalyst.create_server(&w.admin, w.new_server(owner.id, 25565)).await.expect("create");
    assert_eq!(s.state, ServerState::Installing);
    assert_eq!(s.variables.get("MOTD").map(String::as_str), Some("hello"), "defaults filled in");
    w.until_state(s.id, ServerState::Stopped).await;

    // The owner drives it; the table refuses what makes no sense.
    assert_eq!(kind(w.catalyst.stop_server(&owner_p, s.id).await), ErrorKind::InvalidTransition);
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    let spec = w.runtime.spec(&s.id.to_string()).expect("container created");
    // Values are referenced from the environment, never spliced into the shell text.
    assert_eq!(spec.command[2], r#"./game --port "${SERVER_PORT}" --motd "${MOTD}""#, "startup rendered");
    assert_eq!(spec.env.get("MOTD").map(String::as_str), Some("hello"));
    assert_eq!(spec.env.get("SERVER_PORT").map(String::as_str), Some("25565"));
    assert_eq!(spec.env.get("SERVER_MEMORY").map(String::as_str), Some("512"));
    assert_eq!(kind(w.catalyst.start_server(&owner_p, s.id).await), ErrorKind::InvalidTransition);

    w.catalyst.send_command(&owner_p, s.id, "say hi").await.expect("command");
    assert_eq!(kind(w.catalyst.send_command(&owner_p, s.id, "a\nb").await), ErrorKind::InvalidInput);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let logs = w.catalyst.server_logs(&owner_p, s.id, &LogQuery::default()).await.expect("logs");
        if logs.iter().any(|l| l.line == "> say hi" && l.stream == LogStream::Stdout) {
            let seqs: Vec<i64> = logs.iter().map(|l| l.seq).collect();
            assert!(seqs.windows(2).all(|p| p[0] > p[1]), "newest first, strictly ordered: {seqs:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "echo never stored: {logs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Restart = stop then start again, through the follow-up.
    // The stored row follows node events, so wait for the second start, not just `running`.
    w.catalyst.restart_server(&owner_p, s.id).await.expect("restart");
    let starts = || w.runtime.calls().iter().filter(|c| **c == FakeRuntimeCall::Start(s.id.to_string())).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while starts() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "restart never started the process again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.until_state(s.id, ServerState::Running).await;
    assert_eq!(starts(), 2, "restart started the process exactly once more");

    // Crash → restart with back-off → give up after the window's maximum.
    for n in 1..=2u32 {
        w.runtime.crash(&s.id.to_string(), ExitStatus { code: Some(1), oom: false }).expect("crash");
        w.until(s.id, "restart after crash", |x| x.crash_count == n && x.state == ServerState::Running).await;
    }
    w.runtime.crash(&s.id.to_string(), ExitStatus { code: Some(1), oom: false }).expect("crash");
    w.until(s.id, "give up", |x| x.crash_count == 3 && x.state == ServerState::Crashed).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.catalyst.get_server(&owner_p, s.id).await.expect("get").state, ServerState::Crashed, "stays crashed");
    let reset = w.catalyst.reset_crash_count(&owner_p, s.id).await.expect("reset");
    assert_eq!((reset.crash_count, reset.crash_history.len()), (0, 0));

    // OOM is reported and not restarted by default.
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    w.runtime.crash(&s.id.to_string(), ExitStatus { code: None, oom: true }).expect("oom");
    w.until(s.id, "oom crash", |x| x.crash_count == 1 && x.state == ServerState::Crashed).await;

    // Suspension stops a running server and refuses starts until lifted; owners cannot do it.
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    assert_eq!(kind(w.catalyst.suspend_server(&owner_p, s.id).await), ErrorKind::PermissionDenied);
    w.catalyst.suspend_server(&w.admin, s.id).await.expect("suspend");
    w.until_state(s.id, ServerState::Suspended).await;
    assert!(w.catalyst.get_server(&w.admin, s.id).await.expect("get").suspended());
    assert_eq!(kind(w.catalyst.start_server(&owner_p, s.id).await), ErrorKind::InvalidTransition);
    w.catalyst.unsuspend_server(&w.admin, s.id).await.expect("unsuspend");
    w.until_state(s.id, ServerState::Stopped).await;

    // A graceful stop writes the template's stop command; kill always gets through.
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    w.catalyst.stop_server(&owner_p, s.id).await.expect("stop");
    w.until_state(s.id, ServerState::Stopped).await;
    assert!(w.runtime.calls().contains(&FakeRuntimeCall::Stdin(s.id.to_string(), "stop".into())));
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    w.catalyst.kill_server(&owner_p, s.id).await.expect("kill");
    w.until_state(s.id, ServerState::Stopped).await;
    assert!(w.runtime.calls().contains(&FakeRuntimeCall::Signal(s.id.to_string(), catalyst_core::ports::Signal::Kill)));

    // Deleting a running server kills it and removes everything.
    w.catalyst.start_server(&owner_p, s.id).await.expect("start");
    w.until_state(s.id, ServerState::Running).await;
    assert_eq!(
        kind(w.catalyst.delete_server(&owner_p, s.id).await),
        ErrorKind::PermissionDenied,
        "owners cannot delete"
    );
    w.catalyst.delete_server(&w.admin, s.id).await.expect("delete");
    assert_eq!(kind(w.catalyst.get_server(&w.admin, s.id).await), ErrorKind::NotFound);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !w.runtime.calls().contains(&FakeRuntimeCall::Remove(s.id.to_string())) {
        assert!(tokio::time::Instant::now() < deadline, "container never removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Every mutation is audited.
    let audit = w
        .catalyst
        .store()
        .query_audit(&AuditQuery { action: Some("server.".into()), ..Default::default() }, Page::new(0, 500))
        .await
        .expect("audit");
    for action in [
        "server.create",
        "server.start",
        "server.stop",
        "server.restart",
        "server.kill",
        "server.suspend",
        "server.delete",
        "server.command",
    ] {
        assert!(audit.items.iter().any(|e| e.action == action), "no audit entry for {action}");
    }
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    let (store, _dir) = support::sqlite().await;
    lifecycle(Arc::new(store)).await;
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    let Some(pg) = support::postgres().await else { return };
    lifecycle(Arc::new(pg.store.clone())).await;
    pg.cleanup().await;
}

#[tokio::test]
async fn sessions_tokens_and_revocation() {
    let (store, _dir) = support::sqlite().await;
    let w = world(Arc::new(store)).await;
    let c = &w.catalyst;
    let reg = |email: &str, user: &str, pw: &str| RegisterInput {
        email: email.into(),
        username: user.into(),
        password: pw.into(),
    };
    assert_eq!(kind(c.register(reg("not-an-email", "bob", "password-123")).await), ErrorKind::InvalidInput);
    assert_eq!(kind(c.register(reg("bob@example.test", "bob", "short")).await), ErrorKind::InvalidInput);
    c.register(reg("bob@example.test", "bob", "password-123")).await.expect("register");
    // A taken e-mail answers like a new one (registration tells nobody which addresses exist),
    // stores nothing and takes nothing over; a taken username stays a conflict.
    let users_before = c.list_users(&w.admin, Page::default()).await.expect("users").total;
    let twin = c.register(reg("BOB@example.test", "bob2", "other-password-1")).await.expect("same answer");
    assert_eq!(twin.email, "bob@example.test");
    assert_eq!(c.list_users(&w.admin, Page::default()).await.expect("users").total, users_before);
    let taken =
        c.login(LoginInput { email: "bob@example.test".into(), password: "other-password-1".into() }, None).await;
    assert_eq!(kind(taken), ErrorKind::Unauthenticated);
    assert_eq!(kind(c.register(reg("robert@example.test", "bob", "password-123")).await), ErrorKind::Conflict);
    assert_eq!(
        kind(c.create_user(&w.admin, reg("bob@example.test", "bob3", "password-123").into()).await),
        ErrorKind::Conflict
    );

    let bad = c.login(LoginInput { email: "bob@example.test".into(), password: "wrong-password".into() }, None).await;
    assert_eq!(kind(bad), ErrorKind::Unauthenticated);
    let nobody =
        c.login(LoginInput { email: "nobody@example.test".into(), password: "password-123".into() }, None).await;
    assert_eq!(kind(nobody), ErrorKind::Unauthenticated);
    let login = c
        .login(LoginInput { email: "Bob@Example.test".into(), password: "password-123".into() }, None)
        .await
        .expect("login");
    let me = c.me(&c.authenticate(&login.access_token, None).await.expect("auth")).await.expect("me");
    assert_eq!(me.user.email, "bob@example.test");
    assert!(me.permissions.is_empty());
    assert_eq!(kind(c.authenticate("garbage", None).await), ErrorKind::Unauthenticated);

    // Refresh rotates; replaying the old refresh token ends the whole session.
    let second = c.refresh(&login.refresh_token).await.expect("refresh");
    assert_ne!(second.refresh_token, login.refresh_token);
    c.authenticate(&second.access_token, None).await.expect("new access token works");
    assert_eq!(kind(c.refresh(&login.refresh_token).await), ErrorKind::Unauthenticated, "replayed refresh token");
    assert_eq!(
        kind(c.authenticate(&second.access_token, None).await),
        ErrorKind::Unauthenticated,
        "session revoked by reuse"
    );
    assert_eq!(kind(c.refresh(&second.refresh_token).await), ErrorKind::Unauthenticated);

    // Logout ends the session at once.
    let login = c
        .login(LoginInput { email: "bob@example.test".into(), password: "password-123".into() }, None)
        .await
        .expect("login");
    let p = c.authenticate(&login.access_token, None).await.expect("auth");
    c.logout(&p).await.expect("logout");
    assert_eq!(kind(c.authenticate(&login.access_token, None).await), ErrorKind::Unauthenticated);

    // A password change ends every session.
    let login = c
        .login(LoginInput { email: "bob@example.test".into(), password: "password-123".into() }, None)
        .await
        .expect("login");
    let p = c.authenticate(&login.access_token, None).await.expect("auth");
    assert_eq!(kind(c.change_password(&p, "wrong".into(), "new-password-1".into()).await), ErrorKind::PermissionDenied);
    c.change_password(&p, "password-123".into(), "new-password-1".into()).await.expect("change");
    assert_eq!(kind(c.authenticate(&login.access_token, None).await), ErrorKind::Unauthenticated);

    // Failed logins are audited without the password.
    let failed = c
        .store()
        .query_audit(&AuditQuery { action: Some("auth.login".into()), ..Default::default() }, Page::default())
        .await
        .expect("audit");
    assert!(failed.items.iter().any(|e| !e.success));
    assert!(!serde_json::to_string(&failed.items).unwrap_or_default().contains("wrong-password"));
}

#[tokio::test]
async fn rbac_and_object_level_authorization() {
    let (store, _dir) = support::sqlite().await;
    let w = world(Arc::new(store)).await;
    let c = &w.catalyst;
    let (alice, alice_p) = w.user("alice").await;
    let (bob, bob_p) = w.user("bob").await;
    let (_carol, carol_p) = w.user("carol").await;
    let a = c.create_server(&w.admin, w.new_server(alice.id, 30001)).await.expect("alice's server");
    w.until_state(a.id, ServerState::Stopped).await;

    // Plain users hold nothing global.
    assert_eq!(
        kind(c.create_location(&alice_p, NewLocation { name: "x".into(), description: String::new() }).await),
        ErrorKind::PermissionDenied
    );
    assert_eq!(kind(c.create_server(&alice_p, w.new_server(alice.id, 30002)).await), ErrorKind::PermissionDenied);
    assert_eq!(kind(c.list_users(&alice_p, Page::default()).await), ErrorKind::PermissionDenied);

    // Someone else's server looks exactly like a missing one.
    assert_eq!(kind(c.get_server(&bob_p, a.id).await), ErrorKind::NotFound);
    assert_eq!(kind(c.start_server(&bob_p, a.id).await), ErrorKind::NotFound);
    assert_eq!(kind(c.server_logs(&bob_p, a.id, &LogQuery::default()).await), ErrorKind::NotFound);
    assert_eq!(c.list_servers(&bob_p, Page::default()).await.expect("list").total, 0);
    assert_eq!(c.list_servers(&alice_p, Page::default()).await.expect("list").total, 1);

    // A subuser gets exactly what was granted, never more than the granter holds.
    let grant = GrantAccess { user_id: bob.id, permissions: vec![Permission::ServerRead, Permission::ConsoleRead] };
    c.grant_access(&alice_p, a.id, grant).await.expect("grant");
    c.get_server(&bob_p, a.id).await.expect("bob sees it now");
    assert_eq!(kind(c.start_server(&bob_p, a.id).await), ErrorKind::PermissionDenied, "visible but not allowed");
    let escalate = GrantAccess { user_id: bob.id, permissions: vec![Permission::ServerTransfer] };
    assert_eq!(kind(c.grant_access(&alice_p, a.id, escalate).await), ErrorKind::InvalidInput);
    assert_eq!(
        kind(
            c.grant_access(&bob_p, a.id, GrantAccess { user_id: bob.id, permissions: vec![Permission::ServerStart] })
                .await
        ),
        ErrorKind::PermissionDenied
    );
    c.revoke_access(&alice_p, a.id, bob.id).await.expect("revoke");
    assert_eq!(kind(c.get_server(&bob_p, a.id).await), ErrorKind::NotFound);

    // Owners change names and editable variables, not limits or locked variables.
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("MOTD".to_string(), "welcome".to_string());
    let patched = c
        .update_server(&alice_p, a.id, ServerPatch { variables: Some(vars), ..Default::default() })
        .await
        .expect("patch");
    assert_eq!(patched.variables.get("MOTD").map(String::as_str), Some("welcome"));
    let mut locked = std::collections::BTreeMap::new();
    locked.insert("MAX_PLAYERS".to_string(), "50".to_string());
    assert_eq!(
        kind(
            c.update_server(&alice_p, a.id, ServerPatch { variables: Some(locked.clone()), ..Default::default() })
                .await
        ),
        ErrorKind::PermissionDenied
    );
    let limits = Limits { memory_mb: 1024, disk_mb: 1024, ..Limits::default() };
    assert_eq!(
        kind(c.update_server(&alice_p, a.id, ServerPatch { limits: Some(limits), ..Default::default() }).await),
        ErrorKind::PermissionDenied
    );
    c.update_server(
        &w.admin,
        a.id,
        ServerPatch { limits: Some(limits), variables: Some(locked), ..Default::default() },
    )
    .await
    .expect("admin may");

    // Roles grant global permissions; changing roles ends the user's sessions.
    let ops = c
        .create_role(
            &w.admin,
            NewRole { name: "ops".into(), description: String::new(), permissions: vec!["server.*".into()] },
        )
        .await
        .expect("role");
    assert_eq!(
        kind(
            c.create_role(
                &w.admin,
                NewRole { name: "bad".into(), description: String::new(), permissions: vec!["server.fly".into()] }
            )
            .await
        ),
        ErrorKind::InvalidInput
    );
    let carol_id = carol_p.user_id().expect("user");
    c.update_user(&w.admin, carol_id, UserPatch { roles: Some(vec![ops.id]), ..Default::default() })
        .await
        .expect("give role");
    assert_eq!(
        kind(c.me(&carol_p).await.map(|_| ()).and(Err::<(), _>(catalyst_core::Error::unauthenticated("")))),
        ErrorKind::Unauthenticated
    );
    let login = c
        .login(LoginInput { email: "carol@example.test".into(), password: "password-123".into() }, None)
        .await
        .expect("login");
    let carol_p = c.authenticate(&login.access_token, None).await.expect("auth");
    c.get_server(&carol_p, a.id).await.expect("operators see every server");
    assert_eq!(c.list_servers(&carol_p, Page::default()).await.expect("list").total, 1);

    // Users owning servers cannot be deleted; admins cannot delete themselves.
    assert_eq!(kind(c.delete_user(&w.admin, alice.id).await), ErrorKind::Conflict);
    assert_eq!(kind(c.delete_user(&w.admin, w.admin.user_id().expect("id")).await), ErrorKind::Conflict);
}

#[tokio::test]
async fn validation_capacity_and_conflicts() {
    let (store, _dir) = support::sqlite().await;
    let w = world(Arc::new(store)).await;
    let c = &w.catalyst;
    let (alice, _) = w.user("alice").await;

    let mut bad_var = w.new_server(alice.id, 30010);
    bad_var.variables.insert("MAX_PLAYERS".into(), "1000".into());
    let e = c.create_server(&w.admin, bad_var).await.expect_err("max");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("MAX_PLAYERS") && e.message().contains("rule between"), "{}", e.message());
    let mut unknown_var = w.new_server(alice.id, 30010);
    unknown_var.variables.insert("NOPE".into(), "1".into());
    assert_eq!(kind(c.create_server(&w.admin, unknown_var).await), ErrorKind::InvalidInput);
    let mut two_primary = w.new_server(alice.id, 30010);
    two_primary.allocations = vec![
        Allocation { ip: "0.0.0.0".into(), port: 1, primary: true },
        Allocation { ip: "0.0.0.0".into(), port: 2, primary: true },
    ];
    assert_eq!(kind(c.create_server(&w.admin, two_primary).await), ErrorKind::InvalidInput);
    let mut bad_ip = w.new_server(alice.id, 30010);
    bad_ip.allocations[0].ip = "999.1.1.1".into();
    assert_eq!(kind(c.create_server(&w.admin, bad_ip).await), ErrorKind::InvalidInput);
    let mut tiny = w.new_server(alice.id, 30010);
    tiny.limits.memory_mb = 1;
    assert_eq!(kind(c.create_server(&w.admin, tiny).await), ErrorKind::InvalidInput);

    let first = c.create_server(&w.admin, w.new_server(alice.id, 30010)).await.expect("first");
    assert_eq!(kind(c.create_server(&w.admin, w.new_server(alice.id, 30010)).await), ErrorKind::Conflict, "port taken");
    let mut huge = w.new_server(alice.id, 30011);
    huge.limits.memory_mb = 4000;
    assert_eq!(kind(c.create_server(&w.admin, huge).await), ErrorKind::QuotaExceeded, "node memory");
    let mut other_node = w.new_server(alice.id, 30012);
    other_node.node_id = Some(catalyst_core::id::NodeId::new());
    assert_eq!(kind(c.create_server(&w.admin, other_node).await), ErrorKind::NotFound);
    assert_eq!(kind(c.get_server(&w.admin, catalyst_core::id::ServerId::new()).await), ErrorKind::NotFound);

    // Templates: unknown placeholders and bad regexes are refused with the name.
    let mut t = template("broken");
    t.startup = "./run {{UNDECLARED}}".into();
    let e = c.create_template(&w.admin, t).await.expect_err("placeholder");
    assert!(e.message().contains("UNDECLARED"), "{}", e.message());
    let mut t = template("broken2");
    t.done_patterns = vec![DonePattern::Regex("(".into())];
    assert_eq!(kind(c.create_template(&w.admin, t).await), ErrorKind::InvalidInput);
    assert_eq!(kind(c.create_template(&w.admin, template("game")).await), ErrorKind::Conflict);
    assert_eq!(kind(c.delete_template(&w.admin, w.template.id).await), ErrorKind::Conflict, "in use");
    assert_eq!(kind(c.delete_node(&w.admin, w.node.id).await), ErrorKind::Conflict, "servers on it");
    w.until_state(first.id, ServerState::Stopped).await;
}

#[tokio::test]
async fn offline_nodes_and_enrollment() {
    let (store, _dir) = support::sqlite().await;
    let w = world(Arc::new(store)).await;
    let c = &w.catalyst;
    let (alice, _) = w.user("alice").await;
    let loc = c.list_locations(&w.admin).await.expect("locations")[0].id;
    let away = c
        .create_node(
            &w.admin,
            NewNode {
                name: "away".into(),
                location_id: loc,
                fqdn: "away.example.test".into(),
                memory_mb: 4096,
                disk_mb: 10_000,
                overallocate_percent: 0,
            },
        )
        .await
        .expect("node");
    assert!(!c.node_online(away.id));
    let mut input = w.new_server(alice.id, 30020);
    input.node_id = Some(away.id);
    let s = c.create_server(&w.admin, input).await.expect("created even though the node is away");
    assert_eq!(s.state, ServerState::InstallFailed, "install could not be dispatched");
    assert_eq!(kind(c.reinstall_server(&w.admin, s.id).await), ErrorKind::Unavailable);
    // Billing must be able to suspend whatever the node does.
    let suspended = c.suspend_server(&w.admin, s.id).await.expect("suspend offline");
    assert_eq!(suspended.state, ServerState::Suspended);

    // Deployment tokens work once, and only their hash is stored.
    let token = c.create_deployment_token(&w.admin, away.id).await.expect("token");
    let stored = c.get_node(&w.admin, away.id).await.expect("node");
    assert_ne!(stored.deployment_token_hash.as_deref(), Some(token.token.as_str()));
    assert_eq!(kind(c.enroll_node(away.id, "wrong").await), ErrorKind::Unauthenticated);
    let cred = c.enroll_node(away.id, &token.token).await.expect("enroll");
    assert_eq!(kind(c.enroll_node(away.id, &token.token).await), ErrorKind::Unauthenticated, "used once");
    c.authenticate_node(away.id, &cred.token).await.expect("credential");
    assert_eq!(kind(c.authenticate_node(away.id, "nope").await), ErrorKind::Unauthenticated);
    assert!(
        !serde_json::to_string(&stored).unwrap_or_default().contains("deployment_token_hash"),
        "hashes are not serialized"
    );
}
