//! The alert engine under a manual clock: a threshold fires only when held for its duration,
//! duplicates are suppressed for 5 minutes, webhooks reach a real receiver signed, alerts are
//! resolved (one by one and in bulk) and counted, nodes offline are noticed, and customers see
//! only their servers' alerts.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::clock::Clock;
use catalyst_core::id::ServerId;
use catalyst_core::model::{
    AlertCondition, AlertFilter, AlertMetric, Page, ServerMetrics, Severity, WebhookFormat, WebhookTarget,
};
use catalyst_core::permission::Principal;
use catalyst_core::ports::Store;
use catalyst_runtime::control::{NewAlertRule, NewLocation, NewNode};
use catalyst_runtime::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSender};

use crate::tasks::setup;
use crate::webhooks::receiver;

/// Samples of `server` every 10 s over the last `secs` seconds at `cpu` percent.
async fn samples(store: &dyn Store, server: ServerId, now: catalyst_core::model::Timestamp, secs: i64, cpu: f64) {
    let batch: Vec<ServerMetrics> = (0..=secs / 10)
        .map(|i| ServerMetrics {
            server_id: server,
            at: now - chrono::Duration::seconds(secs - i * 10),
            cpu_percent: cpu,
            memory_bytes: 100 << 20,
            memory_limit_bytes: 1 << 30,
            rx_bytes: 0,
            tx_bytes: 0,
            disk_bytes: 0,
        })
        .collect();
    store.append_metrics(&batch).await.expect("samples");
}

