//! Conformance suites: every store adapter must pass all of them.
//!
//! Each suite takes a fresh, empty store and panics with a message on the first violation.

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

    /// Now, truncated to microseconds.
    pub fn now() -> Timestamp {
        SystemClock.now()
    }

    /// A user named `name` with email `name@example.test`.
    pub fn user(name: &str) -> User {
        User {
            id: UserId::new(),
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
        Location { id: LocationId::new(), name: name.into(), description: String::new(), created_at: now(), version: 0 }
    }

    /// A node in `location`.
    pub fn node(name: &str, location: LocationId) -> Node {
        Node {
            id: NodeId::new(),
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
        Template {
            id: TemplateId::new(),
            name: name.into(),
            description: String::new(),
            image: "catalyst/test:latest".into(),
            startup: "./run.sh".into(),
            env: BTreeMap::new(),
            variables: vec![],
            install: None,
            stop: StopAction::Command("stop".into()),
            done_patterns: vec![],
            config_files: vec![],
            created_at: now(),
            version: 0,
        }
    }

    /// A server on `node` owned by `owner` listening on `port`.
    pub fn server(name: &str, owner: UserId, node: NodeId, template: TemplateId, port: u16) -> Server {
        Server {
            id: ServerId::new(),
            name: name.into(),
            description: String::new(),
            owner_id: owner,
            node_id: node,
            template_id: template,
            variables: BTreeMap::new(),
            limits: Limits::default(),
            allocations: vec![Allocation { ip: "0.0.0.0".into(), port, primary: true }],
            restart_policy: RestartPolicy::default(),
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

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

/// Run every suite on `store`, which must be empty.
pub async fn all(store: &dyn Store) {
    users(store).await;
    nodes(store).await;
    templates(store).await;
    servers(store).await;
    logs(store).await;
    audit(store).await;
    api_keys(store).await;
    tasks(store).await;
    metrics(store).await;
    alerts(store).await;
    backups(store).await;
}

/// [`crate::ports::BackupStore`] conformance.
pub async fn backups(store: &dyn Store) {
    use crate::id::BackupId;
    use crate::model::{Backup, BackupStatus, StorageKind};
    let owner = user("backed-up");
    store.create_user(&owner).await.expect("user");
    let loc = location("backups");
    store.create_location(&loc).await.expect("location");
    let n = node("backups-node", loc.id);
    store.create_node(&n).await.expect("node");
    let t = template("backups-template");
    store.create_template(&t).await.expect("template");
    let srv = server("backups-server", owner.id, n.id, t.id, 29_100);
    store.create_server(&srv).await.expect("server");
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("time").to_utc();
    let backup = |minutes: i64| Backup {
        id: BackupId::new(),
        server_id: srv.id,
        node_id: n.id,
        name: format!("b{minutes}"),
        status: BackupStatus::InProgress,
        storage: StorageKind::S3,
        size_bytes: 0,
        checksum: None,
        locked: false,
        error: None,
        created_at: at + chrono::Duration::minutes(minutes),
        completed_at: None,
    };
    let (first, second) = (backup(1), backup(2));
    store.create_backup(&first).await.expect("first");
    store.create_backup(&second).await.expect("second");
    assert_eq!(store.create_backup(&first).await.expect_err("twice").kind(), ErrorKind::Conflict);
    let mut orphan = backup(3);
    orphan.server_id = crate::id::ServerId::new();
    assert_eq!(store.create_backup(&orphan).await.expect_err("no server").kind(), ErrorKind::NotFound);
    assert_eq!(store.get_backup(first.id).await.expect("get"), first);

    let mut done = first.clone();
    done.status = BackupStatus::Completed;
    done.size_bytes = 5_000_000_000;
    done.checksum = Some("ab".repeat(32));
    done.locked = true;
    done.completed_at = Some(at + chrono::Duration::minutes(5));
    let other = node("backups-node-2", loc.id);
    store.create_node(&other).await.expect("second node");
    done.node_id = other.id; // a transfer moved it
    store.update_backup(&done).await.expect("update");
    assert_eq!(store.get_backup(first.id).await.expect("get"), done);
    let listed = store.list_backups(srv.id).await.expect("list");
    assert_eq!(listed.iter().map(|b| b.id).collect::<Vec<_>>(), vec![second.id, first.id], "newest first");
    assert_eq!(store.update_backup(&backup(9)).await.expect_err("missing").kind(), ErrorKind::NotFound);
    let usage = store.backup_usage().await.expect("usage");
    assert_eq!((usage.backups, usage.bytes), (2, 5_000_000_000), "completed and running backups count");
    let mut failed = second.clone();
    failed.status = BackupStatus::Failed;
    failed.size_bytes = 7;
    store.update_backup(&failed).await.expect("fail it");
    let usage = store.backup_usage().await.expect("usage");
    assert_eq!((usage.backups, usage.bytes), (1, 5_000_000_000), "failed backups hold nothing");

    store.delete_backup(second.id).await.expect("delete");
    assert_eq!(store.get_backup(second.id).await.expect_err("gone").kind(), ErrorKind::NotFound);
    assert_eq!(store.delete_backup(second.id).await.expect_err("twice").kind(), ErrorKind::NotFound);
    store.delete_server(srv.id).await.expect("delete server");
    assert_eq!(store.get_backup(first.id).await.expect_err("with its server").kind(), ErrorKind::NotFound);
}

/// [`crate::ports::AlertStore`] conformance.
pub async fn alerts(store: &dyn Store) {
    let owner = user("alerted");
    store.create_user(&owner).await.expect("user");
    let other = user("alerted-other");
    store.create_user(&other).await.expect("other");
    let loc = location("alerts");
    store.create_location(&loc).await.expect("location");
    let n = node("alerts-node", loc.id);
    store.create_node(&n).await.expect("node");
    let t = template("alerts-template");
    store.create_template(&t).await.expect("template");
    let srv = server("alerts-server", owner.id, n.id, t.id, 29_000);
    store.create_server(&srv).await.expect("server");

    let rule = AlertRule {
        id: AlertRuleId::new(),
        name: "hot".into(),
        condition: AlertCondition::ResourceThreshold {
            metric: AlertMetric::Cpu,
            above_percent: 90.0,
            for_secs: 300,
            server_id: None,
        },
        severity: Severity::Warning,
        webhooks: vec![WebhookTarget {
            url: "https://hooks.example.test/x".into(),
            format: WebhookFormat::Slack,
            secret: Some("s".into()),
        }],
        enabled: true,
        created_by: owner.id,
        version: 0,
    };
    store.create_alert_rule(&rule).await.expect("rule");
    assert_eq!(store.get_alert_rule(rule.id).await.expect("get"), rule, "round trip, secret kept");
    let mut changed = rule.clone();
    changed.enabled = false;
    assert_eq!(store.update_alert_rule(&changed).await.expect("update").version, 1);
    assert_eq!(store.update_alert_rule(&changed).await.expect_err("stale").kind(), ErrorKind::Conflict);
    assert_eq!(store.list_alert_rules().await.expect("list").len(), 1);

    let t0 = now();
    let alert = |minutes: i64, server: Option<ServerId>, node: Option<NodeId>, severity| Alert {
        id: AlertId::new(),
        rule_id: Some(rule.id),
        server_id: server,
        node_id: node,
        kind: if server.is_some() { "resource_threshold".into() } else { "node_offline".into() },
        severity,
        message: "m".into(),
        resolved: false,
        created_at: t0 + chrono::Duration::minutes(minutes),
        resolved_at: None,
        resolved_by: None,
    };
    let a1 = alert(0, Some(srv.id), None, Severity::Warning);
    let a2 = alert(1, Some(srv.id), None, Severity::Critical);
    let a3 = alert(2, None, Some(n.id), Severity::Warning);
    for a in [&a1, &a2, &a3] {
        store.create_alert(a).await.expect("alert");
    }
    assert_eq!(store.get_alert(a1.id).await.expect("get"), a1);
    assert_eq!(store.last_alert(rule.id, Some(srv.id), None).await.expect("last").map(|a| a.id), Some(a2.id));
    assert_eq!(store.last_alert(rule.id, None, Some(n.id)).await.expect("last").map(|a| a.id), Some(a3.id));
    assert_eq!(store.last_alert(rule.id, None, None).await.expect("last"), None);

    let all = store.list_alerts(&AlertFilter::default(), Page::default()).await.expect("all");
    assert_eq!(all.items.iter().map(|a| a.id).collect::<Vec<_>>(), vec![a3.id, a2.id, a1.id], "newest first");
    let critical = AlertFilter { severity: Some(Severity::Critical), ..Default::default() };
    assert_eq!(store.list_alerts(&critical, Page::default()).await.expect("critical").total, 1);
    let mine = AlertFilter { visible_to: Some(owner.id), ..Default::default() };
    assert_eq!(store.list_alerts(&mine, Page::default()).await.expect("mine").total, 2, "node alerts are not theirs");
    let theirs = AlertFilter { visible_to: Some(other.id), ..Default::default() };
    assert_eq!(store.list_alerts(&theirs, Page::default()).await.expect("theirs").total, 0);

    let done = store.resolve_alert(a1.id, Some(owner.id), t0).await.expect("resolve");
    assert!(done.resolved && done.resolved_by == Some(owner.id) && done.resolved_at == Some(t0));
    assert_eq!(store.resolve_alert(a1.id, None, t0).await.expect_err("again").kind(), ErrorKind::Conflict);
    assert_eq!(store.resolve_alert(AlertId::new(), None, t0).await.expect_err("missing").kind(), ErrorKind::NotFound);
    let open = AlertFilter { resolved: Some(false), ..Default::default() };
    assert_eq!(store.list_alerts(&open, Page::default()).await.expect("open").total, 2);

    let delivery = |alert: Option<AlertId>, seconds: i64| WebhookDelivery {
        id: DeliveryId::new(),
        alert_id: alert,
        url: "https://hooks.example.test/x".into(),
        event: "alert.raised".into(),
        delivered: alert.is_some(),
        attempts: 2,
        status: Some(200),
        error: None,
        at: t0 + chrono::Duration::seconds(seconds),
    };
    let d1 = delivery(Some(a2.id), 1);
    let d2 = delivery(None, 2);
    store.append_delivery(&d1).await.expect("delivery");
    store.append_delivery(&d2).await.expect("delivery");
    let all = store.list_deliveries(None, Page::default()).await.expect("deliveries");
    assert_eq!(all.items, vec![d2, d1.clone()], "newest first, round trip");
    assert_eq!(store.list_deliveries(Some(a2.id), Page::default()).await.expect("of a2").items, vec![d1]);

    store.delete_alert_rule(rule.id).await.expect("delete rule");
    assert_eq!(store.get_alert(a2.id).await.expect("kept").rule_id, None, "alerts outlive their rule");
}

/// [`crate::ports::MetricsStore`] conformance.
pub async fn metrics(store: &dyn Store) {
    let owner = user("measured");
    store.create_user(&owner).await.expect("user");
    let loc = location("metrics");
    store.create_location(&loc).await.expect("location");
    let n = node("metrics-node", loc.id);
    store.create_node(&n).await.expect("node");
    let t = template("metrics-template");
    store.create_template(&t).await.expect("template");
    let a = server("metrics-a", owner.id, n.id, t.id, 28_000);
    let b = server("metrics-b", owner.id, n.id, t.id, 28_001);
    store.create_server(&a).await.expect("server a");
    store.create_server(&b).await.expect("server b");

    let day = chrono::DateTime::parse_from_rfc3339("2030-03-01T00:00:00Z").expect("time").to_utc();
    let sample = |server: ServerId, minutes: i64, cpu: f64, mem: u64| ServerMetrics {
        server_id: server,
        at: day + chrono::Duration::minutes(minutes) + chrono::Duration::microseconds(250),
        cpu_percent: cpu,
        memory_bytes: mem,
        memory_limit_bytes: 1 << 30,
        rx_bytes: 100 * minutes as u64,
        tx_bytes: 50 * minutes as u64,
        disk_bytes: 4096,
    };
    // Hour 0: a at 10% and 30%; hour 1: a at 50%; b in hour 0 only. One duplicate, one for a
    // server that does not exist.
    let mut batch = vec![sample(a.id, 5, 10.0, 100), sample(a.id, 35, 30.0, 300), sample(a.id, 65, 50.0, 500)];
    batch.push(sample(b.id, 10, 80.0, 800));
    assert_eq!(store.append_metrics(&batch).await.expect("append"), 4);
    let ghost = sample(ServerId::new(), 1, 1.0, 1);
    assert_eq!(
        store.append_metrics(&[batch[0].clone(), ghost]).await.expect("again"),
        0,
        "duplicates and strangers skipped"
    );
    let got = store.list_metrics(a.id, day, day + chrono::Duration::hours(2), 10).await.expect("list");
    assert_eq!(got, batch[..3].to_vec(), "oldest first, round trip");
    assert_eq!(store.list_metrics(a.id, day, day + chrono::Duration::hours(2), 2).await.expect("limit").len(), 2);
    let hour0 = store.list_metrics(a.id, day, day + chrono::Duration::hours(1), 10).await.expect("hour 0");
    assert_eq!(hour0.len(), 2, "to is exclusive");

    // Hourly roll-ups, then a daily one from them; re-running replaces.
    assert_eq!(store.roll_up(Period::Hour, day).await.expect("hour 0"), 2, "a and b");
    assert_eq!(store.roll_up(Period::Hour, day).await.expect("again"), 2);
    store.roll_up(Period::Hour, day + chrono::Duration::hours(1)).await.expect("hour 1");
    let hours = store.list_rollups(a.id, Period::Hour, day, day + chrono::Duration::days(1)).await.expect("hours");
    assert_eq!(hours.len(), 2);
    let h0: &MetricsRollup = &hours[0];
    assert_eq!((h0.start, h0.samples, h0.cpu_max, h0.memory_max_bytes), (day, 2, 30.0, 300));
    assert!((h0.cpu_avg - 20.0).abs() < 1e-9 && (h0.memory_avg_bytes - 200.0).abs() < 1e-9, "{h0:?}");
    assert_eq!(h0.rx_bytes, 3500, "the highest counter");
    assert_eq!(store.roll_up(Period::Day, day).await.expect("day"), 2);
    let days = store.list_rollups(a.id, Period::Day, day, day + chrono::Duration::days(1)).await.expect("days");
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].samples, days[0].cpu_max), (3, 50.0));
    assert!((days[0].cpu_avg - 30.0).abs() < 1e-9, "weighted by samples: {:?}", days[0]);

    // Retention: samples before hour 1 go; hourly roll-ups before hour 1 go; daily stay.
    let gone = store
        .prune_metrics(day + chrono::Duration::hours(1), day + chrono::Duration::hours(1), day)
        .await
        .expect("prune");
    assert_eq!(gone, 3 + 2, "3 samples, 2 hourly roll-ups (a and b, hour 0)");
    assert_eq!(store.list_metrics(a.id, day, day + chrono::Duration::days(1), 10).await.expect("left").len(), 1);
    assert_eq!(
        store.list_rollups(a.id, Period::Day, day, day + chrono::Duration::days(1)).await.expect("days").len(),
        1
    );
    store.delete_server(b.id).await.expect("delete b");
    assert!(store.list_rollups(b.id, Period::Day, day, day + chrono::Duration::days(1)).await.expect("b").is_empty());
}

/// [`crate::ports::TaskStore`] conformance.
pub async fn tasks(store: &dyn Store) {
    let owner = user("tasker");
    store.create_user(&owner).await.expect("user");
    let loc = location("tasks");
    store.create_location(&loc).await.expect("location");
    let n = node("tasks-node", loc.id);
    store.create_node(&n).await.expect("node");
    let t = template("tasks-template");
    store.create_template(&t).await.expect("template");
    let srv = server("tasks-server", owner.id, n.id, t.id, 27_000);
    store.create_server(&srv).await.expect("server");

    let t0 = now();
    let soon = task("soon", srv.id, owner.id, Some(t0));
    let later = task("later", srv.id, owner.id, Some(t0 + chrono::Duration::minutes(5)));
    let mut off = task("off", srv.id, owner.id, Some(t0 - chrono::Duration::minutes(1)));
    off.enabled = false;
    let mut cmd = task("chain", srv.id, owner.id, None);
    cmd.action = TaskAction::Restart;
    cmd.catch_up = CatchUp::RunOnce;
    for x in [&soon, &later, &off, &cmd] {
        store.create_task(x).await.expect("create");
    }
    assert_eq!(store.create_task(&soon).await.expect_err("dup").kind(), ErrorKind::Conflict);
    let orphan = task("orphan", ServerId::new(), owner.id, None);
    assert_eq!(store.create_task(&orphan).await.expect_err("orphan").kind(), ErrorKind::NotFound);
    assert_eq!(store.get_task(cmd.id).await.expect("get"), cmd, "round trip");
    assert_eq!(store.get_task(TaskId::new()).await.expect_err("missing").kind(), ErrorKind::NotFound);

    let due: Vec<TaskId> = store.due_tasks(t0, 10).await.expect("due").iter().map(|x| x.id).collect();
    assert_eq!(due, vec![soon.id], "enabled, at or before now");
    let due = store.due_tasks(t0 + chrono::Duration::minutes(10), 10).await.expect("due");
    assert_eq!(due.iter().map(|x| x.id).collect::<Vec<_>>(), vec![soon.id, later.id], "earliest first");
    assert_eq!(store.due_tasks(t0 + chrono::Duration::minutes(10), 1).await.expect("due").len(), 1, "limit");
    let listed = store.list_tasks(Some(srv.id), Page::default()).await.expect("list");
    assert_eq!(listed.total, 4);
    assert_eq!(listed.items.last().map(|x| x.id), Some(cmd.id), "unplanned last");

    // A firing is claimed by compare-and-swap: of two claims on one version, one wins.
    let mut first = soon.clone();
    first.next_run_at = Some(t0 + chrono::Duration::minutes(1));
    first.last_run_at = Some(t0);
    first.run_count = 1;
    first.last_result = Some("ok".into());
    let claimed = store.update_task(&first).await.expect("claim");
    assert_eq!((claimed.version, claimed.run_count), (1, 1));
    assert_eq!(store.update_task(&first).await.expect_err("second claim").kind(), ErrorKind::Conflict);

    store.delete_task(later.id).await.expect("delete");
    assert_eq!(store.delete_task(later.id).await.expect_err("again").kind(), ErrorKind::NotFound);
    store.delete_server(srv.id).await.expect("server gone");
    assert_eq!(store.list_tasks(None, Page::default()).await.expect("list").total, 0, "tasks go with their server");
}

/// [`crate::ports::ApiKeyStore`] conformance.
pub async fn api_keys(store: &dyn Store) {
    let owner = user("keyholder");
    store.create_user(&owner).await.expect("user");
    let key = api_key("k1abcdef", owner.id);
    store.create_api_key(&key).await.expect("create");
    let mut same_prefix = api_key("k1abcdef", owner.id);
    same_prefix.name = "other".into();
    assert_eq!(store.create_api_key(&same_prefix).await.expect_err("dup").kind(), ErrorKind::Conflict, "prefix unique");
    let orphan = api_key("k2orphan", UserId::new());
    assert_eq!(store.create_api_key(&orphan).await.expect_err("orphan").kind(), ErrorKind::NotFound);

    let got = store.get_api_key(key.id).await.expect("get");
    assert_eq!(got, key, "round trip");
    assert_eq!(store.find_api_key("k1abcdef").await.expect("find"), Some(key.clone()));
    assert_eq!(store.find_api_key("nope").await.expect("find"), None);
    assert_eq!(store.get_api_key(ApiKeyId::new()).await.expect_err("missing").kind(), ErrorKind::NotFound);

    // Updates are compare-and-swap and keep the secret; uses are recorded beside them.
    let used = now();
    store.touch_api_key(key.id, used).await.expect("touch");
    let mut changed = got.clone();
    changed.name = "renamed".into();
    changed.scopes = vec![Permission::ServerRead, Permission::ServerStart];
    changed.secret_hash = "attempt to overwrite".into();
    let stored = store.update_api_key(&changed).await.expect("update");
    assert_eq!((stored.version, stored.name.as_str()), (1, "renamed"));
    assert_eq!(stored.secret_hash, key.secret_hash, "the secret never changes");
    assert_eq!(stored.last_used_at, Some(used), "an update keeps the last use");
    assert_eq!(store.update_api_key(&changed).await.expect_err("stale").kind(), ErrorKind::Conflict);

    let second = api_key("k3second", owner.id);
    store.create_api_key(&second).await.expect("second");
    let other = user("other-holder");
    store.create_user(&other).await.expect("other");
    store.create_api_key(&api_key("k4others", other.id)).await.expect("others");
    let mine = store.list_api_keys(Some(owner.id), Page::default()).await.expect("list");
    assert_eq!(mine.total, 2);
    assert!(mine.items.iter().all(|k| k.user_id == owner.id));
    assert_eq!(store.list_api_keys(None, Page::default()).await.expect("all").total, 3);

    store.delete_api_key(second.id).await.expect("delete");
    assert_eq!(store.delete_api_key(second.id).await.expect_err("again").kind(), ErrorKind::NotFound);
    store.delete_user(owner.id).await.expect("delete user");
    assert_eq!(store.find_api_key("k1abcdef").await.expect("find"), None, "keys go with their user");
}

/// [`crate::ports::UserStore`] conformance.
pub async fn users(store: &dyn Store) {
    let alice = user("alice");
    store.create_user(&alice).await.expect("create user");
    assert_eq!(store.get_user(alice.id).await.expect("get user"), alice, "user round-trips");
    let mut dup = user("alice2");
    dup.email = alice.email.clone();
    assert_eq!(kind(store.create_user(&dup).await), ErrorKind::Conflict, "duplicate email");
    let mut dup = user("alice3");
    dup.username = alice.username.clone();
    assert_eq!(kind(store.create_user(&dup).await), ErrorKind::Conflict, "duplicate username");
    assert_eq!(kind(store.get_user(UserId::new()).await), ErrorKind::NotFound);
    assert_eq!(store.find_user_by_email(&alice.email).await.expect("find").map(|u| u.id), Some(alice.id));
    assert!(store.find_user_by_email("nobody@example.test").await.expect("find").is_none());

    // Compare-and-swap: exactly one of two writers holding version 0 wins.
    let mut a = alice.clone();
    a.username = "alice_a".into();
    let mut b = alice.clone();
    b.username = "alice_b".into();
    let stored = store.update_user(&a).await.expect("first writer wins");
    assert_eq!(stored.version, 1);
    assert_eq!(kind(store.update_user(&b).await), ErrorKind::Conflict, "second writer loses");
    assert_eq!(store.get_user(alice.id).await.expect("get").username, "alice_a");

    let bob = user("bob");
    store.create_user(&bob).await.expect("create bob");
    let mut steal = store.get_user(bob.id).await.expect("get bob");
    steal.email = alice.email.clone();
    assert_eq!(kind(store.update_user(&steal).await), ErrorKind::Conflict, "update to a taken email");
    assert_eq!(store.count_users().await.expect("count"), 2);
    let page = store.list_users(Page::new(0, 1)).await.expect("list");
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
    store.create_role(&role).await.expect("create role");
    assert_eq!(kind(store.create_role(&Role { id: RoleId::new(), ..role.clone() }).await), ErrorKind::Conflict);
    assert_eq!(store.get_role(role.id).await.expect("get role"), role);
    assert_eq!(store.find_role_by_name("operators").await.expect("find").map(|r| r.id), Some(role.id));
    let mut held = store.get_user(bob.id).await.expect("bob");
    held.roles = vec![role.id];
    store.update_user(&held).await.expect("give role");
    assert_eq!(store.get_user(bob.id).await.expect("bob").roles, vec![role.id], "roles round-trip");
    assert_eq!(kind(store.delete_role(role.id).await), ErrorKind::Conflict, "role in use");
    let mut r2 = role.clone();
    r2.permissions.push("file.read".into());
    assert_eq!(store.update_role(&r2).await.expect("update role").version, 1);
    assert_eq!(kind(store.update_role(&r2).await), ErrorKind::Conflict, "stale role version");
    assert_eq!(store.list_roles().await.expect("roles").len(), 1);

    // Sessions.
    let session = Session {
        id: SessionId::new(),
        user_id: bob.id,
        refresh_hash: "h1".into(),
        created_at: now(),
        expires_at: now() + chrono::Duration::days(1),
        revoked: false,
    };
    store.create_session(&session).await.expect("session");
    store.rotate_session(session.id, "h1", "h2").await.expect("rotate");
    assert_eq!(kind(store.rotate_session(session.id, "h1", "h3").await), ErrorKind::Conflict, "replayed token");
    assert_eq!(store.get_session(session.id).await.expect("get").refresh_hash, "h2");
    assert_eq!(store.revoke_user_sessions(bob.id).await.expect("revoke all"), 1);
    assert!(store.get_session(session.id).await.expect("get").revoked);
    assert_eq!(kind(store.rotate_session(session.id, "h2", "h4").await), ErrorKind::Conflict, "revoked session");

    // Deleting a user removes their sessions.
    store.delete_user(bob.id).await.expect("delete bob");
    assert_eq!(kind(store.get_session(session.id).await), ErrorKind::NotFound);
    assert_eq!(kind(store.delete_user(bob.id).await), ErrorKind::NotFound);
    store.delete_role(role.id).await.expect("delete role once unused");
}

/// [`crate::ports::NodeStore`] conformance.
pub async fn nodes(store: &dyn Store) {
    let loc = location("eu-west");
    store.create_location(&loc).await.expect("location");
    assert_eq!(kind(store.create_location(&location("eu-west")).await), ErrorKind::Conflict);
    assert_eq!(store.get_location(loc.id).await.expect("get"), loc);
    let n = node("n1", loc.id);
    store.create_node(&n).await.expect("node");
    assert_eq!(store.get_node(n.id).await.expect("get node"), n);
    assert_eq!(kind(store.create_node(&node("n1", loc.id)).await), ErrorKind::Conflict, "node name");
    assert_eq!(kind(store.create_node(&node("n2", LocationId::new())).await), ErrorKind::NotFound, "missing location");
    assert_eq!(kind(store.delete_location(loc.id).await), ErrorKind::Conflict, "location in use");

    let mut enrolled = n.clone();
    enrolled.deployment_token_hash = Some("tok".into());
    enrolled.deployment_token_expires_at = Some(now());
    enrolled.credential_hash = Some("cred".into());
    enrolled.last_seen_at = Some(now());
    let stored = store.update_node(&enrolled).await.expect("update node");
    assert_eq!(stored.version, 1);
    let back = store.get_node(n.id).await.expect("get");
    assert_eq!(back.credential_hash.as_deref(), Some("cred"), "secrets are stored (hashed) and read back");
    assert_eq!(back.deployment_token_hash.as_deref(), Some("tok"));
    assert_eq!(kind(store.update_node(&enrolled).await), ErrorKind::Conflict, "stale node version");

    let mut l2 = loc.clone();
    l2.description = "Dublin".into();
    assert_eq!(store.update_location(&l2).await.expect("update loc").description, "Dublin");
    assert_eq!(store.list_locations().await.expect("list").len(), 1);
    assert_eq!(store.list_nodes(Page::default()).await.expect("nodes").total, 1);
    store.delete_node(n.id).await.expect("delete node");
    assert_eq!(kind(store.get_node(n.id).await), ErrorKind::NotFound);
    store.delete_location(loc.id).await.expect("delete location");
}

/// [`crate::ports::TemplateStore`] conformance.
pub async fn templates(store: &dyn Store) {
    let mut t = template("paper");
    t.env.insert("EULA".into(), "true".into());
    t.variables.push(crate::model::TemplateVariable {
        name: "VERSION".into(),
        description: "game version".into(),
        default: Some("1.21".into()),
        user_editable: true,
        rules: crate::model::VariableRules { required: true, ..Default::default() },
    });
    t.install = Some(crate::model::InstallScript {
        image: "debian".into(),
        entrypoint: "/bin/sh".into(),
        script: "echo hi".into(),
    });
    t.done_patterns.push(crate::model::DonePattern::Regex("Done \\(".into()));
    store.create_template(&t).await.expect("template");
    assert_eq!(store.get_template(t.id).await.expect("get"), t, "nested fields round-trip");
    assert_eq!(kind(store.create_template(&template("paper")).await), ErrorKind::Conflict);
    let mut t2 = t.clone();
    t2.startup = "./other.sh".into();
    assert_eq!(store.update_template(&t2).await.expect("update").version, 1);
    assert_eq!(kind(store.update_template(&t2).await), ErrorKind::Conflict);
    assert_eq!(store.list_templates(Page::default()).await.expect("list").total, 1);
    store.delete_template(t.id).await.expect("delete");
    assert_eq!(kind(store.delete_template(t.id).await), ErrorKind::NotFound);
}

struct World {
    owner: User,
    other: User,
    node: Node,
    template: Template,
}

async fn world(store: &dyn Store, tag: &str) -> World {
    let owner = user(&format!("owner_{tag}"));
    let other = user(&format!("other_{tag}"));
    store.create_user(&owner).await.expect("owner");
    store.create_user(&other).await.expect("other");
    let loc = location(&format!("loc-{tag}"));
    store.create_location(&loc).await.expect("loc");
    let node = node(&format!("node-{tag}"), loc.id);
    store.create_node(&node).await.expect("node");
    let template = template(&format!("tpl-{tag}"));
    store.create_template(&template).await.expect("template");
    World { owner, other, node, template }
}

/// [`crate::ports::ServerStore`] conformance.
pub async fn servers(store: &dyn Store) {
    let w = world(store, "srv").await;
    let mut s = server("alpha", w.owner.id, w.node.id, w.template.id, 25565);
    s.variables.insert("VERSION".into(), "1.21".into());
    s.crash_history = vec![now()];
    store.create_server(&s).await.expect("create server");
    assert_eq!(store.get_server(s.id).await.expect("get"), s, "server round-trips");

    // Allocation conflicts are refused and nothing is half-written.
    let clash = server("beta", w.owner.id, w.node.id, w.template.id, 25565);
    assert_eq!(kind(store.create_server(&clash).await), ErrorKind::Conflict, "same ip:port on one node");
    assert_eq!(kind(store.get_server(clash.id).await), ErrorKind::NotFound, "refused server not stored");
    let missing_owner = server("gamma", UserId::new(), w.node.id, w.template.id, 1);
    assert_eq!(kind(store.create_server(&missing_owner).await), ErrorKind::NotFound, "unknown owner");
    let missing_node = server("gamma", w.owner.id, NodeId::new(), w.template.id, 1);
    assert_eq!(kind(store.create_server(&missing_node).await), ErrorKind::NotFound, "unknown node");

    let beta = server("beta", w.owner.id, w.node.id, w.template.id, 25566);
    store.create_server(&beta).await.expect("beta");

    // Lifecycle CAS: two transitions from the same version, one wins.
    let mut starting = s.clone();
    starting.state = ServerState::Starting;
    let mut suspended = s.clone();
    suspended.state = ServerState::Suspended;
    let won = store.update_server(&starting).await.expect("first transition");
    assert_eq!(won.version, s.version + 1);
    assert_eq!(kind(store.update_server(&suspended).await), ErrorKind::Conflict, "second transition loses");
    assert_eq!(store.get_server(s.id).await.expect("get").state, ServerState::Starting);

    // Moving onto a taken allocation by update is refused too.
    let mut b2 = store.get_server(beta.id).await.expect("beta");
    b2.allocations[0].port = 25565;
    assert_eq!(kind(store.update_server(&b2).await), ErrorKind::Conflict, "update into a taken allocation");

    // Usage and filters.
    let usage = store.node_usage(w.node.id).await.expect("usage");
    assert_eq!((usage.servers, usage.memory_mb), (2, 2 * Limits::default().memory_mb));
    let visible = store
        .list_servers(&ServerFilter { visible_to: Some(w.other.id), ..Default::default() }, Page::default())
        .await
        .expect("list");
    assert_eq!(visible.total, 0, "a stranger sees nothing");

    // Access.
    let access = ServerAccess {
        server_id: s.id,
        user_id: w.other.id,
        permissions: vec![Permission::ServerRead, Permission::ConsoleRead],
        created_at: now(),
    };
    store.put_access(&access).await.expect("grant");
    assert_eq!(store.get_access(s.id, w.other.id).await.expect("get access"), Some(access.clone()));
    let visible = store
        .list_servers(&ServerFilter { visible_to: Some(w.other.id), ..Default::default() }, Page::default())
        .await
        .expect("list");
    assert_eq!(visible.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![s.id], "subuser sees the shared server");
    let mut more = access.clone();
    more.permissions.push(Permission::FileRead);
    store.put_access(&more).await.expect("replace grant");
    assert_eq!(store.list_access(s.id).await.expect("list access"), vec![more]);
    let owned = store
        .list_servers(&ServerFilter { owner_id: Some(w.owner.id), ..Default::default() }, Page::new(1, 10))
        .await
        .expect("page 2");
    assert_eq!((owned.items.len(), owned.total), (1, 2), "offset paging");
    assert_eq!(kind(store.delete_user(w.owner.id).await), ErrorKind::Conflict, "owner of servers");
    assert_eq!(kind(store.delete_node(w.node.id).await), ErrorKind::Conflict, "node with servers");
    assert_eq!(kind(store.delete_template(w.template.id).await), ErrorKind::Conflict, "template in use");

    // Deleting the subuser removes their access; deleting the server removes everything.
    store.delete_access(s.id, w.other.id).await.expect("revoke");
    assert_eq!(kind(store.delete_access(s.id, w.other.id).await), ErrorKind::NotFound);
    store.append_logs(&[log(s.id, 1, LogStream::Stdout)]).await.expect("log");
    store.delete_server(s.id).await.expect("delete");
    assert_eq!(kind(store.get_server(s.id).await), ErrorKind::NotFound);
    assert!(store.list_logs(s.id, &LogQuery::default()).await.expect("logs").is_empty(), "logs cascade");
    let again = server("alpha2", w.owner.id, w.node.id, w.template.id, 25565);
    store.create_server(&again).await.expect("a freed allocation is reusable");
}

/// [`crate::ports::LogStore`] conformance, including a batch larger than SQLite's
/// 32 766-parameter limit.
pub async fn logs(store: &dyn Store) {
    let w = world(store, "logs").await;
    let s = server("logger", w.owner.id, w.node.id, w.template.id, 30000);
    store.create_server(&s).await.expect("server");
    let batch: Vec<ServerLog> =
        (1..=20_000).map(|i| log(s.id, i, if i % 10 == 0 { LogStream::Stderr } else { LogStream::Stdout })).collect();
    assert_eq!(store.append_logs(&batch).await.expect("big batch"), 20_000);
    assert_eq!(store.append_logs(&batch[..100]).await.expect("resend"), 0, "resent lines are skipped");
    let newest = store.list_logs(s.id, &LogQuery { limit: Some(3), ..Default::default() }).await.expect("list");
    assert_eq!(newest.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![20_000, 19_999, 19_998], "newest first");
    assert_eq!(newest[0], batch[19_999], "line round-trips");
    let errs = store
        .list_logs(
            s.id,
            &LogQuery { stream: Some(LogStream::Stderr), before: Some(100), limit: Some(500), ..Default::default() },
        )
        .await
        .expect("filter");
    assert_eq!(errs.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![90, 80, 70, 60, 50, 40, 30, 20, 10]);
    let resumed = store.list_logs(s.id, &LogQuery { after: Some(19_995), ..Default::default() }).await.expect("resume");
    assert_eq!(resumed.len(), 5);
    assert_eq!(kind(store.append_logs(&[log(ServerId::new(), 1, LogStream::System)]).await), ErrorKind::NotFound);
    let mut old = log(s.id, 30_000, LogStream::System);
    old.at = now() - chrono::Duration::days(40);
    store.append_logs(&[old]).await.expect("old line");
    assert_eq!(store.prune_logs(now() - chrono::Duration::days(30)).await.expect("prune"), 1);
}

/// [`crate::ports::AuditStore`] conformance.
pub async fn audit(store: &dyn Store) {
    let u = UserId::new();
    let t0 = now() - chrono::Duration::hours(2);
    let entries = [
        audit_entry(Some(u), "server.start", t0),
        audit_entry(Some(u), "server.stop", t0 + chrono::Duration::hours(1)),
        audit_entry(None, "auth.login", t0 + chrono::Duration::minutes(90)),
    ];
    for e in &entries {
        store.append_audit(e).await.expect("append");
    }
    let all = store.query_audit(&AuditQuery::default(), Page::default()).await.expect("all");
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0], entries[2], "newest first, round-trips");
    let by_user =
        store.query_audit(&AuditQuery { user_id: Some(u), ..Default::default() }, Page::default()).await.expect("user");
    assert_eq!(by_user.total, 2);
    let prefix = store
        .query_audit(&AuditQuery { action: Some("server.".into()), ..Default::default() }, Page::default())
        .await
        .expect("prefix");
    assert_eq!(prefix.total, 2);
    let exact = store
        .query_audit(&AuditQuery { action: Some("server.stop".into()), ..Default::default() }, Page::default())
        .await
        .expect("exact");
    assert_eq!(exact.items.iter().map(|e| e.id).collect::<Vec<_>>(), vec![entries[1].id]);
    let window = AuditQuery {
        from: Some(t0 + chrono::Duration::minutes(30)),
        to: Some(t0 + chrono::Duration::minutes(80)),
        ..Default::default()
    };
    assert_eq!(store.query_audit(&window, Page::default()).await.expect("range").total, 1);
    let target = AuditQuery { target_type: Some("server".into()), target_id: Some("t1".into()), ..Default::default() };
    assert_eq!(store.query_audit(&target, Page::new(2, 10)).await.expect("target").items.len(), 1);
}

