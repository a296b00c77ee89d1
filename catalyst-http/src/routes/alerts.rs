//! `/api/alerts` and `/api/alert-rules`: alerts scoped to what the caller may see, resolution
//! one by one or in bulk, statistics, and the rules that raise them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{AlertId, AlertRuleId, NodeId, ServerId};
use catalyst_core::model::{Alert, AlertFilter, AlertRule, Paged, Severity, WebhookDelivery};
use catalyst_runtime::control::{AlertRulePatch, AlertStats, BulkResolved, NewAlertRule};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(alert_stats))
        .routes(routes!(get_alert))
        .routes(routes!(resolve_alert))
        .routes(routes!(bulk_resolve))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
        .routes(routes!(deliveries))
}

/// `?resolved=&server_id=&node_id=&kind=&severity=&offset=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AlertParams {
    /// Only resolved (`true`) or open (`false`) alerts.
    #[serde(default)]
    resolved: Option<bool>,
    /// Only this server's.
    #[serde(default)]
    server_id: Option<ServerId>,
    /// Only this node's.
    #[serde(default)]
    node_id: Option<NodeId>,
    /// Only this kind (`resource_threshold`, `node_offline`, `server_crashed`).
    #[serde(default)]
    kind: Option<String>,
    /// Only this severity.
    #[serde(default)]
    severity: Option<Severity>,
    /// Rows to skip.
    #[serde(default)]
    offset: Option<u64>,
    /// Rows to return (1-500, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// Alerts, newest first, among those the caller may see.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertParams), responses((status = 200, body = Paged<Alert>)))]
async fn list_alerts(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AlertParams>,
) -> ApiResult<Json<Paged<Alert>>> {
    let filter = AlertFilter {
        resolved: q.resolved,
        server_id: q.server_id,
        node_id: q.node_id,
        kind: q.kind,
        severity: q.severity,
        visible_to: None,
    };
    let page = PageQuery { offset: q.offset, limit: q.limit }.page();
    Ok(Json(s.catalyst.list_alerts(&who, filter, page).await?))
}

/// Counts of open and resolved alerts, by severity, among those the caller may see.
#[utoipa::path(get, path = "/api/alerts/stats", tag = "alerts", responses((status = 200, body = AlertStats)))]
async fn alert_stats(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<AlertStats>> {
    Ok(Json(s.catalyst.alert_stats(&who).await?))
}

/// One alert.
#[utoipa::path(get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = AlertId, Path)), responses((status = 200, body = Alert)))]
async fn get_alert(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<AlertId>) -> ApiResult<Json<Alert>> {
    Ok(Json(s.catalyst.get_alert(&who, id).await?))
}

/// Resolve an alert (`alert.resolve`).
#[utoipa::path(post, path = "/api/alerts/{id}/resolve", tag = "alerts", params(("id" = AlertId, Path)), responses((status = 200, body = Alert)))]
async fn resolve_alert(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<AlertId>) -> ApiResult<Json<Alert>> {
    Ok(Json(s.catalyst.resolve_alert(&who, id).await?))
}

/// Alerts to resolve at once.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkResolve {
    ids: Vec<AlertId>,
}

/// Resolve many alerts; those that cannot be are listed in `skipped`.
#[utoipa::path(post, path = "/api/alerts/bulk-resolve", tag = "alerts", request_body = BulkResolve, responses((status = 200, body = BulkResolved)))]
async fn bulk_resolve(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<BulkResolve>,
) -> ApiResult<Json<BulkResolved>> {
    Ok(Json(s.catalyst.bulk_resolve_alerts(&who, &input.ids).await?))
}

/// Every alert rule (`alert.read`).
#[utoipa::path(get, path = "/api/alert-rules", tag = "alerts", responses((status = 200, body = Vec<AlertRule>)))]
async fn list_rules(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Vec<AlertRule>>> {
    Ok(Json(s.catalyst.list_alert_rules(&who).await?))
}

/// Create a rule (`alert.create`).
#[utoipa::path(post, path = "/api/alert-rules", tag = "alerts", request_body = NewAlertRule, responses((status = 201, body = AlertRule)))]
async fn create_rule(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewAlertRule>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_alert_rule(&who, input).await?)))
}

/// Change a rule (`alert.update`).
#[utoipa::path(put, path = "/api/alert-rules/{id}", tag = "alerts", params(("id" = AlertRuleId, Path)), request_body = AlertRulePatch, responses((status = 200, body = AlertRule)))]
async fn update_rule(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<AlertRuleId>,
    Body(patch): Body<AlertRulePatch>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(s.catalyst.update_alert_rule(&who, id, patch).await?))
}

/// Delete a rule (`alert.delete`); its alerts stay.
#[utoipa::path(delete, path = "/api/alert-rules/{id}", tag = "alerts", params(("id" = AlertRuleId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_rule(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<AlertRuleId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_alert_rule(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?alert_id=&offset=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// Only this alert's deliveries.
    #[serde(default)]
    alert_id: Option<AlertId>,
    /// Rows to skip.
    #[serde(default)]
    offset: Option<u64>,
    /// Rows to return (1-500, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// Webhook deliveries with their outcome, newest first (`alert.read`).
#[utoipa::path(get, path = "/api/admin/webhook-deliveries", tag = "alerts", params(DeliveryParams), responses((status = 200, body = Paged<WebhookDelivery>)))]
async fn deliveries(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<Json<Paged<WebhookDelivery>>> {
    let page = PageQuery { offset: q.offset, limit: q.limit }.page();
    Ok(Json(s.catalyst.webhook_deliveries(&who, q.alert_id, page).await?))
}
