//! Operator surfaces over REST: API keys (scopes, rate limits, lifetime), admin views and
//! audit queries, metrics roll-ups and the Prometheus export.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::api::{Api, error_code};

#[tokio::test]
async fn api_keys_act_within_scope_limit_and_lifetime() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let body = json!({"name": "keyed", "owner_id": serde_json::Value::Null, "node_id": node, "template_id": template, "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let (admin_id, _) = (api.ok(Method::GET, "/api/auth/me", &api.admin, None).await["user"]["id"].clone(), ());
    let mut body = body;
    body["owner_id"] = admin_id;
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let server = server["id"].as_str().expect("id").to_string();

    // Created once with its secret; the list never shows it again.
    let created = api
        .ok(
            Method::POST,
            "/api/admin/api-keys",
            &api.admin,
            Some(json!({"name": "billing", "scopes": ["server.read", "apikey.create"], "rate_limit": 4, "rate_window_secs": 3600})),
        )
        .await;
    let secret = created["key"].as_str().expect("key").to_string();
    assert!(secret.starts_with("catalyst_") && secret.split('_').count() == 3, "{secret}");
    assert!(created.get("secret_hash").is_none());
    let id = created["id"].as_str().expect("id").to_string();
    let listed = api.ok(Method::GET, "/api/admin/api-keys", &api.admin, None).await;
    assert!(!listed.to_string().contains(&secret[secret.len() - 20..]), "the secret is shown once");

    // Within scope, as x-api-key and as a bearer token.
    let with_key = |method: Method, path: String, body: Option<Value>| {
        let mut req = Request::builder().method(method).uri(path).header("x-api-key", secret.clone());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request")
    };
    let send = |req: Request<Body>| async {
        let res = api.router.clone().oneshot(req).await.expect("response");
        let status = res.status();
        let retry = res.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null), retry)
    };
    let (status, v, _) = send(with_key(Method::GET, format!("/api/servers/{server}"), None)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v, _) = api.call(Method::GET, &format!("/api/servers/{server}"), Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK, "bearer: {v}");

    // Outside scope: refused even though its creator is an administrator; it cannot mint a
    // key with more than it holds either.
    let (status, v, _) = send(with_key(Method::POST, format!("/api/servers/{server}/stop"), None)).await;
    assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"), "{v}");
    let wider = json!({"name": "wider", "scopes": ["node.create"]});
    let (status, v, _) = send(with_key(Method::POST, "/api/admin/api-keys".into(), Some(wider))).await;
    assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"), "{v}");

    // Past its limit (4 per hour; 4 used above): 429 with Retry-After.
    let (status, v, retry) = send(with_key(Method::GET, format!("/api/servers/{server}"), None)).await;
    assert_eq!((status, error_code(&v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{v}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=3600).contains(&s)));

    // Revoked: 401 at once, and it stays revoked.
    api.ok(Method::PUT, &format!("/api/admin/api-keys/{id}"), &api.admin, Some(json!({"revoked": true}))).await;
    let (status, v, _) = send(with_key(Method::GET, format!("/api/servers/{server}"), None)).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{v}");
    let (status, _, _) = api
        .call(Method::PUT, &format!("/api/admin/api-keys/{id}"), Some(&api.admin), Some(json!({"revoked": false})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Expired: 401; deleted or forged: 401.
    let other = api
        .ok(Method::POST, "/api/admin/api-keys", &api.admin, Some(json!({"name": "short", "scopes": ["server.read"]})))
        .await;
    let other_key = other["key"].as_str().expect("key").to_string();
    let other_id = other["id"].as_str().expect("id").to_string();
    let (status, _, _) = api.call(Method::GET, "/api/servers", Some(&other_key), None).await;
    assert_eq!(status, StatusCode::OK);
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    api.ok(Method::PUT, &format!("/api/admin/api-keys/{other_id}"), &api.admin, Some(json!({"expires_at": past})))
        .await;
    let (status, v, _) = api.call(Method::GET, "/api/servers", Some(&other_key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("expired")), "{v}");
    let forged = format!("{}0", &other_key[..other_key.len() - 1]);
    let (status, _, _) = api.call(Method::GET, "/api/servers", Some(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) =
        api.call(Method::DELETE, &format!("/api/admin/api-keys/{other_id}"), Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Every use is in the audit log, with the key as the actor.
    let uses =
        api.ok(Method::GET, &format!("/api/admin/audit-logs?action=apikey.use&target_id={id}"), &api.admin, None).await;
    assert_eq!(uses["total"], 4, "{uses}");
    assert_eq!(uses["items"][0]["actor"]["type"], "api_key");
    let limited = api.ok(Method::GET, "/api/admin/audit-logs?action=apikey.rate_limited", &api.admin, None).await;
    assert_eq!(limited["total"], 1);
}

#[tokio::test]
async fn admin_views_and_audit_queries() {
    let api = Api::new().await;
    let (node, _) = api.world().await;
    let (_, customer) = api.user("carol").await;
    for path in [
        "/api/admin/stats",
        "/api/admin/users",
        "/api/admin/nodes",
        "/api/admin/servers",
        "/api/admin/health",
        "/api/admin/audit-logs",
        "/api/admin/api-keys",
    ] {
        let (status, v, _) = api.call(Method::GET, path, Some(&customer), None).await;
        assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"), "{path}");
    }
    let stats = api.ok(Method::GET, "/api/admin/stats", &api.admin, None).await;
    assert_eq!(
        (stats["users"].as_u64(), stats["nodes"].as_u64(), stats["nodes_online"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        (stats["templates"].as_u64(), stats["servers"].as_u64(), stats["locations"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    let nodes = api.ok(Method::GET, "/api/admin/nodes", &api.admin, None).await;
    assert_eq!(nodes[0]["node"]["id"], node.as_str());
    assert_eq!((nodes[0]["online"].as_bool(), nodes[0]["memory_capacity_mb"].as_u64()), (Some(true), Some(8192)));
    let health = api.ok(Method::GET, "/api/admin/health", &api.admin, None).await;
    assert_eq!((health["status"].as_str(), health["database"].as_str()), (Some("ok"), Some("ok")), "{health}");
    assert_eq!(api.ok(Method::GET, "/api/admin/users", &api.admin, None).await["total"], 2);

    // Filters: by action prefix, by user, by time; bad filters are refused.
    let logins = api.ok(Method::GET, "/api/admin/audit-logs?action=auth.", &api.admin, None).await;
    assert!(
        logins["items"].as_array().is_some_and(
            |i| !i.is_empty() && i.iter().all(|e| e["action"].as_str().is_some_and(|a| a.starts_with("auth.")))
        ),
        "{logins}"
    );
    let created = api.ok(Method::GET, "/api/admin/audit-logs?action=node.create&limit=1", &api.admin, None).await;
    assert_eq!(created["total"], 1);
    let admin_id = created["items"][0]["user_id"].as_str().expect("user").to_string();
    let by_admin = api.ok(Method::GET, &format!("/api/admin/audit-logs?user_id={admin_id}"), &api.admin, None).await;
    assert!(by_admin["items"].as_array().is_some_and(|i| i.iter().all(|e| e["user_id"] == admin_id.as_str())));
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let none = api.ok(Method::GET, &format!("/api/admin/audit-logs?from={future}"), &api.admin, None).await;
    assert_eq!(none["total"], 0);
    let (status, _, _) = api.call(Method::GET, "/api/admin/audit-logs?when=now", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metrics_are_stored_rolled_up_and_exported_for_prometheus() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let me = api.ok(Method::GET, "/api/auth/me", &api.admin, None).await["user"]["id"].clone();
    let body = json!({"name": "measured", "owner_id": me, "node_id": node, "template_id": template, "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let id = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await["id"].as_str().expect("id").to_string();
    api.wait_state(&id, &api.admin, "stopped").await;
    api.ok(Method::POST, &format!("/api/servers/{id}/start"), &api.admin, None).await;
    api.wait_state(&id, &api.admin, "running").await;

    // Samples the node reports are stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let v = api.ok(Method::GET, &format!("/api/servers/{id}/metrics"), &api.admin, None).await;
        if v["samples"].as_array().is_some_and(|s| s.len() >= 2) {
            break v["samples"].as_array().expect("samples").len();
        }
        assert!(tokio::time::Instant::now() < deadline, "no samples stored: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Rolled up by the maintenance pass.
    api.catalyst.run_metrics_maintenance().await.expect("maintenance");
    let hours = api.ok(Method::GET, &format!("/api/servers/{id}/metrics?resolution=hour"), &api.admin, None).await;
    let hour = &hours["rollups"][0];
    assert!(hour["samples"].as_u64().is_some_and(|n| n as usize >= samples), "{hours}");
    let days = api.ok(Method::GET, &format!("/api/servers/{id}/metrics?resolution=day"), &api.admin, None).await;
    assert_eq!(days["rollups"].as_array().map(Vec::len), Some(1), "{days}");
    let (status, v, _) =
        api.call(Method::GET, &format!("/api/servers/{id}/metrics?resolution=minute"), Some(&api.admin), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));

    // The Prometheus export: operators only, valid exposition text.
    let (_, customer) = api.user("dave").await;
    assert_eq!(api.call(Method::GET, "/metrics", Some(&customer), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.call(Method::GET, "/metrics", None, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, text, headers) = api.call(Method::GET, "/metrics", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().expect("type").starts_with("application/openmetrics-text"));
    let text = text.as_str().expect("text").to_string();
    assert!(text.contains("catalyst_servers{state=\"running\"} 1"), "{text}");
    assert!(text.contains("catalyst_nodes{online=\"true\"} 1"), "{text}");
    assert!(text.contains(&format!("catalyst_server_cpu_percent{{server_id=\"{id}\"}}")), "{text}");
    assert!(
        text.contains(&format!("catalyst_node_memory_capacity_bytes{{node_id=\"{node}\"}} {}", 8192u64 << 20)),
        "{text}"
    );
    assert!(text.contains(&format!("catalyst_node_cpu_percent{{node_id=\"{node}\"}}")), "{text}");
    promtool_accepts(&text).await;
}

/// `promtool check metrics` (Debian's prometheus package) on `text`.
async fn promtool_accepts(text: &str) {
    use tokio::io::AsyncWriteExt;
    let spawned = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        assert!(std::env::var("CI").is_err(), "promtool is required in CI (Debian package prometheus)");
        eprintln!("!!! SKIPPED: promtool check (install Debian's prometheus package)");
        return;
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool");
    assert!(
        out.status.success(),
        "promtool refused the metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