/// What a [`crate::ports::ContainerRuntime`] conformance run needs from its caller.
#[derive(Debug, Clone)]
pub struct RuntimeTarget {
    /// Image to run (ignored by runtimes without images).
    pub image: String,
    /// A command that prints `ready`, then echoes each stdin line as `> line` until stdin
    /// closes or it reads `stop` (exit 0) or `crash` (exit 3).
    pub echo_command: Vec<String>,
    /// A host directory to mount as the working directory.
    pub workdir_source: String,
}

/// The shell program every real runtime can run for [`container_runtime`].
pub const ECHO_SCRIPT: &str =
    "echo ready; while IFS= read -r l; do case \"$l\" in stop) exit 0;; crash) exit 3;; *) echo \"> $l\";; esac; done";

fn runtime_spec(target: &RuntimeTarget, id: &str) -> crate::ports::ContainerSpec {
    crate::ports::ContainerSpec {
        id: id.to_string(),
        image: target.image.clone(),
        command: target.echo_command.clone(),
        env: BTreeMap::new(),
        mounts: vec![crate::ports::Mount {
            source: target.workdir_source.clone(),
            target: "/home/container".into(),
            read_only: false,
        }],
        workdir: "/home/container".into(),
        limits: Limits::default(),
        allocations: vec![],
        network: crate::ports::NetworkMode::Host,
        tmpfs_mb: 16,
        read_only_rootfs: false,
        user: None,
    }
}

