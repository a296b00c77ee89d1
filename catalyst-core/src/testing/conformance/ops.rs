//! Conformance of the operational stores: backups, alerts, metrics, tasks, API keys.

use super::*;

/// [`crate::ports::BackupStore`] conformance.
pub async fn backups(store: &dyn Store) -> crate::Result<()> {
    use crate::id::BackupId;
    use crate::model::{Backup, BackupStatus, StorageKind};
    let owner = user("backed-up");
    store.create_user(&owner).await.context("user")?;
    let loc = location("backups");
    store.create_location(&loc).await.context("location")?;
    let n = node("backups-node", loc.id);
    store.create_node(&n).await.context("node")?;
    let t = template("backups-template");
    store.create_template(&t).await.context("template")?;
    let srv = server("backups-server", owner.id, n.id, t.id, 29_100);
    store.create_server(&srv).await.context("server")?;
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
        version: 0,
    };
    let (first, second) = (backup(1), backup(2));
    store.create_backup(&first).await.context("first")?;
    store.create_backup(&second).await.context("second")?;
    assert_eq!(store.create_backup(&first).await.expect_err("twice").kind(), ErrorKind::Conflict);
    let mut orphan = backup(3);
    orphan.server_id = crate::id::ServerId::new();
    assert_eq!(store.create_backup(&orphan).await.expect_err("no server").kind(), ErrorKind::NotFound);
    assert_eq!(store.get_backup(first.id).await.context("get")?, first);

    let mut done = first.clone();
    done.status = BackupStatus::Completed;
    done.size_bytes = 5_000_000_000;
    done.checksum = Some("ab".repeat(32));
    done.locked = true;
    done.completed_at = Some(at + chrono::Duration::minutes(5));
    let other = node("backups-node-2", loc.id);
    store.create_node(&other).await.context("second node")?;
    done.node_id = other.id; // a transfer moved it
    let stored = store.update_backup(&done).await.context("update")?;
    assert_eq!(stored, Backup { version: done.version + 1, ..done.clone() }, "the stored row, version + 1");
    assert_eq!(store.get_backup(first.id).await.context("get")?, stored);

    // Compare-and-swap: of two writers holding the same version, one wins.
    let mut unlock = first.clone();
    unlock.locked = false;
    assert_eq!(
        store.update_backup(&unlock).await.expect_err("stale").kind(),
        ErrorKind::Conflict,
        "second writer loses"
    );
    assert_eq!(store.get_backup(first.id).await.context("get")?, stored, "the loser wrote nothing");
    assert_eq!(store.update_backup(&backup(9)).await.expect_err("missing").kind(), ErrorKind::NotFound);

    let listed = store.list_backups(srv.id, Page::default()).await.context("list")?;
    assert_eq!(listed.items.iter().map(|b| b.id).collect::<Vec<_>>(), vec![second.id, first.id], "newest first");
    assert_eq!(listed.total, 2);
    let page = store.list_backups(srv.id, Page::new(1, 1)).await.context("page 2")?;
    assert_eq!((page.items.iter().map(|b| b.id).collect::<Vec<_>>(), page.total), (vec![first.id], 2), "offset paging");
    let usage = store.backup_usage().await.context("usage")?;
    assert_eq!((usage.backups, usage.bytes), (2, 5_000_000_000), "completed and running backups count");
    let mut failed = second.clone();
    failed.status = BackupStatus::Failed;
    failed.size_bytes = 7;
    assert_eq!(store.update_backup(&failed).await.context("fail it")?.version, 1);
    let usage = store.backup_usage().await.context("usage")?;
    assert_eq!((usage.backups, usage.bytes), (1, 5_000_000_000), "failed backups hold nothing");

    store.delete_backup(second.id).await.context("delete")?;
    assert_eq!(store.get_backup(second.id).await.expect_err("gone").kind(), ErrorKind::NotFound);
    assert_eq!(store.delete_backup(second.id).await.expect_err("twice").kind(), ErrorKind::NotFound);
    store.delete_server(srv.id).await.context("delete server")?;
    assert_eq!(store.get_backup(first.id).await.expect_err("with its server").kind(), ErrorKind::NotFound);
    Ok(())
}

