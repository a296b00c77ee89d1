//! Closed registration: nobody signs up, operators create users over the admin API (as a
//! billing panel does), and a customer cannot.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use catalyst_runtime::control::auth::AuthConfig;
use catalyst_runtime::testing::TestWorld;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(router: &axum::Router, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = Request::builder().method(Method::POST).uri(path).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router.clone().oneshot(req.body(Body::from(body.to_string())).expect("request")).await.expect("response");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn closed_registration_leaves_user_creation_to_operators() {
    let auth = AuthConfig { open_registration: false, ..AuthConfig::with_secret(vec![7u8; 32]).expect("secret") };
    let w = TestWorld::sqlite().await.configure(move |b| b.auth(auth)).with_admin().build().await;
    let router = catalyst_http::router(w.catalyst.clone(), None);
    let login = |email: &'static str, password: &'static str| {
        let router = router.clone();
        async move {
            let (status, v) =
                call(&router, "/api/auth/login", None, json!({"email": email, "password": password})).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["access_token"].as_str().expect("token").to_string()
        }
    };
    let admin = login("admin@example.test", "admin-password").await;
    let carol = json!({"email": "carol@example.test", "username": "carol", "password": "password-123"});

    let (status, v) = call(&router, "/api/auth/register", None, carol.clone()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("permission_denied")), "{v}");
    let (status, v) = call(&router, "/api/admin/users", Some(&admin), carol.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["email"], "carol@example.test");
    let (status, v) = call(&router, "/api/admin/users", Some(&admin), carol).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{v}");

    let customer = login("carol@example.test", "password-123").await;
    let dave = json!({"email": "dave@example.test", "username": "dave", "password": "password-123"});
    let (status, v) = call(&router, "/api/admin/users", Some(&customer), dave.clone()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("permission_denied")), "{v}");
    let (status, _) = call(&router, "/api/admin/users", None, dave).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
