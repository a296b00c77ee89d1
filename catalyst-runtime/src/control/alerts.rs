//! Alerts: rules (resource thresholds held for a duration, nodes offline, crashed servers), an
//! engine that evaluates them every 30 s from stored samples and node connections, duplicate
//! suppression for 5 minutes per rule and target, webhooks told about each alert, and
//! resolution. Customers see the alerts of servers they can see; node alerts are operators'.

use std::time::Duration;

use catalyst_core::id::{AlertId, AlertRuleId, NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{
    Alert, AlertCondition, AlertFilter, AlertMetric, AlertRule, Page, Paged, Server, Severity, Timestamp, WebhookTarget,
};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::{Error, ErrorKind, Result, validate};
use serde_json::json;

use super::{AlertRulePatch, AlertStats, BulkResolved, Catalyst, NewAlertRule, Who};

/// How often the engine runs by default.
pub const EVALUATE_EVERY: Duration = Duration::from_secs(30);
/// A rule raises at most one alert per target in this window.
pub const SUPPRESS_FOR: Duration = Duration::from_secs(300);
/// Samples arrive every few seconds: the oldest in a window may start this late.
const SAMPLE_SLACK: i64 = 15;
/// Most webhooks per rule.
const MAX_WEBHOOKS: usize = 10;

fn check_rule(condition: &AlertCondition, webhooks: &[WebhookTarget]) -> Result<()> {
    match condition {
        AlertCondition::ResourceThreshold { metric, above_percent, for_secs, .. } => {
            let max = if *metric == AlertMetric::Cpu { 100_000.0 } else { 100.0 };
            if !(0.0..=max).contains(above_percent) {
                return Err(Error::invalid(format!("condition.above_percent: must be 0 to {max}")));
            }
            if *for_secs > 7 * 86_400 {
                return Err(Error::invalid("condition.for_secs: at most a week"));
            }
        }
        AlertCondition::NodeOffline { for_secs, .. } if *for_secs > 7 * 86_400 => {
            return Err(Error::invalid("condition.for_secs: at most a week"));
        }
        _ => {}
    }
    if webhooks.len() > MAX_WEBHOOKS {
        return Err(Error::invalid(format!("webhooks: at most {MAX_WEBHOOKS}")));
    }
    for w in webhooks {
        let url = url::Url::parse(&w.url).map_err(|e| Error::invalid(format!("webhooks.url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid("webhooks.url: must be http or https"));
        }
    }
    Ok(())
}

/// How full a sample is for `metric`, in percent.
fn percent(metric: AlertMetric, m: &catalyst_core::model::ServerMetrics, server: &Server) -> Option<f64> {
    match metric {
        AlertMetric::Cpu => Some(m.cpu_percent),
        AlertMetric::Memory => {
            (m.memory_limit_bytes > 0).then(|| m.memory_bytes as f64 * 100.0 / m.memory_limit_bytes as f64)
        }
        AlertMetric::Disk => {
            let limit = server.limits.disk_mb as f64 * 1024.0 * 1024.0;
            (limit > 0.0).then(|| m.disk_bytes as f64 * 100.0 / limit)
        }
    }
}

impl Catalyst {
    /// Create a rule (`alert.create`).
    pub async fn create_alert_rule(&self, who: &Principal, input: NewAlertRule) -> Result<AlertRule> {
        let grant = authorize(who, Permission::AlertCreate, Scope::Global)?;
        let created_by = who.user_id().ok_or_else(|| Error::invalid("alert rules belong to users"))?;
        check_rule(&input.condition, &input.webhooks)?;
        let rule = AlertRule {
            id: AlertRuleId::new(),
            name: validate::name("name", &input.name, 100)?,
            condition: input.condition,
            severity: input.severity,
            webhooks: input.webhooks,
            enabled: input.enabled,
            created_by,
            version: 0,
        };
        self.inner.store.create_alert_rule(&rule).await?;
        let target = ("alert_rule", Some(rule.id.to_string()));
        self.audit(Who::Grant(&grant, who), "alert_rule.create", target, true, json!({"name": rule.name})).await;
        Ok(rule)
    }

    /// Every rule (`alert.read`, global).
    pub async fn list_alert_rules(&self, who: &Principal) -> Result<Vec<AlertRule>> {
        authorize(who, Permission::AlertRead, Scope::Global)?;
        self.inner.store.list_alert_rules().await
    }

    /// Change a rule (`alert.update`).
    pub async fn update_alert_rule(
        &self,
        who: &Principal,
        id: AlertRuleId,
        patch: AlertRulePatch,
    ) -> Result<AlertRule> {
        let grant = authorize(who, Permission::AlertUpdate, Scope::Global)?;
        let mut rule = self.inner.store.get_alert_rule(id).await?;
        if let Some(name) = &patch.name {
            rule.name = validate::name("name", name, 100)?;
        }
        rule.condition = patch.condition.unwrap_or(rule.condition);
        rule.severity = patch.severity.unwrap_or(rule.severity);
        rule.webhooks = patch.webhooks.unwrap_or(rule.webhooks);
        rule.enabled = patch.enabled.unwrap_or(rule.enabled);
        check_rule(&rule.condition, &rule.webhooks)?;
        let rule = self.inner.store.update_alert_rule(&rule).await?;
        self.audit(Who::Grant(&grant, who), "alert_rule.update", ("alert_rule", Some(id.to_string())), true, json!({}))
            .await;
        Ok(rule)
    }

    /// Delete a rule (`alert.delete`); its alerts stay.
    pub async fn delete_alert_rule(&self, who: &Principal, id: AlertRuleId) -> Result<()> {
        let grant = authorize(who, Permission::AlertDelete, Scope::Global)?;
        self.inner.store.delete_alert_rule(id).await?;
        self.audit(Who::Grant(&grant, who), "alert_rule.delete", ("alert_rule", Some(id.to_string())), true, json!({}))
            .await;
        Ok(())
    }

    /// The filter limited to what the caller may see: everything with a global `alert.read`,
    /// else the alerts of servers they own or were given.
    fn visible(&self, who: &Principal, mut filter: AlertFilter) -> Result<AlertFilter> {
        if !who.holds(Permission::AlertRead) {
            filter.visible_to = Some(who.user_id().ok_or_else(|| Error::denied("missing permission alert.read"))?);
        }
        Ok(filter)
    }

    /// Alerts, newest first, filtered, among those the caller may see.
    pub async fn list_alerts(&self, who: &Principal, filter: AlertFilter, page: Page) -> Result<Paged<Alert>> {
        let filter = self.visible(who, filter)?;
        self.inner.store.list_alerts(&filter, page).await
    }

    /// One alert; one the caller may not see is `not_found`.
    pub async fn get_alert(&self, who: &Principal, id: AlertId) -> Result<Alert> {
        self.alert_with(who, id, Permission::AlertRead).await
    }

    async fn alert_with(&self, who: &Principal, id: AlertId, permission: Permission) -> Result<Alert> {
        let alert = self.inner.store.get_alert(id).await?;
        let allowed = match alert.server_id {
            _ if authorize(who, permission, Scope::Global).is_ok() => true,
            Some(server) => self.check_server_permission(who, server, permission).await.is_ok(),
            None => false,
        };
        if allowed { Ok(alert) } else { Err(Error::not_found("alert")) }
    }

    /// Resolve one alert (`alert.resolve` on its server, or globally).
    pub async fn resolve_alert(&self, who: &Principal, id: AlertId) -> Result<Alert> {
        self.alert_with(who, id, Permission::AlertResolve).await?;
        let alert = self.inner.store.resolve_alert(id, who.user_id(), self.now()).await?;
        self.audit(Who::Principal(who), "alert.resolve", ("alert", Some(id.to_string())), true, json!({})).await;
        Ok(alert)
    }

    /// Resolve many; the ones that cannot be are reported, not errors.
    pub async fn bulk_resolve_alerts(&self, who: &Principal, ids: &[AlertId]) -> Result<BulkResolved> {
        if ids.len() > 500 {
            return Err(Error::invalid("ids: at most 500 at once"));
        }
        let mut out = BulkResolved::default();
        for id in ids {
            match self.resolve_alert(who, *id).await {
                Ok(_) => out.resolved += 1,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Conflict) => out.skipped.push(*id),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Counts among the alerts the caller may see.
    pub async fn alert_stats(&self, who: &Principal) -> Result<AlertStats> {
        let base = self.visible(who, AlertFilter::default())?;
        let one = Page::new(0, 1);
        let count = |f: AlertFilter| async move { self.inner.store.list_alerts(&f, one).await.map(|p| p.total) };
        let open = |severity: Option<Severity>| AlertFilter { resolved: Some(false), severity, ..base.clone() };
        Ok(AlertStats {
            total: count(base.clone()).await?,
            open: count(open(None)).await?,
            resolved: count(AlertFilter { resolved: Some(true), ..base.clone() }).await?,
            open_info: count(open(Some(Severity::Info))).await?,
            open_warning: count(open(Some(Severity::Warning))).await?,
            open_critical: count(open(Some(Severity::Critical))).await?,
        })
    }

    /// Evaluate every enabled rule now; returns the alerts raised (suppressed ones are not).
    pub async fn evaluate_alerts(&self) -> Result<Vec<Alert>> {
        let now = self.now();
        let mut raised = Vec::new();
        for rule in self.inner.store.list_alert_rules().await?.into_iter().filter(|r| r.enabled) {
            for (server, node, message) in self.hits(&rule, now).await? {
                if let Some(alert) = self.raise(&rule, server, node, message, now).await? {
                    raised.push(alert);
                }
            }
        }
        Ok(raised)
    }

    /// Where a rule's condition holds now: (server, node, message).
    async fn hits(&self, rule: &AlertRule, now: Timestamp) -> Result<Vec<(Option<ServerId>, Option<NodeId>, String)>> {
        let mut out = Vec::new();
        match &rule.condition {
            AlertCondition::ResourceThreshold { metric, above_percent, for_secs, server_id } => {
                let since = now - chrono::Duration::seconds(i64::try_from(*for_secs).unwrap_or(i64::MAX / 2));
                for server in self.servers_for(*server_id).await? {
                    if server.state != ServerState::Running {
                        continue;
                    }
                    let samples = self
                        .inner
                        .store
                        .list_metrics(server.id, since, now + chrono::Duration::seconds(1), 10_000)
                        .await?;
                    let covers =
                        samples.first().is_some_and(|s| s.at <= since + chrono::Duration::seconds(SAMPLE_SLACK));
                    let above =
                        samples.iter().all(|s| percent(*metric, s, &server).is_some_and(|p| p > *above_percent));
                    if covers && above {
                        let metric = serde_json::to_value(metric)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        let msg = format!("{}: {metric} above {above_percent}% for {for_secs} s", server.name);
                        out.push((Some(server.id), None, msg));
                    }
                }
            }
            AlertCondition::NodeOffline { node_id, for_secs } => {
                let limit = now - chrono::Duration::seconds(i64::try_from(*for_secs).unwrap_or(i64::MAX / 2));
                for overview in self.admin_nodes(&Principal::system()).await? {
                    let node = overview.node;
                    if node_id.is_some_and(|id| id != node.id) || overview.online {
                        continue;
                    }
                    if node.last_seen_at.unwrap_or(node.created_at) <= limit {
                        out.push((
                            None,
                            Some(node.id),
                            format!("node {} has been offline for {for_secs} s", node.name),
                        ));
                    }
                }
            }
            AlertCondition::ServerCrashed { server_id } => {
                for server in self.servers_for(*server_id).await? {
                    if server.state == ServerState::Crashed {
                        out.push((Some(server.id), None, format!("{} crashed", server.name)));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn servers_for(&self, id: Option<ServerId>) -> Result<Vec<Server>> {
        if let Some(id) = id {
            return match self.inner.store.get_server(id).await {
                Ok(s) => Ok(vec![s]),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        self.all_servers().await
    }

    /// Store an alert unless the rule raised one for the same target within [`SUPPRESS_FOR`],
    /// and tell the rule's webhooks.
    async fn raise(
        &self,
        rule: &AlertRule,
        server: Option<ServerId>,
        node: Option<NodeId>,
        message: String,
        now: Timestamp,
    ) -> Result<Option<Alert>> {
        let window = chrono::Duration::from_std(SUPPRESS_FOR).unwrap_or_default();
        if let Some(last) = self.inner.store.last_alert(rule.id, server, node).await?
            && now - last.created_at < window
        {
            return Ok(None);
        }
        let alert = Alert {
            id: AlertId::new(),
            rule_id: Some(rule.id),
            server_id: server,
            node_id: node,
            kind: rule.condition.kind().into(),
            severity: rule.severity,
            message,
            resolved: false,
            created_at: now,
            resolved_at: None,
            resolved_by: None,
        };
        self.inner.store.create_alert(&alert).await?;
        let data = serde_json::to_value(&alert).unwrap_or_default();
        for target in rule.webhooks.clone() {
            let (sender, text, data) = (self.inner.webhooks.clone(), alert.message.clone(), data.clone());
            let (store, alert_id) = (self.inner.store.clone(), alert.id);
            self.background().spawn(async move {
                let mut d = sender.send(&target, "alert.raised", &text, &data).await;
                d.alert_id = Some(alert_id);
                if !d.delivered {
                    tracing::warn!(url = %d.url, error = ?d.error, "an alert webhook was not delivered");
                }
                if let Err(e) = store.append_delivery(&d).await {
                    tracing::error!(error = %e, "could not record a webhook delivery");
                }
            });
        }
        Ok(Some(alert))
    }

    /// Webhook deliveries, newest first, of one alert or all (`alert.read`, global).
    pub async fn webhook_deliveries(
        &self,
        who: &Principal,
        alert: Option<AlertId>,
        page: Page,
    ) -> Result<Paged<catalyst_core::model::WebhookDelivery>> {
        authorize(who, Permission::AlertRead, Scope::Global)?;
        self.inner.store.list_deliveries(alert, page).await
    }
}