/// [`crate::ports::AlertStore`] conformance.
pub async fn alerts(store: &dyn Store) -> crate::Result<()> {
    let owner = user("alerted");
    store.create_user(&owner).await.context("user")?;
    let other = user("alerted-other");
    store.create_user(&other).await.context("other")?;
    let loc = location("alerts");
    store.create_location(&loc).await.context("location")?;
    let n = node("alerts-node", loc.id);
    store.create_node(&n).await.context("node")?;
    let t = template("alerts-template");
    store.create_template(&t).await.context("template")?;
    let srv = server("alerts-server", owner.id, n.id, t.id, 29_000);
    store.create_server(&srv).await.context("server")?;

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
    store.create_alert_rule(&rule).await.context("rule")?;
    assert_eq!(store.get_alert_rule(rule.id).await.context("get")?, rule, "round trip, secret kept");
    let mut changed = rule.clone();
    changed.enabled = false;
    assert_eq!(store.update_alert_rule(&changed).await.context("update")?.version, 1);
    assert_eq!(store.update_alert_rule(&changed).await.expect_err("stale").kind(), ErrorKind::Conflict);
    assert_eq!(store.list_alert_rules().await.context("list")?.len(), 1);

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
        store.create_alert(a).await.context("alert")?;
    }
    assert_eq!(store.get_alert(a1.id).await.context("get")?, a1);
    assert_eq!(store.last_alert(rule.id, Some(srv.id), None).await.context("last")?.map(|a| a.id), Some(a2.id));
    assert_eq!(store.last_alert(rule.id, None, Some(n.id)).await.context("last")?.map(|a| a.id), Some(a3.id));
    assert_eq!(store.last_alert(rule.id, None, None).await.context("last")?, None);

    let all = store.list_alerts(&AlertFilter::default(), Page::default()).await.context("all")?;
    assert_eq!(all.items.iter().map(|a| a.id).collect::<Vec<_>>(), vec![a3.id, a2.id, a1.id], "newest first");
    let critical = AlertFilter { severity: Some(Severity::Critical), ..Default::default() };
    assert_eq!(store.list_alerts(&critical, Page::default()).await.context("critical")?.total, 1);
    let mine = AlertFilter { visible_to: Some(owner.id), ..Default::default() };
    assert_eq!(store.list_alerts(&mine, Page::default()).await.context("mine")?.total, 2, "node alerts are not theirs");
    let theirs = AlertFilter { visible_to: Some(other.id), ..Default::default() };
    assert_eq!(store.list_alerts(&theirs, Page::default()).await.context("theirs")?.total, 0);

    let done = store.resolve_alert(a1.id, Some(owner.id), t0).await.context("resolve")?;
    assert!(done.resolved && done.resolved_by == Some(owner.id) && done.resolved_at == Some(t0));
    assert_eq!(store.resolve_alert(a1.id, None, t0).await.expect_err("again").kind(), ErrorKind::Conflict);
    assert_eq!(store.resolve_alert(AlertId::new(), None, t0).await.expect_err("missing").kind(), ErrorKind::NotFound);
    let open = AlertFilter { resolved: Some(false), ..Default::default() };
    assert_eq!(store.list_alerts(&open, Page::default()).await.context("open")?.total, 2);

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
    store.append_delivery(&d1).await.context("delivery")?;
    store.append_delivery(&d2).await.context("delivery")?;
    let all = store.list_deliveries(None, Page::default()).await.context("deliveries")?;
    assert_eq!(all.items, vec![d2, d1.clone()], "newest first, round trip");
    assert_eq!(store.list_deliveries(Some(a2.id), Page::default()).await.context("of a2")?.items, vec![d1]);

    store.delete_alert_rule(rule.id).await.context("delete rule")?;
    assert_eq!(store.get_alert(a2.id).await.context("kept")?.rule_id, None, "alerts outlive their rule");
    Ok(())
}

