//! The operational stores in memory: logs, audit, API keys, tasks, metrics, alerts, backups.

use super::*;

#[async_trait]
impl LogStore for MemoryStore {
    async fn append_logs(&self, lines: &[ServerLog]) -> Result<u64> {
        let mut s = self.lock();
        let mut added = 0;
        for line in lines {
            if !s.servers.contains_key(&line.server_id) {
                return Err(Error::not_found("server"));
            }
        }
        for line in lines {
            if let std::collections::btree_map::Entry::Vacant(e) = s.logs.entry((line.server_id, line.seq)) {
                e.insert(line.clone());
                added += 1;
            }
        }
        Ok(added)
    }

    async fn list_logs(&self, server: ServerId, query: &LogQuery) -> Result<Vec<ServerLog>> {
        let s = self.lock();
        let limit = Page::new(0, query.limit.unwrap_or(100)).effective_limit() as usize;
        Ok(s.logs
            .range((server, i64::MIN)..=(server, i64::MAX))
            .rev()
            .map(|(_, l)| l)
            .filter(|l| query.stream.is_none_or(|st| l.stream == st))
            .filter(|l| query.before.is_none_or(|b| l.seq < b))
            .filter(|l| query.after.is_none_or(|a| l.seq > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn prune_logs(&self, before: Timestamp) -> Result<u64> {
        let mut s = self.lock();
        let n = s.logs.len();
        s.logs.retain(|_, l| l.at >= before);
        Ok((n - s.logs.len()) as u64)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entry: &AuditLog) -> Result<()> {
        self.lock().audit.push(entry.clone());
        Ok(())
    }

    async fn query_audit(&self, query: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
        let s = self.lock();
        let mut rows: Vec<AuditLog> = s.audit.iter().filter(|e| audit_matches(e, query)).cloned().collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
        Ok(page_of(rows, page))
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&key.user_id) {
            return Err(Error::not_found("user"));
        }
        if s.api_keys.values().any(|k| k.id == key.id || k.prefix == key.prefix) {
            return Err(Error::conflict("the API key exists"));
        }
        s.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
        self.lock().api_keys.get(&id).cloned().ok_or_else(|| Error::not_found("API key"))
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>> {
        Ok(self.lock().api_keys.values().find(|k| k.prefix == prefix).cloned())
    }

    async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>> {
        let s = self.lock();
        let mut rows: Vec<ApiKey> =
            s.api_keys.values().filter(|k| user.is_none_or(|u| k.user_id == u)).cloned().collect();
        rows.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(page_of(rows, page))
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<ApiKey> {
        let mut s = self.lock();
        let stored = s.api_keys.get_mut(&key.id).ok_or_else(|| Error::not_found("API key"))?;
        let (v, secret, last_used) = (stored.version, stored.secret_hash.clone(), stored.last_used_at);
        let mut given = key.clone();
        given.secret_hash = secret;
        given.last_used_at = last_used;
        cas(stored, v, &given, key.version, |k| k.version += 1)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
        let mut s = self.lock();
        let key = s.api_keys.get_mut(&id).ok_or_else(|| Error::not_found("API key"))?;
        key.last_used_at = Some(at);
        Ok(())
    }

    async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
        self.lock().api_keys.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("API key"))
    }
}

/// Tasks in the order stores list them: by next firing (unplanned last), then id.
fn task_order(t: &ScheduledTask) -> (bool, Option<Timestamp>, TaskId) {
    (t.next_run_at.is_none(), t.next_run_at, t.id)
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create_task(&self, task: &ScheduledTask) -> Result<()> {
        let mut s = self.lock();
        if !s.servers.contains_key(&task.server_id) {
            return Err(Error::not_found("server"));
        }
        if !s.users.contains_key(&task.created_by) {
            return Err(Error::not_found("user"));
        }
        if s.tasks.contains_key(&task.id) {
            return Err(Error::conflict("the task exists"));
        }
        s.tasks.insert(task.id, task.clone());
        Ok(())
    }

    async fn get_task(&self, id: TaskId) -> Result<ScheduledTask> {
        self.lock().tasks.get(&id).cloned().ok_or_else(|| Error::not_found("task"))
    }

    async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.tasks.values().filter(|t| server.is_none_or(|id| t.server_id == id)).cloned().collect();
        rows.sort_by_key(task_order);
        Ok(page_of(rows, page))
    }

    async fn due_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduledTask>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.tasks.values().filter(|t| t.enabled && t.next_run_at.is_some_and(|n| n <= now)).cloned().collect();
        rows.sort_by_key(task_order);
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn update_task(&self, task: &ScheduledTask) -> Result<ScheduledTask> {
        let mut s = self.lock();
        let stored = s.tasks.get_mut(&task.id).ok_or_else(|| Error::not_found("task"))?;
        let v = stored.version;
        cas(stored, v, task, task.version, |t| t.version += 1)
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.lock().tasks.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("task"))
    }
}

/// Summarise `rows` of one server as the SQL stores do.
fn summarise(server: ServerId, period: Period, start: Timestamp, rows: &[MetricsRollup]) -> MetricsRollup {
    let samples: u64 = rows.iter().map(|r| r.samples).sum();
    let weighted = |f: fn(&MetricsRollup) -> f64| {
        rows.iter().map(|r| f(r) * r.samples as f64).sum::<f64>() / samples.max(1) as f64
    };
    MetricsRollup {
        server_id: server,
        period,
        start,
        samples,
        cpu_avg: weighted(|r| r.cpu_avg),
        cpu_max: rows.iter().map(|r| r.cpu_max).fold(0.0, f64::max),
        memory_avg_bytes: weighted(|r| r.memory_avg_bytes),
        memory_max_bytes: rows.iter().map(|r| r.memory_max_bytes).max().unwrap_or(0),
        disk_max_bytes: rows.iter().map(|r| r.disk_max_bytes).max().unwrap_or(0),
        rx_bytes: rows.iter().map(|r| r.rx_bytes).max().unwrap_or(0),
        tx_bytes: rows.iter().map(|r| r.tx_bytes).max().unwrap_or(0),
    }
}

#[async_trait]
impl MetricsStore for MemoryStore {
    async fn append_metrics(&self, samples: &[ServerMetrics]) -> Result<u64> {
        let mut s = self.lock();
        let mut new = 0;
        for m in samples {
            if !s.servers.contains_key(&m.server_id) {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = s.metrics.entry((m.server_id, m.at)) {
                e.insert(m.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn list_metrics(
        &self,
        server: ServerId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<ServerMetrics>> {
        let s = self.lock();
        Ok(s.metrics.range((server, from)..(server, to)).take(limit as usize).map(|(_, m)| m.clone()).collect())
    }

    async fn roll_up(&self, period: Period, start: Timestamp) -> Result<u64> {
        let mut s = self.lock();
        let end = start + period.length();
        let mut by_server: BTreeMap<ServerId, Vec<MetricsRollup>> = BTreeMap::new();
        match period {
            Period::Hour => {
                for m in s.metrics.values().filter(|m| m.at >= start && m.at < end) {
                    by_server.entry(m.server_id).or_default().push(MetricsRollup {
                        server_id: m.server_id,
                        period,
                        start,
                        samples: 1,
                        cpu_avg: m.cpu_percent,
                        cpu_max: m.cpu_percent,
                        memory_avg_bytes: m.memory_bytes as f64,
                        memory_max_bytes: m.memory_bytes,
                        disk_max_bytes: m.disk_bytes,
                        rx_bytes: m.rx_bytes,
                        tx_bytes: m.tx_bytes,
                    });
                }
            }
            Period::Day => {
                for r in s.rollups.values().filter(|r| r.period == Period::Hour && r.start >= start && r.start < end) {
                    by_server.entry(r.server_id).or_default().push(r.clone());
                }
            }
        }
        let n = by_server.len() as u64;
        for (server, rows) in by_server {
            s.rollups.insert((server, period, start), summarise(server, period, start, &rows));
        }
        Ok(n)
    }

    async fn list_rollups(
        &self,
        server: ServerId,
        period: Period,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<MetricsRollup>> {
        let s = self.lock();
        Ok(s.rollups.range((server, period, from)..(server, period, to)).map(|(_, r)| r.clone()).collect())
    }

    async fn prune_metrics(
        &self,
        samples_before: Timestamp,
        hours_before: Timestamp,
        days_before: Timestamp,
    ) -> Result<u64> {
        let mut s = self.lock();
        let before = s.metrics.len() + s.rollups.len();
        s.metrics.retain(|(_, at), _| *at >= samples_before);
        s.rollups.retain(|(_, period, start), _| match period {
            Period::Hour => *start >= hours_before,
            Period::Day => *start >= days_before,
        });
        Ok((before - s.metrics.len() - s.rollups.len()) as u64)
    }
}

#[async_trait]
impl AlertStore for MemoryStore {
    async fn create_alert_rule(&self, rule: &AlertRule) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&rule.created_by) {
            return Err(Error::not_found("user"));
        }
        if s.alert_rules.contains_key(&rule.id) {
            return Err(Error::conflict("the alert rule exists"));
        }
        s.alert_rules.insert(rule.id, rule.clone());
        Ok(())
    }

    async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule> {
        self.lock().alert_rules.get(&id).cloned().ok_or_else(|| Error::not_found("alert rule"))
    }

    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
        let mut rules: Vec<_> = self.lock().alert_rules.values().cloned().collect();
        rules.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        Ok(rules)
    }

    async fn update_alert_rule(&self, rule: &AlertRule) -> Result<AlertRule> {
        let mut s = self.lock();
        let stored = s.alert_rules.get_mut(&rule.id).ok_or_else(|| Error::not_found("alert rule"))?;
        let v = stored.version;
        cas(stored, v, rule, rule.version, |r| r.version += 1)
    }

    async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()> {
        let mut s = self.lock();
        s.alert_rules.remove(&id).ok_or_else(|| Error::not_found("alert rule"))?;
        for a in s.alerts.values_mut().filter(|a| a.rule_id == Some(id)) {
            a.rule_id = None;
        }
        Ok(())
    }

    async fn create_alert(&self, alert: &Alert) -> Result<()> {
        let mut s = self.lock();
        if s.alerts.contains_key(&alert.id) {
            return Err(Error::conflict("the alert exists"));
        }
        s.alerts.insert(alert.id, alert.clone());
        Ok(())
    }

    async fn get_alert(&self, id: AlertId) -> Result<Alert> {
        self.lock().alerts.get(&id).cloned().ok_or_else(|| Error::not_found("alert"))
    }

    async fn list_alerts(&self, f: &AlertFilter, page: Page) -> Result<Paged<Alert>> {
        let s = self.lock();
        let visible = |a: &Alert| match f.visible_to {
            None => true,
            Some(u) => a.server_id.is_some_and(|id| {
                s.servers.get(&id).is_some_and(|srv| srv.owner_id == u) || s.access.contains_key(&(id, u))
            }),
        };
        let mut rows: Vec<Alert> = s
            .alerts
            .values()
            .filter(|a| {
                f.resolved.is_none_or(|r| a.resolved == r)
                    && f.server_id.is_none_or(|id| a.server_id == Some(id))
                    && f.node_id.is_none_or(|id| a.node_id == Some(id))
                    && f.kind.as_ref().is_none_or(|k| &a.kind == k)
                    && f.severity.is_none_or(|sev| a.severity == sev)
                    && visible(a)
            })
            .cloned()
            .collect();
        rows.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        Ok(page_of(rows, page))
    }

    async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: Timestamp) -> Result<Alert> {
        let mut s = self.lock();
        let a = s.alerts.get_mut(&id).ok_or_else(|| Error::not_found("alert"))?;
        if a.resolved {
            return Err(Error::conflict("the alert is already resolved"));
        }
        a.resolved = true;
        a.resolved_at = Some(at);
        a.resolved_by = by;
        Ok(a.clone())
    }

    async fn last_alert(
        &self,
        rule: AlertRuleId,
        server: Option<ServerId>,
        node: Option<NodeId>,
    ) -> Result<Option<Alert>> {
        let s = self.lock();
        Ok(s.alerts
            .values()
            .filter(|a| a.rule_id == Some(rule) && a.server_id == server && a.node_id == node)
            .max_by_key(|a| (a.created_at, a.id))
            .cloned())
    }

    async fn append_delivery(&self, delivery: &WebhookDelivery) -> Result<()> {
        self.lock().deliveries.push(delivery.clone());
        Ok(())
    }

    async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>> {
        let s = self.lock();
        let mut rows: Vec<_> =
            s.deliveries.iter().filter(|d| alert.is_none_or(|a| d.alert_id == Some(a))).cloned().collect();
        rows.sort_by_key(|d| std::cmp::Reverse((d.at, d.id)));
        Ok(page_of(rows, page))
    }
}

/// The audit filter semantics every store implements.
pub(crate) fn audit_matches(e: &AuditLog, q: &AuditQuery) -> bool {
    q.user_id.is_none_or(|u| e.user_id == Some(u))
        && q.action
            .as_ref()
            .is_none_or(|a| if a.ends_with('.') { e.action.starts_with(a.as_str()) } else { &e.action == a })
        && q.target_type.as_ref().is_none_or(|t| &e.target_type == t)
        && q.target_id.as_ref().is_none_or(|t| e.target_id.as_ref() == Some(t))
        && q.from.is_none_or(|f| e.at >= f)
        && q.to.is_none_or(|t| e.at < t)
}

#[async_trait]
impl BackupStore for MemoryStore {
    async fn create_backup(&self, backup: &Backup) -> Result<()> {
        let mut s = self.lock();
        if !s.servers.contains_key(&backup.server_id) {
            return Err(Error::not_found("server"));
        }
        if s.backups.contains_key(&backup.id) {
            return Err(Error::conflict("the backup exists"));
        }
        s.backups.insert(backup.id, backup.clone());
        Ok(())
    }

    async fn get_backup(&self, id: BackupId) -> Result<Backup> {
        self.lock().backups.get(&id).cloned().ok_or_else(|| Error::not_found("backup"))
    }

    async fn update_backup(&self, backup: &Backup) -> Result<Backup> {
        let mut s = self.lock();
        let stored = s.backups.get_mut(&backup.id).ok_or_else(|| Error::not_found("backup"))?;
        let v = stored.version;
        // What the port says never changes stays as stored.
        let given = Backup {
            server_id: stored.server_id,
            storage: stored.storage,
            created_at: stored.created_at,
            ..backup.clone()
        };
        cas(stored, v, &given, backup.version, |b| b.version += 1)
    }

    async fn list_backups(&self, server: ServerId, page: Page) -> Result<Paged<Backup>> {
        let mut rows: Vec<Backup> = self.lock().backups.values().filter(|b| b.server_id == server).cloned().collect();
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(page_of(rows, page))
    }

    async fn delete_backup(&self, id: BackupId) -> Result<()> {
        self.lock().backups.remove(&id).map(|_| ()).ok_or_else(|| Error::not_found("backup"))
    }

    async fn backup_usage(&self) -> Result<crate::model::BackupUsage> {
        let inner = self.lock();
        let kept = inner.backups.values().filter(|b| b.status != crate::model::BackupStatus::Failed);
        Ok(kept.fold(Default::default(), |u: crate::model::BackupUsage, b| crate::model::BackupUsage {
            backups: u.backups + 1,
            bytes: u.bytes + b.size_bytes,
        }))
    }
}
