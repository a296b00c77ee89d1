use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use catalyst_core::clock::SystemClock;
use catalyst_core::id::NodeId;
use catalyst_core::testing::FakeRuntime;
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing::{ADMIN_EMAIL, ADMIN_PASSWORD, TestWorld};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct Api {
    pub(crate) router: Router,
    pub(crate) catalyst: catalyst_runtime::Catalyst,
    pub(crate) link: NodeHub,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) admin: String,
}

impl Api {
    pub(crate) async fn new() -> Self {
        let w = TestWorld::sqlite().await.with_admin().build().await;
        let admin = w.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let TestWorld { catalyst, hub: link, dir, .. } = w;
        let router = catalyst_http::router(catalyst.clone(), Some(link.clone()));
        Self { router, catalyst, link, dir, admin }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, HeaderMap) {
        match body {
            Some(b) => {
                self.call_with(method, path, token, &[("content-type", "application/json")], Body::from(b.to_string()))
                    .await
            }
            None => self.call_with(method, path, token, &[], Body::empty()).await,
        }
    }

    /// A request with headers and a raw body.
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, Value, HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).expect("request");
        let res = self.router.clone().oneshot(req).await.expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value, headers)
    }

    pub(crate) async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value, _) = self.call(method.clone(), path, Some(token), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> String {
        let (status, v, _) =
            self.call(Method::POST, "/api/auth/login", None, Some(json!({"email": email, "password": password}))).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["access_token"].as_str().expect("token").to_string()
    }

    pub(crate) async fn user(&self, name: &str) -> (String, String) {
        let body = json!({"email": format!("{name}@example.test"), "username": name, "password": "password-123"});
        let (status, v, _) = self.call(Method::POST, "/api/auth/register", None, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        (id, self.login(&format!("{name}@example.test"), "password-123").await)
    }

    /// A location, a node with a daemon over the fake runtime, and a template.
    pub(crate) async fn world(&self) -> (String, String) {
        let (node, template, _) = self.world_daemon().await;
        (node, template)
    }

    /// [`Api::world`], with the node's daemon (to take the node away and bring it back).
    pub(crate) async fn world_daemon(&self) -> (String, String, NodeDaemon) {
        let loc = self.ok(Method::POST, "/api/locations", &self.admin, Some(json!({"name": "eu"}))).await;
        let node = self
            .ok(Method::POST, "/api/nodes", &self.admin, Some(json!({"name": "n1", "location_id": loc["id"], "fqdn": "n1.example.test", "memory_mb": 8192, "disk_mb": 100000})))
            .await;
        let node_id: NodeId = node["id"].as_str().expect("id").parse().expect("node id");
        let daemon = NodeDaemon::new(
            node_id,
            Arc::new(FakeRuntime::new()),
            Arc::new(SystemClock),
            DaemonConfig::new(self.dir.path()),
        );
        daemon.spawn_reporters(Duration::from_millis(100), Duration::from_secs(30));
        self.link.add_node(daemon.clone());
        let template = self
            .ok(
                Method::POST,
                "/api/templates",
                &self.admin,
                Some(json!({"name": "game", "image": "img", "startup": "./run --port {{SERVER_PORT}}", "stop": {"type": "command", "value": "stop"}, "done_patterns": [{"type": "substring", "value": "Done"}]})),
            )
            .await;
        (node["id"].as_str().expect("id").to_string(), template["id"].as_str().expect("id").to_string(), daemon)
    }

    pub(crate) async fn wait_state(&self, server: &str, token: &str, state: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.ok(Method::GET, &format!("/api/servers/{server}"), token, None).await;
            if v["state"] == state {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never {state}: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error body>")
}

#[tokio::test]
async fn health_answers_without_auth_with_security_headers() {
    let api = Api::new().await;
    let (status, v, headers) = api.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"].to_str().unwrap_or_default().contains("default-src 'none'"));
}

#[tokio::test]
async fn auth_flow_and_error_bodies() {
    let api = Api::new().await;
    let (status, v, _) = api.call(Method::GET, "/api/auth/me", None, None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let (status, v, _) = api.call(Method::GET, "/api/auth/me", Some("not-a-jwt"), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let me = api.ok(Method::GET, "/api/auth/me", &api.admin, None).await;
    assert_eq!(me["user"]["email"], "admin@example.test");
    assert!(me["user"].get("password_hash").is_none(), "the hash is never serialized");

    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "bad", "username": "bob", "password": "password-123"})),
        )
        .await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "b@example.test", "username": "bob", "password": "password-123", "admin": true})),
        )
        .await;
    assert_eq!(error_code(&v), "invalid_input", "unknown fields are refused ({status})");
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "admin@example.test", "password": "nope-nope"})),
        )
        .await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // Malformed JSON and oversized bodies get the same error shape.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from("{nope"))
        .expect("req");
    let res = api.router.clone().oneshot(req).await.expect("res");
    assert!(res.status().is_client_error());
    let big = "x".repeat(catalyst_http::MAX_BODY_BYTES + 10);
    let (status, v, _) =
        api.call(Method::POST, "/api/auth/login", None, Some(json!({"email": big, "password": "x"}))).await;
    assert_eq!((status, error_code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"));

    // Refresh rotates; logout ends the session.
    let (_, login, _) = api
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "admin@example.test", "password": "admin-password"})),
        )
        .await;
    let refreshed =
        api.ok(Method::POST, "/api/auth/refresh", "", Some(json!({"refresh_token": login["refresh_token"]}))).await;
    let token = refreshed["access_token"].as_str().expect("token");
    let (status, _, _) = api.call(Method::POST, "/api/auth/logout", Some(token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.call(Method::GET, "/api/auth/me", Some(token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Unknown routes and malformed ids.
    let (status, v, _) = api.call(Method::GET, "/api/nope", Some(&api.admin), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, v, _) = api.call(Method::GET, "/api/servers/not-a-uuid", Some(&api.admin), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
}

#[tokio::test]
async fn server_lifecycle_over_rest_and_object_level_authorization() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (alice, alice_token) = api.user("alice").await;
    let (bob, bob_token) = api.user("bob").await;

    let body = json!({"name": "survival", "owner_id": alice, "node_id": node, "template_id": template, "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let (status, v, _) = api.call(Method::POST, "/api/servers", Some(&alice_token), Some(body.clone())).await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::FORBIDDEN, "permission_denied"),
        "customers cannot create servers"
    );
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body.clone())).await;
    let id = server["id"].as_str().expect("id").to_string();
    let (status, v, _) = api.call(Method::POST, "/api/servers", Some(&api.admin), Some(body)).await;
    assert_eq!((status, error_code(&v)), (StatusCode::CONFLICT, "conflict"), "allocation taken");
    api.wait_state(&id, &alice_token, "stopped").await;

    // The owner drives it; the console works; the table refuses nonsense.
    let (status, v, _) = api.call(Method::POST, &format!("/api/servers/{id}/stop"), Some(&alice_token), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    api.ok(Method::POST, &format!("/api/servers/{id}/start"), &alice_token, None).await;
    api.wait_state(&id, &alice_token, "running").await;
    api.ok(Method::POST, &format!("/api/servers/{id}/command"), &alice_token, Some(json!({"command": "say hi"}))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs =
            api.ok(Method::GET, &format!("/api/servers/{id}/logs?stream=stdout&limit=50"), &alice_token, None).await;
        if logs.as_array().is_some_and(|l| l.iter().any(|x| x["line"] == "> say hi")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "echo never stored: {logs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, v, _) =
        api.call(Method::GET, &format!("/api/servers/{id}/logs?stream=nonsense"), Some(&alice_token), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));

    // Someone else's server is indistinguishable from a missing one.
    for (method, path) in [
        (Method::GET, format!("/api/servers/{id}")),
        (Method::POST, format!("/api/servers/{id}/stop")),
        (Method::GET, format!("/api/servers/{id}/logs")),
    ] {
        let (status, v, _) = api.call(method, &path, Some(&bob_token), None).await;
        assert_eq!((status, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    let listed = api.ok(Method::GET, "/api/servers", &bob_token, None).await;
    assert_eq!(listed["total"], 0);

    // A subuser with console access only.
    api.ok(
        Method::POST,
        &format!("/api/servers/{id}/access"),
        &alice_token,
        Some(json!({"user_id": bob, "permissions": ["server.read", "console.read"]})),
    )
    .await;
    api.ok(Method::GET, &format!("/api/servers/{id}"), &bob_token, None).await;
    let (status, v, _) = api.call(Method::POST, &format!("/api/servers/{id}/stop"), Some(&bob_token), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"));
    let (status, _, _) =
        api.call(Method::DELETE, &format!("/api/servers/{id}/access/{bob}"), Some(&alice_token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.call(Method::GET, &format!("/api/servers/{id}"), Some(&bob_token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Billing: suspend stops it and blocks starts; operators only.
    let (status, _, _) = api.call(Method::POST, &format!("/api/servers/{id}/suspend"), Some(&alice_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.ok(Method::POST, &format!("/api/servers/{id}/suspend"), &api.admin, None).await;
    api.wait_state(&id, &alice_token, "suspended").await;
    let (status, v, _) = api.call(Method::POST, &format!("/api/servers/{id}/start"), Some(&alice_token), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    api.ok(Method::POST, &format!("/api/servers/{id}/unsuspend"), &api.admin, None).await;
    api.wait_state(&id, &alice_token, "stopped").await;
    let (status, _, _) = api.call(Method::DELETE, &format!("/api/servers/{id}"), Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.call(Method::GET, &format!("/api/servers/{id}"), Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nodes list their connection state; a deployment token is shown once.
    let nodes = api.ok(Method::GET, "/api/nodes", &api.admin, None).await;
    assert_eq!(nodes["items"][0]["online"], true);
    let token = api.ok(Method::POST, &format!("/api/nodes/{node}/deployment-token"), &api.admin, None).await;
    assert!(token["token"].as_str().is_some_and(|t| t.len() >= 32));
    let node_view = api.ok(Method::GET, &format!("/api/nodes/{node}"), &api.admin, None).await;
    assert!(node_view.get("deployment_token_hash").is_none(), "hashes are never serialized");
}

#[tokio::test]
async fn openapi_document_describes_every_route_and_swagger_ui_is_served() {
    let api = Api::new().await;
    let (status, doc, _) = api.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    assert_eq!(doc, serde_json::to_value(catalyst_http::openapi_document()).expect("json"), "served = generated");

    // The spec's endpoints, each with its method.
    let expected = [
        ("post", "/api/auth/register"),
        ("post", "/api/auth/login"),
        ("get", "/api/auth/me"),
        ("post", "/api/auth/refresh"),
        ("post", "/api/auth/logout"),
        ("get", "/api/locations"),
        ("post", "/api/locations"),
        ("put", "/api/locations/{id}"),
        ("get", "/api/nodes"),
        ("post", "/api/nodes"),
        ("get", "/api/nodes/{id}"),
        ("put", "/api/nodes/{id}"),
        ("delete", "/api/nodes/{id}"),
        ("post", "/api/nodes/{id}/deployment-token"),
        ("get", "/api/templates"),
        ("post", "/api/templates"),
        ("put", "/api/templates/{id}"),
        ("delete", "/api/templates/{id}"),
        ("post", "/api/templates/import"),
        ("get", "/api/templates/{id}/export"),
        ("get", "/api/servers"),
        ("post", "/api/servers"),
        ("get", "/api/servers/{id}"),
        ("put", "/api/servers/{id}"),
        ("delete", "/api/servers/{id}"),
        ("post", "/api/servers/{id}/start"),
        ("post", "/api/servers/{id}/stop"),
        ("post", "/api/servers/{id}/restart"),
        ("post", "/api/servers/{id}/kill"),
        ("post", "/api/servers/{id}/command"),
        ("get", "/api/servers/{id}/logs"),
        ("post", "/api/servers/{id}/reset-crash-count"),
        ("post", "/api/servers/{id}/suspend"),
        ("post", "/api/servers/{id}/unsuspend"),
        ("post", "/api/servers/{id}/reinstall"),
        ("get", "/api/servers/{id}/access"),
        ("post", "/api/servers/{id}/access"),
        ("delete", "/api/servers/{id}/access/{user_id}"),
        ("get", "/api/health"),
        ("get", "/api/admin/api-keys"),
        ("post", "/api/admin/api-keys"),
        ("put", "/api/admin/api-keys/{id}"),
        ("delete", "/api/admin/api-keys/{id}"),
        ("get", "/api/admin/audit-logs"),
        ("get", "/api/admin/stats"),
        ("get", "/api/admin/users"),
        ("get", "/api/admin/nodes"),
        ("get", "/api/admin/servers"),
        ("get", "/api/admin/health"),
        ("get", "/api/tasks"),
        ("post", "/api/tasks"),
        ("get", "/api/tasks/{id}"),
        ("put", "/api/tasks/{id}"),
        ("delete", "/api/tasks/{id}"),
        ("post", "/api/tasks/{id}/execute"),
        ("get", "/api/alerts"),
        ("get", "/api/alerts/{id}"),
        ("post", "/api/alerts/{id}/resolve"),
        ("post", "/api/alerts/bulk-resolve"),
        ("get", "/api/alerts/stats"),
        ("post", "/api/alert-rules"),
        ("get", "/api/alert-rules"),
        ("put", "/api/alert-rules/{id}"),
        ("delete", "/api/alert-rules/{id}"),
        ("get", "/api/servers/{id}/files"),
        ("delete", "/api/servers/{id}/files"),
        ("post", "/api/servers/{id}/files/upload"),
        ("head", "/api/servers/{id}/files/upload"),
        ("patch", "/api/servers/{id}/files/upload"),
        ("get", "/api/servers/{id}/files/download"),
        ("post", "/api/servers/{id}/files/create"),
        ("post", "/api/servers/{id}/files/compress"),
        ("post", "/api/servers/{id}/files/decompress"),
        ("post", "/api/servers/{id}/backups"),
        ("get", "/api/servers/{id}/backups"),
        ("post", "/api/servers/{id}/transfer"),
        ("post", "/api/servers/{id}/backups/{backup_id}/restore"),
        ("delete", "/api/servers/{id}/backups/{backup_id}"),
    ];
    for (method, path) in expected {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    let public = ["/api/health", "/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/agent/enroll"];
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            assert!(op["responses"]["default"].is_object(), "{method} {path} lacks the error response");
            let bearer = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            let websocket = path.ends_with("/ws");
            assert_eq!(bearer, !(public.contains(&path.as_str()) || websocket), "{method} {path} security");
        }
    }
    for schema in ["Server", "Template", "Node", "ErrorBody", "NewServer", "Permission", "ServerState"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    let states = doc["components"]["schemas"]["ServerState"].to_string();
    assert!(states.contains("install_failed") && states.contains("suspended"), "{states}");

    // Swagger UI from vendored assets, allowed to run its own scripts.
    let (status, page, headers) = api.call(Method::GET, "/api/docs/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().is_some_and(|p| p.contains("swagger-ui")), "{page}");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let (status, js, _) = api.call(Method::GET, "/api/docs/swagger-ui-bundle.js", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.as_str().is_some_and(|j| j.len() > 100_000), "the bundle is served whole");
    let (_, _, headers) = api.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
}

/// Broken object-level authorization, over the route table itself (the OpenAPI document is
/// generated from the same declarations as the router): for every route that takes an id, a
/// customer's credentials on someone else's server answer 404 exactly like a missing one, on
/// operator objects they are refused, and nothing changes. A new kind of id fails this test
/// until it is added to `target` below.
#[tokio::test]
async fn every_route_with_an_id_refuses_another_users_objects() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (alice, alice_token) = api.user("alice").await;
    let (bob, bob_token) = api.user("bob").await;
    let (carol, _) = api.user("carol").await;
    let body = json!({"name": "alices", "owner_id": alice, "node_id": node, "template_id": template, "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let server = server["id"].as_str().expect("id").to_string();
    api.wait_state(&server, &alice_token, "stopped").await;
    api.ok(Method::POST, &format!("/api/servers/{server}/start"), &alice_token, None).await;
    api.wait_state(&server, &alice_token, "running").await;
    api.ok(
        Method::POST,
        &format!("/api/servers/{server}/access"),
        &alice_token,
        Some(json!({"user_id": carol, "permissions": ["server.read"]})),
    )
    .await;
    let location = api.ok(Method::GET, &format!("/api/nodes/{node}"), &api.admin, None).await["location_id"]
        .as_str()
        .expect("location")
        .to_string();

    let key = api
        .ok(Method::POST, "/api/admin/api-keys", &api.admin, Some(json!({"name": "ops", "scopes": ["server.read"]})))
        .await;
    let key = key["id"].as_str().expect("key id").to_string();
    let task = json!({"server_id": server, "name": "nightly", "cron": "0 4 * * *", "action": {"type": "restart"}});
    let task = api.ok(Method::POST, "/api/tasks", &alice_token, Some(task)).await;
    let task = task["id"].as_str().expect("task id").to_string();
    let rule = json!({"name": "crashes", "condition": {"type": "server_crashed"}});
    let rule = api.ok(Method::POST, "/api/alert-rules", &api.admin, Some(rule)).await;
    let rule = rule["id"].as_str().expect("rule id").to_string();
    let alert = catalyst_core::model::Alert {
        id: catalyst_core::id::AlertId::new(),
        rule_id: None,
        server_id: Some(server.parse().expect("server id")),
        node_id: None,
        kind: "server_crashed".into(),
        severity: catalyst_core::model::Severity::Warning,
        message: "alices crashed".into(),
        resolved: false,
        created_at: chrono::Utc::now(),
        resolved_at: None,
        resolved_by: None,
    };
    catalyst_core::ports::AlertStore::create_alert(api.catalyst.store().as_ref(), &alert).await.expect("alert");
    let alert = alert.id.to_string();
    let backup = api.ok(Method::POST, &format!("/api/servers/{server}/backups"), &alice_token, Some(json!({}))).await;
    let backup = backup["id"].as_str().expect("backup id").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.ok(Method::GET, &format!("/api/servers/{server}/backups/{backup}"), &alice_token, None).await["status"]
        == "in_progress"
    {
        assert!(tokio::time::Instant::now() < deadline, "the backup never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let snapshot = || async {
        let mut all = Vec::new();
        for path in [
            format!("/api/servers/{server}"),
            format!("/api/servers/{server}/access"),
            format!("/api/nodes/{node}"),
            format!("/api/nodes/{node}/allocations"),
            format!("/api/templates/{template}"),
            format!("/api/locations/{location}"),
            "/api/admin/api-keys".to_string(),
            format!("/api/tasks/{task}"),
            format!("/api/alerts/{alert}"),
            format!("/api/servers/{server}/backups"),
            "/api/alert-rules".to_string(),
        ] {
            all.push(api.ok(Method::GET, &path, &api.admin, None).await);
        }
        all
    };
    let before = snapshot().await;
    let pool = &before[3]["items"][0];
    assert_eq!(pool["server_id"].as_str(), Some(server.as_str()), "the server's allocation is in the pool");
    let allocation = pool["number"].to_string();

    // Which object each kind of path names, what a customer must get, and a body that would
    // change it if the call were allowed.
    let target = |path: &str| -> (&str, &[StatusCode]) {
        const HIDDEN: &[StatusCode] = &[StatusCode::NOT_FOUND];
        const REFUSED: &[StatusCode] = &[StatusCode::FORBIDDEN, StatusCode::NOT_FOUND];
        match path.split('/').nth(2) {
            Some("servers") => (&server, HIDDEN),
            Some("nodes") => (&node, REFUSED),
            Some("templates") => (&template, REFUSED),
            Some("locations") => (&location, REFUSED),
            Some("admin") if path.starts_with("/api/admin/api-keys/") => (&key, REFUSED),
            Some("account") if path.starts_with("/api/account/api-keys/") => (&key, HIDDEN),
            Some("tasks") => (&task, HIDDEN),
            Some("alerts") => (&alert, HIDDEN),
            Some("alert-rules") => (&rule, REFUSED),
            _ => panic!("{path} takes an id this test does not know: add it to `target`"),
        }
    };
    let body_for = |method: &str, path: &str| -> Option<Value> {
        match (method, path) {
            ("put", "/api/servers/{id}") => Some(json!({"name": "taken"})),
            ("post", "/api/servers/{id}/command") => Some(json!({"command": "stop"})),
            ("post", "/api/nodes/{id}/allocations") => Some(json!({"ip": "10.9.9.9", "ports": ["7000"]})),
            ("put", "/api/nodes/{id}/allocations/{number}") => Some(json!({"alias": "stolen"})),
            ("post", "/api/servers/{id}/access") => Some(json!({"user_id": bob, "permissions": ["server.read"]})),
            ("put", "/api/nodes/{id}") | ("put", "/api/locations/{id}") | ("put", "/api/admin/api-keys/{id}") => {
                Some(json!({"name": "taken"}))
            }
            ("put", "/api/tasks/{id}") | ("put", "/api/alert-rules/{id}") => Some(json!({"enabled": false})),
            ("post", "/api/servers/{id}/files/create") => Some(json!({"path": "planted"})),
            ("post", "/api/servers/{id}/files/rename") | ("post", "/api/servers/{id}/files/copy") => {
                Some(json!({"from": "a", "to": "b"}))
            }
            ("post", "/api/servers/{id}/files/chmod") => Some(json!({"path": "a", "mode": "777"})),
            ("post", "/api/servers/{id}/files/compress") => Some(json!({"paths": ["a"], "destination": "a.tar"})),
            ("post", "/api/servers/{id}/files/decompress") => Some(json!({"path": "a.tar"})),
            ("post", "/api/servers/{id}/backups") => Some(json!({"name": "theirs"})),
            ("post", "/api/servers/{id}/transfer") => Some(json!({"node_id": node})),
            ("post", "/api/servers/{id}/backups/{backup_id}/lock") => Some(json!({"locked": true})),
            ("put", "/api/templates/{id}") => Some(
                json!({"name": "taken", "image": "img", "startup": "./run", "stop": {"type": "signal", "value": "SIGTERM"}}),
            ),
            _ => None,
        }
    };

    let (_, doc, _) = api.call(Method::GET, "/api/openapi.json", None, None).await;
    let mut covered = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            let (id, allowed) = target(path);
            let mut concrete = path
                .replace("{id}", id)
                .replace("{user_id}", &carol)
                .replace("{backup_id}", &backup)
                .replace("{number}", &allocation);
            if path.ends_with("/files/search") {
                concrete.push_str("?query=a");
            } else if path.contains("/files") {
                concrete.push_str("?path=a");
            }
            assert!(!concrete.contains('{'), "{path} has a parameter this test does not fill");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (status, v, _) = if path.ends_with("/files/upload") && method == "patch" {
                let headers = [("upload-offset", "1"), ("upload-length", "2")];
                api.call_with(m, &concrete, Some(&bob_token), &headers, Body::from("x")).await
            } else {
                api.call(m, &concrete, Some(&bob_token), body_for(method, path)).await
            };
            assert!(allowed.contains(&status), "{method} {path}: {status} {v}");
            // HEAD answers carry no body.
            if status == StatusCode::NOT_FOUND && method != "head" {
                assert_eq!(error_code(&v), "not_found", "{method} {path}: {v}");
            }
            covered += 1;
        }
    }
    assert!(covered >= 25, "only {covered} routes with ids were found");
    assert_eq!(snapshot().await, before, "a refused call changed something");
    let (status, _, _) =
        api.call(Method::GET, &format!("/api/servers/{server}"), Some(&carol_token(&api).await), None).await;
    assert_eq!(status, StatusCode::OK, "carol's grant survived");
}

#[tokio::test]
async fn unknown_methods_and_routes_answer_the_error_body() {
    let api = Api::new().await;
    let (status, v, headers) = api.call(Method::DELETE, "/api/health", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(error_code(&v), "method_not_allowed", "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(headers.get("allow").is_some_and(|a| a.to_str().is_ok_and(|a| a.contains("GET"))), "{headers:?}");
    assert!(headers.contains_key("x-content-type-options"), "hardened like every answer");

    let server = catalyst_core::id::ServerId::new();
    let (status, v, _) =
        api.call(Method::PATCH, &format!("/api/servers/{server}"), Some(&api.admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(error_code(&v), "method_not_allowed", "{v}");

    let (status, v, _) = api.call(Method::GET, "/api/no-such-route", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found", "{v}");
}

pub(crate) async fn carol_token(api: &Api) -> String {
    api.login("carol@example.test", "password-123").await
}