/// [`crate::ports::MetricsStore`] conformance.
pub async fn metrics(store: &dyn Store) -> crate::Result<()> {
    let owner = user("measured");
    store.create_user(&owner).await.context("user")?;
    let loc = location("metrics");
    store.create_location(&loc).await.context("location")?;
    let n = node("metrics-node", loc.id);
    store.create_node(&n).await.context("node")?;
    let t = template("metrics-template");
    store.create_template(&t).await.context("template")?;
    let a = server("metrics-a", owner.id, n.id, t.id, 28_000);
    let b = server("metrics-b", owner.id, n.id, t.id, 28_001);
    store.create_server(&a).await.context("server a")?;
    store.create_server(&b).await.context("server b")?;

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
    assert_eq!(store.append_metrics(&batch).await.context("append")?, 4);
    let ghost = sample(ServerId::new(), 1, 1.0, 1);
    assert_eq!(
        store.append_metrics(&[batch[0].clone(), ghost]).await.context("again")?,
        0,
        "duplicates and strangers skipped"
    );
    let got = store.list_metrics(a.id, day, day + chrono::Duration::hours(2), 10).await.context("list")?;
    assert_eq!(got, batch[..3].to_vec(), "oldest first, round trip");
    assert_eq!(store.list_metrics(a.id, day, day + chrono::Duration::hours(2), 2).await.context("limit")?.len(), 2);
    let hour0 = store.list_metrics(a.id, day, day + chrono::Duration::hours(1), 10).await.context("hour 0")?;
    assert_eq!(hour0.len(), 2, "to is exclusive");

    // Hourly roll-ups, then a daily one from them; re-running replaces.
    assert_eq!(store.roll_up(Period::Hour, day).await.context("hour 0")?, 2, "a and b");
    assert_eq!(store.roll_up(Period::Hour, day).await.context("again")?, 2);
    store.roll_up(Period::Hour, day + chrono::Duration::hours(1)).await.context("hour 1")?;
    let hours = store.list_rollups(a.id, Period::Hour, day, day + chrono::Duration::days(1)).await.context("hours")?;
    assert_eq!(hours.len(), 2);
    let h0: &MetricsRollup = &hours[0];
    assert_eq!((h0.start, h0.samples, h0.cpu_max, h0.memory_max_bytes), (day, 2, 30.0, 300));
    assert!((h0.cpu_avg - 20.0).abs() < 1e-9 && (h0.memory_avg_bytes - 200.0).abs() < 1e-9, "{h0:?}");
    assert_eq!(h0.rx_bytes, 3500, "the highest counter");
    assert_eq!(store.roll_up(Period::Day, day).await.context("day")?, 2);
    let days = store.list_rollups(a.id, Period::Day, day, day + chrono::Duration::days(1)).await.context("days")?;
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].samples, days[0].cpu_max), (3, 50.0));
    assert!((days[0].cpu_avg - 30.0).abs() < 1e-9, "weighted by samples: {:?}", days[0]);

    // Retention: samples before hour 1 go; hourly roll-ups before hour 1 go; daily stay.
    let gone = store
        .prune_metrics(day + chrono::Duration::hours(1), day + chrono::Duration::hours(1), day)
        .await
        .context("prune")?;
    assert_eq!(gone, 3 + 2, "3 samples, 2 hourly roll-ups (a and b, hour 0)");
    assert_eq!(store.list_metrics(a.id, day, day + chrono::Duration::days(1), 10).await.context("left")?.len(), 1);
    assert_eq!(
        store.list_rollups(a.id, Period::Day, day, day + chrono::Duration::days(1)).await.context("days")?.len(),
        1
    );
    store.delete_server(b.id).await.context("delete b")?;
    assert!(store.list_rollups(b.id, Period::Day, day, day + chrono::Duration::days(1)).await.context("b")?.is_empty());
    Ok(())
}

/// [`crate::ports::TaskStore`] conformance.
pub async fn tasks(store: &dyn Store) -> crate::Result<()> {
    let owner = user("tasker");
    store.create_user(&owner).await.context("user")?;
    let loc = location("tasks");
    store.create_location(&loc).await.context("location")?;
    let n = node("tasks-node", loc.id);
    store.create_node(&n).await.context("node")?;
    let t = template("tasks-template");
    store.create_template(&t).await.context("template")?;
    let srv = server("tasks-server", owner.id, n.id, t.id, 27_000);
    store.create_server(&srv).await.context("server")?;

    let t0 = now();
    let soon = task("soon", srv.id, owner.id, Some(t0));
    let later = task("later", srv.id, owner.id, Some(t0 + chrono::Duration::minutes(5)));
    let mut off = task("off", srv.id, owner.id, Some(t0 - chrono::Duration::minutes(1)));
    off.enabled = false;
    let mut cmd = task("chain", srv.id, owner.id, None);
    cmd.action = TaskAction::Restart;
    cmd.catch_up = CatchUp::RunOnce;
    for x in [&soon, &later, &off, &cmd] {
        store.create_task(x).await.context("create")?;
    }
    assert_eq!(store.create_task(&soon).await.expect_err("dup").kind(), ErrorKind::Conflict);
    let orphan = task("orphan", ServerId::new(), owner.id, None);
    assert_eq!(store.create_task(&orphan).await.expect_err("orphan").kind(), ErrorKind::NotFound);
    assert_eq!(store.get_task(cmd.id).await.context("get")?, cmd, "round trip");
    assert_eq!(store.get_task(TaskId::new()).await.expect_err("missing").kind(), ErrorKind::NotFound);

    let due: Vec<TaskId> = store.due_tasks(t0, 10).await.context("due")?.iter().map(|x| x.id).collect();
    assert_eq!(due, vec![soon.id], "enabled, at or before now");
    let due = store.due_tasks(t0 + chrono::Duration::minutes(10), 10).await.context("due")?;
    assert_eq!(due.iter().map(|x| x.id).collect::<Vec<_>>(), vec![soon.id, later.id], "earliest first");
    assert_eq!(store.due_tasks(t0 + chrono::Duration::minutes(10), 1).await.context("due")?.len(), 1, "limit");
    let listed = store.list_tasks(Some(srv.id), Page::default()).await.context("list")?;
    assert_eq!(listed.total, 4);
    assert_eq!(listed.items.last().map(|x| x.id), Some(cmd.id), "unplanned last");

    // A firing is claimed by compare-and-swap: of two claims on one version, one wins.
    let mut first = soon.clone();
    first.next_run_at = Some(t0 + chrono::Duration::minutes(1));
    first.last_run_at = Some(t0);
    first.run_count = 1;
    first.last_result = Some("ok".into());
    let claimed = store.update_task(&first).await.context("claim")?;
    assert_eq!((claimed.version, claimed.run_count), (1, 1));
    assert_eq!(store.update_task(&first).await.expect_err("second claim").kind(), ErrorKind::Conflict);

    store.delete_task(later.id).await.context("delete")?;
    assert_eq!(store.delete_task(later.id).await.expect_err("again").kind(), ErrorKind::NotFound);
    store.delete_server(srv.id).await.context("server gone")?;
    assert_eq!(store.list_tasks(None, Page::default()).await.context("list")?.total, 0, "tasks go with their server");
    Ok(())
}

