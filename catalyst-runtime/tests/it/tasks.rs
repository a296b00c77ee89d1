//! Scheduled tasks under a manual clock (no sleeping for the schedule): firing at the cron
//! time, missed firings across a restart per catch-up policy, exactly-once firing with two
//! control planes on one PostgreSQL, and the creator's permission checked when a task fires.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{CatchUp, TaskAction};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::ports::Store;
use catalyst_core::testing::{FakeRuntime, FakeRuntimeCall, ManualClock};
use catalyst_core::{ErrorKind, model::Timestamp};
use catalyst_runtime::control::{GrantAccess, NewTask, RegisterInput, TaskPatch};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::NodeDaemon;
use catalyst_runtime::testing::{self, TestWorld};
use catalyst_runtime::{Catalyst, CatalystBuilder};

use crate::support;

/// 2030-01-01 11:59:30 UTC.
pub fn start() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2030-01-01T11:59:30Z").expect("time").to_utc()
}

/// The settings of every control plane here: the scheduler is left to the test, webhooks are
/// quick and may reach loopback.
fn settings(builder: CatalystBuilder) -> CatalystBuilder {
    builder.scheduler(None).webhooks(catalyst_runtime::webhook::WebhookPolicy {
        allow_private: true,
        attempts: 2,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
}

/// Another control plane on `store` under `clock` (a restart, or a second replica), with its
/// own hub reaching `daemon`.
pub async fn control_plane(store: Arc<dyn Store>, clock: Arc<ManualClock>, daemon: &NodeDaemon) -> Catalyst {
    let hub = NodeHub::new();
    hub.add_node(daemon.clone());
    settings(testing::control_plane(store, &hub).clock(clock)).build().await.expect("build")
}

pub struct Setup {
    pub catalyst: Catalyst,
    pub clock: Arc<ManualClock>,
    pub runtime: Arc<FakeRuntime>,
    pub daemon: NodeDaemon,
    pub owner: Principal,
    pub server: ServerId,
    _dir: tempfile::TempDir,
}

/// A running server owned by a customer, on a node with the fake runtime.
pub async fn setup(store: Arc<dyn Store>) -> Setup {
    let clock = Arc::new(ManualClock::new(start()));
    let runtime = Arc::new(FakeRuntime::new());
    let w = TestWorld::on(store)
        .with_clock(clock.clone())
        .configure(settings)
        .with_runtime(runtime.clone())
        .with_server()
        .build()
        .await;
    w.catalyst.start_server(w.owner(), w.server()).await.expect("start");
    w.wait_for_state(w.server(), ServerState::Running).await;
    let (daemon, owner, server) = (w.daemon().clone(), w.owner().clone(), w.server());
    let TestWorld { catalyst, dir, .. } = w;
    Setup { catalyst, clock, runtime, daemon, owner, server, _dir: dir }
}

/// Console commands the fake runtime received, in order.
fn commands(runtime: &FakeRuntime) -> Vec<String> {
    runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            FakeRuntimeCall::Stdin(_, line) => Some(line.trim_end().to_string()),
            _ => None,
        })
        .collect()
}

