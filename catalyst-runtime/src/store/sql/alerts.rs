//! `AlertStore` on SQL: alert rules, alerts and webhook deliveries. Expanded inside `impl_sql_store!`, beside its helpers.

macro_rules! sql_alerts {
    ($store:ty) => {
            #[async_trait]
            impl AlertStore for $store {
                async fn create_alert_rule(&self, r: &AlertRule) -> Result<()> {
                    sqlx::query(
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
                    .await
                    .map_err(|e| map_err(e, "the alert rule exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule> {
                    let row = sqlx::query("SELECT * FROM alert_rules WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("alert rule"))?;
                    alert_rule_from(&row)
                }

                async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
                    let rows = sqlx::query("SELECT * FROM alert_rules ORDER BY name, id")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(alert_rule_from).collect()
                }

                async fn update_alert_rule(&self, r: &AlertRule) -> Result<AlertRule> {
                    let done = sqlx::query(
                        "UPDATE alert_rules SET name = $1, condition = $2, severity = $3, webhooks = $4, enabled = $5, \
                         version = version + 1 WHERE id = $6 AND version = $7",
                    )
                    .bind(&r.name)
                    .bind(Json(&r.condition))
                    .bind(severity_str(r.severity))
                    .bind(Json(StoredWebhook::from_targets(&r.webhooks)))
                    .bind(r.enabled)
                    .bind(r.id.0)
                    .bind(r.version)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "alert_rules", r.id.0, "alert rule").await);
                    }
                    self.get_alert_rule(r.id).await
                }

                async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("alert rule")) } else { Ok(()) }
                }

                async fn create_alert(&self, a: &Alert) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO alerts (id, rule_id, server_id, node_id, kind, severity, message, resolved, created_at, \
                         resolved_at, resolved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
                    .await
                    .map_err(|e| map_err(e, "the alert exists", (ErrorKind::NotFound, "alert rule not found")))?;
                    Ok(())
                }

                async fn get_alert(&self, id: AlertId) -> Result<Alert> {
                    let row = sqlx::query("SELECT * FROM alerts WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("alert"))?;
                    alert_from(&row)
                }

                async fn list_alerts(&self, f: &AlertFilter, page: Page) -> Result<Paged<Alert>> {
                    let (limit, offset) = limit_offset(page);
                    macro_rules! bind_filter {
                        ($q:expr) => {
                            $q.bind(f.resolved)
                                .bind(f.server_id.map(|s| s.0))
                                .bind(f.node_id.map(|n| n.0))
                                .bind(f.kind.as_deref())
                                .bind(f.severity.map(severity_str))
                                .bind(f.visible_to.map(|u| u.0))
                        };
                    }
                    let sql = format!("SELECT * FROM alerts {ALERT_FILTER} ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8");
                    let rows = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM alerts {ALERT_FILTER}");
                    let total = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_one(&self.pool).await.map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(alert_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: Timestamp) -> Result<Alert> {
                    let done = sqlx::query(
                        "UPDATE alerts SET resolved = TRUE, resolved_at = $1, resolved_by = $2 WHERE id = $3 AND resolved = FALSE",
                    )
                    .bind(at)
                    .bind(by.map(|u| u.0))
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        self.get_alert(id).await?;
                        return Err(Error::conflict("the alert is already resolved"));
                    }
                    self.get_alert(id).await
                }

                async fn last_alert(&self, rule: AlertRuleId, server: Option<ServerId>, node: Option<NodeId>) -> Result<Option<Alert>> {
                    let row = sqlx::query(
                        "SELECT * FROM alerts WHERE rule_id = $1 AND (server_id = $2 OR ($2 IS NULL AND server_id IS NULL)) \
                         AND (node_id = $3 OR ($3 IS NULL AND node_id IS NULL)) ORDER BY created_at DESC, id DESC LIMIT 1",
                    )
                    .bind(rule.0)
                    .bind(server.map(|s| s.0))
                    .bind(node.map(|n| n.0))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(alert_from).transpose()
                }

                async fn append_delivery(&self, d: &WebhookDelivery) -> Result<()> {
                    sqlx::query(
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
                    .await
                    .map_err(|e| map_err(e, "the delivery exists", (ErrorKind::NotFound, "alert not found")))?;
                    Ok(())
                }

                async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>> {
                    let (limit, offset) = limit_offset(page);
                    let alert = alert.map(|a| a.0);
                    let rows = sqlx::query(
                        "SELECT * FROM webhook_deliveries WHERE ($1 IS NULL OR alert_id = $1) \
                         ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3",
                    )
                    .bind(alert)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE ($1 IS NULL OR alert_id = $1)")
                        .bind(alert)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(delivery_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }
            }
    };
}