/// [`crate::ports::ApiKeyStore`] conformance.
pub async fn api_keys(store: &dyn Store) -> crate::Result<()> {
    let owner = user("keyholder");
    store.create_user(&owner).await.context("user")?;
    let key = api_key("k1abcdef", owner.id);
    store.create_api_key(&key).await.context("create")?;
    let mut same_prefix = api_key("k1abcdef", owner.id);
    same_prefix.name = "other".into();
    assert_eq!(store.create_api_key(&same_prefix).await.expect_err("dup").kind(), ErrorKind::Conflict, "prefix unique");
    let orphan = api_key("k2orphan", UserId::new());
    assert_eq!(store.create_api_key(&orphan).await.expect_err("orphan").kind(), ErrorKind::NotFound);

    let got = store.get_api_key(key.id).await.context("get")?;
    assert_eq!(got, key, "round trip");
    assert_eq!(store.find_api_key("k1abcdef").await.context("find")?, Some(key.clone()));
    assert_eq!(store.find_api_key("nope").await.context("find")?, None);
    assert_eq!(store.get_api_key(ApiKeyId::new()).await.expect_err("missing").kind(), ErrorKind::NotFound);

    // Updates are compare-and-swap and keep the secret; uses are recorded beside them.
    let used = now();
    store.touch_api_key(key.id, used).await.context("touch")?;
    let mut changed = got.clone();
    changed.name = "renamed".into();
    changed.scopes = vec![Permission::ServerRead, Permission::ServerStart];
    changed.secret_hash = "attempt to overwrite".into();
    let stored = store.update_api_key(&changed).await.context("update")?;
    assert_eq!((stored.version, stored.name.as_str()), (1, "renamed"));
    assert_eq!(stored.secret_hash, key.secret_hash, "the secret never changes");
    assert_eq!(stored.last_used_at, Some(used), "an update keeps the last use");
    assert_eq!(store.update_api_key(&changed).await.expect_err("stale").kind(), ErrorKind::Conflict);

    let second = api_key("k3second", owner.id);
    store.create_api_key(&second).await.context("second")?;
    let other = user("other-holder");
    store.create_user(&other).await.context("other")?;
    store.create_api_key(&api_key("k4others", other.id)).await.context("others")?;
    let mine = store.list_api_keys(Some(owner.id), Page::default()).await.context("list")?;
    assert_eq!(mine.total, 2);
    assert!(mine.items.iter().all(|k| k.user_id == owner.id));
    assert_eq!(store.list_api_keys(None, Page::default()).await.context("all")?.total, 3);

    store.delete_api_key(second.id).await.context("delete")?;
    assert_eq!(store.delete_api_key(second.id).await.expect_err("again").kind(), ErrorKind::NotFound);
    store.delete_user(owner.id).await.context("delete user")?;
    assert_eq!(store.find_api_key("k1abcdef").await.context("find")?, None, "keys go with their user");
    Ok(())
}