/// An administrator (rules belong to users).
async fn operator(catalyst: &catalyst_runtime::Catalyst) -> Principal {
    let admin = catalyst.bootstrap_admin("ops@example.test", "ops", "ops-password-1".into()).await.expect("admin");
    catalyst.principal_for(admin.expect("new admin").id).await.expect("principal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_fire_when_held_are_suppressed_notify_and_resolve() {
    let (store, _db) = crate::support::sqlite().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let s = setup(store.clone()).await;
    let system = operator(&s.catalyst).await;
    let (url, seen) = receiver(vec![200]).await;
    let hot = NewAlertRule {
        name: "hot".into(),
        condition: AlertCondition::ResourceThreshold {
            metric: AlertMetric::Cpu,
            above_percent: 90.0,
            for_secs: 60,
            server_id: Some(s.server),
        },
        severity: Severity::Critical,
        webhooks: vec![WebhookTarget { url, format: WebhookFormat::Generic, secret: Some("hook-secret".into()) }],
        enabled: true,
    };
    let rule = s.catalyst.create_alert_rule(&system, hot.clone()).await.expect("rule");
    let slow = NewAlertRule {
        name: "slow".into(),
        condition: AlertCondition::ResourceThreshold {
            metric: AlertMetric::Cpu,
            above_percent: 90.0,
            for_secs: 600,
            server_id: None,
        },
        webhooks: vec![],
        ..hot.clone()
    };
    s.catalyst.create_alert_rule(&system, slow).await.expect("rule");
    let memory = NewAlertRule {
        name: "memory".into(),
        condition: AlertCondition::ResourceThreshold {
            metric: AlertMetric::Memory,
            above_percent: 50.0,
            for_secs: 60,
            server_id: None,
        },
        webhooks: vec![],
        ..hot.clone()
    };
    s.catalyst.create_alert_rule(&system, memory).await.expect("rule");

    // Held for 40 s only: nothing. Held for 70 s: the 60 s rule fires, not the 10-minute one,
    // and memory (10 % of the limit) stays quiet.
    let now = s.clock.now();
    samples(store.as_ref(), s.server, now, 40, 95.0).await;
    assert!(s.catalyst.evaluate_alerts().await.expect("evaluate").is_empty(), "not held long enough");
    s.clock.advance(Duration::from_secs(30));
    let now = s.clock.now();
    samples(store.as_ref(), s.server, now, 70, 95.0).await;
    let raised = s.catalyst.evaluate_alerts().await.expect("evaluate");
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = &raised[0];
    assert_eq!((alert.rule_id, alert.server_id, alert.severity), (Some(rule.id), Some(s.server), Severity::Critical));
    assert_eq!(alert.kind, "resource_threshold");

    // The webhook reached the receiver, signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().expect("log").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the webhook never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = seen.lock().expect("log")[0].clone();
    let ts: i64 = got.header(TIMESTAMP_HEADER).expect("timestamp").parse().expect("number");
    assert_eq!(got.header(SIGNATURE_HEADER), Some(WebhookSender::signature("hook-secret", ts, &got.body).as_str()));
    let body: serde_json::Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(body["event"], "alert.raised");
    assert_eq!(body["data"]["id"], alert.id.to_string());

    // Still hot two minutes later: suppressed. Six minutes later: raised again.
    s.clock.advance(Duration::from_secs(120));
    samples(store.as_ref(), s.server, s.clock.now(), 70, 97.0).await;
    assert!(s.catalyst.evaluate_alerts().await.expect("evaluate").is_empty(), "suppressed within 5 minutes");
    s.clock.advance(Duration::from_secs(240));
    samples(store.as_ref(), s.server, s.clock.now(), 70, 97.0).await;
    let again = s.catalyst.evaluate_alerts().await.expect("evaluate");
    assert_eq!(again.len(), 1, "{again:?}");

    // Resolution, one and in bulk; statistics follow.
    let resolved = s.catalyst.resolve_alert(&s.owner, alert.id).await.expect("resolve");
    assert!(resolved.resolved && resolved.resolved_by == s.owner.user_id());
    let twice = s.catalyst.resolve_alert(&s.owner, alert.id).await.expect_err("already");
    assert_eq!(twice.kind(), catalyst_core::ErrorKind::Conflict);
    let stats = s.catalyst.alert_stats(&s.owner).await.expect("stats");
    assert_eq!((stats.total, stats.open, stats.resolved, stats.open_critical), (2, 1, 1, 1));
    let bulk = s.catalyst.bulk_resolve_alerts(&s.owner, &[again[0].id, alert.id]).await.expect("bulk");
    assert_eq!((bulk.resolved, bulk.skipped.clone()), (1, vec![alert.id]));
    assert_eq!(s.catalyst.alert_stats(&s.owner).await.expect("stats").open, 0);
    // Both deliveries are recorded with their alert.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let recorded = s.catalyst.webhook_deliveries(&system, None, Page::default()).await.expect("deliveries");
        if recorded.items.iter().filter(|d| d.delivered).count() == 2 {
            let first = s.catalyst.webhook_deliveries(&system, Some(alert.id), Page::default()).await.expect("one");
            assert_eq!((first.total, first.items[0].status, first.items[0].attempts), (1, Some(200), 1));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "deliveries not recorded: {recorded:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = s.catalyst.webhook_deliveries(&s.owner, None, Page::default()).await.expect_err("operators only");
    assert_eq!(refused.kind(), catalyst_core::ErrorKind::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_nodes_raise_operator_alerts_that_customers_do_not_see() {
    let (store, _db) = crate::support::sqlite().await;
    let s = setup(Arc::new(store)).await;
    let system = operator(&s.catalyst).await;
    let loc = s
        .catalyst
        .create_location(&system, NewLocation { name: "far".into(), description: String::new() })
        .await
        .expect("location");
    let ghost = NewNode {
        name: "ghost".into(),
        location_id: loc.id,
        fqdn: "ghost.example.test".into(),
        memory_mb: 1024,
        disk_mb: 1024,
        overallocate_percent: 0,
    };
    let ghost = s.catalyst.create_node(&system, ghost).await.expect("node");
    let offline = NewAlertRule {
        name: "offline".into(),
        condition: AlertCondition::NodeOffline { node_id: None, for_secs: 300 },
        severity: Severity::Warning,
        webhooks: vec![],
        enabled: true,
    };
    s.catalyst.create_alert_rule(&system, offline).await.expect("rule");
    assert!(s.catalyst.evaluate_alerts().await.expect("evaluate").is_empty(), "just created");
    s.clock.advance(Duration::from_secs(301));
    let raised = s.catalyst.evaluate_alerts().await.expect("evaluate");
    assert_eq!(raised.len(), 1, "only the node without an agent: {raised:?}");
    assert_eq!((raised[0].node_id, raised[0].kind.as_str()), (Some(ghost.id), "node_offline"));

    let mine = s.catalyst.list_alerts(&s.owner, AlertFilter::default(), Page::default()).await.expect("list");
    assert_eq!(mine.total, 0, "a node alert is not a customer's");
    let hidden = s.catalyst.get_alert(&s.owner, raised[0].id).await.expect_err("hidden");
    assert_eq!(hidden.kind(), catalyst_core::ErrorKind::NotFound);
    let all = s.catalyst.list_alerts(&system, AlertFilter::default(), Page::default()).await.expect("list");
    assert_eq!(all.total, 1);
    let refused = s.catalyst.create_alert_rule(
        &s.owner,
        NewAlertRule {
            name: "mine".into(),
            condition: AlertCondition::ServerCrashed { server_id: Some(s.server) },
            severity: Severity::Info,
            webhooks: vec![],
            enabled: true,
        },
    );
    assert_eq!(refused.await.expect_err("customers").kind(), catalyst_core::ErrorKind::PermissionDenied);
}