async fn next_line(out: &mut futures::stream::BoxStream<'static, crate::ports::ConsoleLine>, want: &str) {
    use futures::StreamExt;
    for _ in 0..50 {
        match out.next().await {
            Some(l) if l.line.contains(want) => return,
            Some(_) => continue,
            None => panic!("output ended before {want:?}"),
        }
    }
    panic!("{want:?} never appeared");
}

/// [`crate::ports::ContainerRuntime`] conformance: the guarantees of the port's doc comment.
/// `id_prefix` keeps concurrent runs apart.
pub async fn container_runtime(rt: &dyn crate::ports::ContainerRuntime, target: &RuntimeTarget, id_prefix: &str) {
    use crate::ports::Signal;
    let a = format!("{id_prefix}-a");
    let b = format!("{id_prefix}-b");
    rt.ensure_image(&target.image).await.expect("ensure image");
    assert_eq!(
        kind(rt.remove(&format!("{id_prefix}-missing")).await),
        ErrorKind::NotFound,
        "remove of a missing container"
    );

    // Attach before start sees the first line; stdin reaches the process; a requested exit
    // is reported to a wait started before it and to one started after it.
    rt.create(&runtime_spec(target, &a)).await.expect("create");
    assert_eq!(kind(rt.create(&runtime_spec(target, &a)).await), ErrorKind::Conflict, "duplicate id");
    let mut out = rt.attach(&a).await.expect("attach");
    rt.start(&a).await.expect("start");
    next_line(&mut out, "ready").await;
    assert!(rt.list().await.expect("list").iter().any(|c| c.id == a && c.running), "listed as running");
    rt.write_stdin(&a, b"hello\n").await.expect("stdin");
    next_line(&mut out, "> hello").await;
    assert_eq!(kind(rt.remove(&a).await), ErrorKind::Conflict, "a running container is not removed");
    rt.write_stdin(&a, b"crash\n").await.expect("stdin");
    let first = rt.wait(&a).await.expect("wait");
    assert_eq!(first, crate::ports::ExitStatus { code: Some(3), oom: false }, "exit code");
    assert_eq!(rt.wait(&a).await.expect("wait again"), first, "wait after the exit gives the same status");
    assert!(rt.list().await.expect("list").iter().any(|c| c.id == a && !c.running), "listed as stopped");
    rt.remove(&a).await.expect("remove");
    assert!(!rt.list().await.expect("list").iter().any(|c| c.id == a), "removed");

    // SIGKILL ends it whatever it does.
    rt.create(&runtime_spec(target, &b)).await.expect("create");
    let mut out = rt.attach(&b).await.expect("attach");
    rt.start(&b).await.expect("start");
    next_line(&mut out, "ready").await;
    let stats = rt.stats(&b).await.expect("stats");
    assert!(
        stats.memory_limit_bytes == 0 || stats.memory_limit_bytes == Limits::default().memory_mb << 20,
        "limit: {stats:?}"
    );
    rt.signal(&b, Signal::Kill).await.expect("kill");
    let status = rt.wait(&b).await.expect("wait");
    assert_ne!(status.code, Some(0), "killed, not a clean exit: {status:?}");
    rt.signal(&b, Signal::Kill).await.expect("killing a dead container is fine");
    rt.remove(&b).await.expect("remove");
}
