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
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    router: Router,
    link: NodeHub,
    dir: tempfile::TempDir,
    admin: String,
}

impl Api {
    async fn new() -> Self {
        let (catalyst, link, dir) = crate::support::control_plane().await;
        catalyst.bootstrap_admin("admin@example.test", "admin", "admin-password".into()).await.expect("admin");
        let router = catalyst_http::router(catalyst, Some(link.clone()));
        let mut api = Self { router, link, dir, admin: String::new() };
        api.admin = api.login("admin@example.test", "admin-password").await;
        api
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
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

    async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value, _) = self.call(method.clone(), path, Some(token), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let (status, v, _) =
            self.call(Method::POST, "/api/auth/login", None, Some(json!({"email": email, "password": password}))).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["access_token"].as_str().expect("token").to_string()
    }

    async fn user(&self, name: &str) -> (String, String) {
        let body = json!({"email": format!("{name}@example.test"), "username": name, "password": "password-123"});
        let (status, v, _) = self.call(Method::POST, "/api/auth/register", None, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        (id, self.login(&format!("{name}@example.test"), "password-123").await)
    }

    /// A location, a node with a daemon over the fake runtime, and a template.
    async fn world(&self) -> (String, String) {
        let loc = self.ok(Method::POST, "/api/locations", &self.admin, Some(json!({"name": "eu"}))).await;
        let node = self
            .ok(Method::POST, "/api/nodes", &self.admin, Some(json!({"name": "n1", "location_id": loc["id"], "fqdn": "n1.example.test", "memory_mb": 8192, "disk_mb": 100000})))
            .await;
        let node_id: NodeId = node["id"].as_str().expect("id").parse().expect("node id");
        self.link.add_node(NodeDaemon::new(
            node_id,
            Arc::new(FakeRuntime::new()),
            Arc::new(SystemClock),
            DaemonConfig::new(self.dir.path()),
        ));
        let template = self
            .ok(
                Method::POST,
                "/api/templates",
                &self.admin,
                Some(json!({"name": "game", "image": "img", "startup": "./run --port {{SERVER_PORT}}", "stop": {"type": "command", "value": "stop"}, "done_patterns": [{"type": "substring", "value": "Done"}]})),
            )
            .await;
        (node["id"].as_str().expect("id").to_string(), template["id"].as_str().expect("id").to_string())
    }

    async fn wait_state(&self, server: &str, token: &str, state: &str) {
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

fn error_code(v: &Value) -> &str {
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