fn every_minute(server: ServerId, line: &str, catch_up: CatchUp) -> NewTask {
    NewTask {
        server_id: server,
        name: line.into(),
        cron: "0 * * * * *".into(),
        timezone: "UTC".into(),
        action: TaskAction::Command(line.into()),
        enabled: true,
        catch_up,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_fire_at_their_time_and_catch_up_per_policy() {
    let (store, _db) = support::sqlite().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let s = setup(store.clone()).await;
    let skip = s.catalyst.create_task(&s.owner, every_minute(s.server, "say skip", CatchUp::Skip)).await.expect("task");
    let once =
        s.catalyst.create_task(&s.owner, every_minute(s.server, "say once", CatchUp::RunOnce)).await.expect("task");
    let noon = start() + chrono::Duration::seconds(30);
    assert_eq!(skip.next_run_at, Some(noon), "the next minute");

    // Not yet; then at 12:00:00 both fire, once each.
    assert_eq!(s.catalyst.run_due_tasks().await.expect("run"), 0);
    s.clock.set(noon);
    assert_eq!(s.catalyst.run_due_tasks().await.expect("run"), 2);
    assert_eq!(s.catalyst.run_due_tasks().await.expect("run"), 0, "a firing runs once");
    let fired = s.catalyst.get_task(&s.owner, skip.id).await.expect("task");
    assert_eq!((fired.run_count, fired.last_result.as_deref()), (1, Some("ok")));
    assert_eq!(fired.next_run_at, Some(noon + chrono::Duration::minutes(1)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while commands(&s.runtime).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "commands never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The control plane is down for an hour: a new one on the same store catches up once for
    // the run-once task and skips for the other.
    drop(s.catalyst);
    s.clock.set(noon + chrono::Duration::minutes(61) + chrono::Duration::seconds(5));
    let restarted = control_plane(store, s.clock.clone(), &s.daemon).await;
    assert_eq!(restarted.run_due_tasks().await.expect("run"), 1, "only the run-once task catches up");
    let skipped = restarted.get_task(&s.owner, skip.id).await.expect("task");
    assert_eq!(skipped.run_count, 1, "skipped, not run");
    assert!(skipped.last_result.as_deref().is_some_and(|r| r.contains("missed")), "{skipped:?}");
    let caught = restarted.get_task(&s.owner, once.id).await.expect("task");
    assert_eq!(caught.run_count, 2, "one catch-up run for 61 missed firings");
    let next = catalyst_core::clock::Clock::now(s.clock.as_ref()) + chrono::Duration::seconds(55);
    assert_eq!(caught.next_run_at, Some(next), "back on schedule");
    assert_eq!(restarted.run_due_tasks().await.expect("run"), 0);

    // Disabled tasks never fire; execute-now runs outside the schedule.
    restarted
        .update_task(&s.owner, skip.id, TaskPatch { enabled: Some(false), ..Default::default() })
        .await
        .expect("disable");
    s.clock.set(next);
    assert_eq!(restarted.run_due_tasks().await.expect("run"), 1);
    let manual = restarted.execute_task(&s.owner, skip.id).await.expect("execute");
    assert_eq!(manual.run_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_runs_once_across_two_control_planes_on_postgres() {
    let Some(pg) = support::postgres().await else { return };
    let first: Arc<dyn Store> = Arc::new(pg.store.clone());
    let s = setup(first).await;
    let second = control_plane(Arc::new(pg.store.clone()), s.clock.clone(), &s.daemon).await;
    for i in 0..5 {
        let task = every_minute(s.server, &format!("say tick {i}"), CatchUp::Skip);
        s.catalyst.create_task(&s.owner, task).await.expect("task");
    }
    s.clock.set(start() + chrono::Duration::seconds(30));
    let (a, b) = tokio::join!(s.catalyst.run_due_tasks(), second.run_due_tasks());
    assert_eq!(a.expect("first") + b.expect("second"), 5, "each firing ran exactly once");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while commands(&s.runtime).len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "commands never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut sent = commands(&s.runtime);
    sent.sort();
    assert_eq!(sent, (0..5).map(|i| format!("say tick {i}")).collect::<Vec<_>>(), "no duplicates");
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_act_only_with_their_creators_current_permissions() {
    let (store, _db) = support::sqlite().await;
    let s = setup(Arc::new(store)).await;
    let system = Principal::system();
    // A subuser who may read and write the console and manage tasks, but not stop the server.
    let sub =
        RegisterInput { email: "sub@example.test".into(), username: "sub".into(), password: "password-123".into() };
    let sub = s.catalyst.register(sub).await.expect("register");
    let perms = vec![Permission::ServerRead, Permission::ConsoleWrite, Permission::TaskCreate, Permission::TaskRead];
    let grant = GrantAccess { user_id: sub.id, permissions: perms };
    s.catalyst.grant_access(&s.owner, s.server, grant).await.expect("grant");
    let sub = s.catalyst.principal_for(sub.id).await.expect("principal");

    let stop = NewTask { action: TaskAction::Stop, ..every_minute(s.server, "stop it", CatchUp::Skip) };
    let refused = s.catalyst.create_task(&sub, stop).await.expect_err("no server.stop");
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    let bad = NewTask { cron: "61 * * * *".into(), ..every_minute(s.server, "bad", CatchUp::Skip) };
    assert_eq!(s.catalyst.create_task(&s.owner, bad).await.expect_err("cron").kind(), ErrorKind::InvalidInput);
    let stranger = s
        .catalyst
        .create_task(
            &Principal::user(catalyst_core::id::UserId::new(), Default::default()),
            every_minute(s.server, "x", CatchUp::Skip),
        )
        .await;
    assert_eq!(stranger.expect_err("invisible").kind(), ErrorKind::NotFound);

    let task = s.catalyst.create_task(&sub, every_minute(s.server, "say sub", CatchUp::Skip)).await.expect("task");
    // The grant is taken away before the firing: the task does not act.
    s.catalyst.revoke_access(&system, s.server, sub.user_id().expect("user")).await.expect("revoke");
    s.clock.set(start() + chrono::Duration::seconds(30));
    assert_eq!(s.catalyst.run_due_tasks().await.expect("run"), 1);
    let after = s.catalyst.get_task(&s.owner, task.id).await.expect("task");
    assert_eq!(after.last_result.as_deref(), Some("not_found"), "{after:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!commands(&s.runtime).contains(&"say sub".to_string()), "the command never ran");
}
