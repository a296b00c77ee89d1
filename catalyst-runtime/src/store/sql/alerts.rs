//! `AlertStore` on SQL: alert rules, alerts and webhook deliveries. Expanded inside
//! `impl_sql_store!`, beside its helpers.

macro_rules! sql_alerts {
    ($store:ty) => {
        /// `list_alerts`' filter: `visible_to` sees the alerts of servers they own or share.
        fn alert_filter(q: &mut Builder, f: &AlertFilter) {
            filter(q, "resolved = ", f.resolved);
            filter(q, "server_id = ", f.server_id.map(|s| s.0));
            filter(q, "node_id = ", f.node_id.map(|n| n.0));
            filter(q, "kind = ", f.kind.as_deref());
            filter(q, "severity = ", f.severity.map(severity_str));
            if let Some(u) = f.visible_to {
                q.push(" AND server_id IN (SELECT id FROM servers WHERE owner_id = ").push_bind(u.0);
                q.push(" UNION SELECT server_id FROM server_access WHERE user_id = ").push_bind(u.0).push(")");
            }
        }

        #[async_trait]
        impl AlertStore for $store {
            async fn create_alert_rule(&self, r: &AlertRule) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO alert_rules (id, name, condition, severity, webhooks, enabled, created_by, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(r.id.0)
                .bind(&r.name)
                .bind(Json(&r.condition))
                .bind(severity_str(r.severity))
                .bind(Json(StoredWebhook::from_targets(&r.webhooks)))
                .bind(r.enabled)
                .bind(r.created_by.0)
                .bind(r.version)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("the alert rule exists", (ErrorKind::NotFound, "user not found")))
            }

            async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule> {
                let row = sqlx::query_as::<_, AlertRuleRow>("SELECT * FROM alert_rules WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "alert rule")
            }

            async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
                let rows = sqlx::query_as::<_, AlertRuleRow>("SELECT * FROM alert_rules ORDER BY name, id")
                    .fetch_all(&self.pool)
                    .await;
                all(rows)
            }

            async fn update_alert_rule(&self, r: &AlertRule) -> Result<AlertRule> {
                let row = sqlx::query_as::<_, AlertRuleRow>(
                    "UPDATE alert_rules SET name = $1, condition = $2, severity = $3, webhooks = $4, enabled = $5, \
                         version = version + 1 WHERE id = $6 AND version = $7 RETURNING *",
                )
                .bind(&r.name)
                .bind(Json(&r.condition))
                .bind(severity_str(r.severity))
                .bind(Json(StoredWebhook::from_targets(&r.webhooks)))
                .bind(r.enabled)
                .bind(r.id.0)
                .bind(r.version)
                .fetch_optional(&self.pool)
                .await;
                cas(&self.pool, row, "alert_rules", r.id.0, "alert rule").await?.try_into()
            }

            async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()> {
                let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id.0).execute(&self.pool).await;
                found(done, "alert rule")
            }

            async fn create_alert(&self, a: &Alert) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO alerts (id, rule_id, server_id, node_id, kind, severity, message, resolved, \
                         created_at, resolved_at, resolved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(a.id.0)
                .bind(a.rule_id.map(|r| r.0))
                .bind(a.server_id.map(|s| s.0))
                .bind(a.node_id.map(|n| n.0))
                .bind(&a.kind)
                .bind(severity_str(a.severity))
                .bind(&a.message)
                .bind(a.resolved)
                .bind(a.created_at)
                .bind(a.resolved_at)
                .bind(a.resolved_by.map(|u| u.0))
                .execute(&self.pool)
                .await;
                written(done.on_constraint("the alert exists", (ErrorKind::NotFound, "alert rule not found")))
            }

            async fn get_alert(&self, id: AlertId) -> Result<Alert> {
                let row = sqlx::query_as::<_, AlertRow>("SELECT * FROM alerts WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                one(row, "alert")
            }

            async fn list_alerts(&self, f: &AlertFilter, page: Page) -> Result<Paged<Alert>> {
                let narrow = |q: &mut Builder| alert_filter(q, f);
                let order = "created_at DESC, id DESC";
                decoded(select_page::<AlertRow>(&self.pool, "alerts", narrow, order, page).await?)
            }

            async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: Timestamp) -> Result<Alert> {
                let row = sqlx::query_as::<_, AlertRow>(
                    "UPDATE alerts SET resolved = TRUE, resolved_at = $1, resolved_by = $2 \
                         WHERE id = $3 AND resolved = FALSE RETURNING *",
                )
                .bind(at)
                .bind(by.map(|u| u.0))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await;
                match row.map_err(db_err)? {
                    Some(row) => row.try_into(),
                    None if exists(&self.pool, "alerts", id.0).await? => {
                        Err(Error::conflict("the alert is already resolved"))
                    }
                    None => Err(Error::not_found("alert")),
                }
            }

            async fn last_alert(
                &self,
                rule: AlertRuleId,
                server: Option<ServerId>,
                node: Option<NodeId>,
            ) -> Result<Option<Alert>> {
                let mut q = Builder::new("SELECT * FROM alerts WHERE rule_id = ");
                q.push_bind(rule.0);
                // NULL never equals NULL: "no server" must match as such.
                match server {
                    Some(s) => q.push(" AND server_id = ").push_bind(s.0),
                    None => q.push(" AND server_id IS NULL"),
                };
                match node {
                    Some(n) => q.push(" AND node_id = ").push_bind(n.0),
                    None => q.push(" AND node_id IS NULL"),
                };
                q.push(" ORDER BY created_at DESC, id DESC LIMIT 1");
                maybe(q.build_query_as::<AlertRow>().fetch_optional(&self.pool).await)
            }

            async fn append_delivery(&self, d: &WebhookDelivery) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (id, alert_id, url, event, delivered, attempts, status, error, at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(d.id.0)
                .bind(d.alert_id.map(|a| a.0))
                .bind(&d.url)
                .bind(&d.event)
                .bind(d.delivered)
                .bind(i64::from(d.attempts))
                .bind(d.status.map(i64::from))
                .bind(&d.error)
                .bind(d.at)
                .execute(&self.pool)
                .await;
                written(done.on_constraint("the delivery exists", (ErrorKind::NotFound, "alert not found")))
            }

            async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>> {
                let narrow = |q: &mut Builder| filter(q, "alert_id = ", alert.map(|a| a.0));
                let order = "at DESC, id DESC";
                decoded(select_page::<DeliveryRow>(&self.pool, "webhook_deliveries", narrow, order, page).await?)
            }
        }
    };
}
