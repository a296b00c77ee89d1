//! Allocation pools and placement over REST: adding ranges, placing servers until the pool is
//! exhausted, billing ids, changing a server's template, and what customers may not do.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::{Api, error_code};

async fn status(api: &Api, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (status, v, _) = api.call(method, path, Some(token), body).await;
    (status, v)
}

#[tokio::test]
async fn pools_place_servers_until_exhausted_and_refuse_bad_input() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (alice, alice_token) = api.user("alice").await;
    let pool = format!("/api/nodes/{node}/allocations");
    let admin = api.admin.clone();

    for (bad, why) in [
        (json!({"ip": "10.0.0.1", "ports": ["70000-1"]}), "a port above 65535"),
        (json!({"ip": "10.0.0.1", "ports": ["5000-4000"]}), "a reversed range"),
        (json!({"ip": "10.0.0.1", "ports": ["1-2000"]}), "a range over 1000 ports"),
        (json!({"ip": "10.0.0.999", "ports": ["4000"]}), "a bad IP"),
        (json!({"ip": "10.0.0.1", "ports": []}), "no ports"),
        (json!({"ip": "10.0.0.1", "ports": ["4000"], "colour": "red"}), "an unknown field"),
    ] {
        let (s, v) = status(&api, Method::POST, &pool, &admin, Some(bad)).await;
        assert_eq!((s.is_client_error(), error_code(&v)), (true, "invalid_input"), "{why}: {v}");
    }
    let (s, v) = status(&api, Method::POST, &pool, &alice_token, Some(json!({"ip": "10.0.0.1", "ports": ["1"]}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a customer adds no ports: {v}");
    let (s, _) = status(&api, Method::GET, &pool, &alice_token, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "nor reads the pool");
    let added =
        api.ok(Method::POST, &pool, &admin, Some(json!({"ip": "10.0.0.1", "ports": ["4000-4002", "4002"]}))).await;
    assert_eq!(added["added"], 3);
    let again = api.ok(Method::POST, &pool, &admin, Some(json!({"ip": "10.0.0.1", "ports": ["4002-4003"]}))).await;
    assert_eq!(again["added"], 1, "ports already in the pool are skipped");

    // Placement fills the pool, then says why it cannot.
    let location = api.ok(Method::GET, &format!("/api/nodes/{node}"), &admin, None).await["location_id"].clone();
    let deploy = json!({"locations": [location], "port_range": ["4000-4003"]});
    let mut ports = Vec::new();
    for i in 0..4 {
        let body = json!({"name": format!("placed-{i}"), "owner_id": alice, "template_id": template, "deploy": deploy,
                          "limits": {"memory_mb": 64, "disk_mb": 64}, "external_id": format!("svc-{i}")});
        let server = api.ok(Method::POST, "/api/servers", &admin, Some(body)).await;
        assert_eq!(server["node_id"].as_str(), Some(node.as_str()));
        ports.push(server["allocations"][0]["port"].as_u64().expect("port"));
    }
    ports.sort();
    assert_eq!(ports, [4000, 4001, 4002, 4003], "each placement took a different free allocation");
    let body = json!({"name": "one-too-many", "owner_id": alice, "template_id": template, "deploy": deploy,
                      "limits": {"memory_mb": 64, "disk_mb": 64}});
    let (s, v) = status(&api, Method::POST, "/api/servers", &admin, Some(body)).await;
    assert_eq!((s, error_code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no node satisfies the request") && message.contains("free allocation"), "{message}");
    let huge = json!({"name": "huge", "owner_id": alice, "template_id": template, "deploy": {},
                      "limits": {"memory_mb": 1048576, "disk_mb": 64}});
    let (s, v) = status(&api, Method::POST, "/api/servers", &admin, Some(huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("MiB memory"), "{v}");
    for (bad, why) in [
        (json!({"deploy": {}, "node_id": node}), "deploy and node_id"),
        (json!({"deploy": {}, "allocations": [{"ip": "0.0.0.0", "port": 1}]}), "deploy and allocations"),
        (json!({}), "neither"),
        (json!({"deploy": {"port_range": ["70000-1"]}}), "a bad port range"),
    ] {
        let mut body = json!({"name": "bad", "owner_id": alice, "template_id": template});
        body.as_object_mut().expect("object").extend(bad.as_object().expect("object").clone());
        let (s, v) = status(&api, Method::POST, "/api/servers", &admin, Some(body)).await;
        assert_eq!((s.is_client_error(), error_code(&v)), (true, "invalid_input"), "{why}: {v}");
    }

    // Billing ids are unique.
    let body = json!({"name": "dup", "owner_id": alice, "template_id": template, "node_id": node, "external_id": "svc-0",
                      "allocations": [{"ip": "10.0.0.2", "port": 4000}], "limits": {"memory_mb": 64, "disk_mb": 64}});
    let (s, v) = status(&api, Method::POST, "/api/servers", &admin, Some(body)).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("external_id"), "{v}");

    // The pool shows who holds what; held allocations cannot be deleted, free ones can.
    let listed = api.ok(Method::GET, &format!("{pool}?limit=100"), &admin, None).await;
    assert_eq!(listed["total"], 4);
    assert!(listed["items"].as_array().expect("items").iter().all(|a| a["server_id"].is_string()));
    let held = listed["items"][0]["number"].as_u64().expect("number");
    let named =
        api.ok(Method::PUT, &format!("{pool}/{held}"), &admin, Some(json!({"alias": "play.example.test"}))).await;
    assert_eq!(named["alias"], "play.example.test");
    let (s, v) = status(&api, Method::DELETE, &format!("{pool}/{held}"), &admin, None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
    api.ok(Method::POST, &pool, &admin, Some(json!({"ip": "10.0.0.1", "ports": ["5000"]}))).await;
    let listed = api.ok(Method::GET, &format!("{pool}?limit=100"), &admin, None).await;
    let free = listed["items"][4]["number"].as_u64().expect("number");
    let (s, _) = status(&api, Method::DELETE, &format!("{pool}/{free}"), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = status(&api, Method::DELETE, &format!("{pool}/{free}"), &admin, None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    let (s, v) = status(&api, Method::PUT, &format!("{pool}/not-a-number"), &admin, Some(json!({}))).await;
    assert!(s.is_client_error(), "{v}");
}

#[tokio::test]
async fn operators_change_a_servers_template_and_billing_id_and_customers_cannot() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (alice, alice_token) = api.user("alice").await;
    let other = json!({"name": "other", "image": "img:2", "startup": "./other {{MODE}}", "stop": {"type": "command", "value": "stop"},
                       "variables": [{"name": "MODE", "description": "", "default": "fast", "rules": "required|string|max:8",
                                      "user_viewable": true, "user_editable": true}]});
    let other = api.ok(Method::POST, "/api/templates", &api.admin, Some(other)).await["id"].clone();
    let body = json!({"name": "s", "owner_id": alice, "node_id": node, "template_id": template,
                      "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let path = format!("/api/servers/{}", server["id"].as_str().expect("id"));
    api.wait_state(server["id"].as_str().expect("id"), &alice_token, "stopped").await;
    for patch in [json!({"template_id": other}), json!({"external_id": "svc-9"})] {
        let (s, v) = status(&api, Method::PUT, &path, &alice_token, Some(patch.clone())).await;
        assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"), "{patch}: {v}");
    }
    let changed =
        api.ok(Method::PUT, &path, &api.admin, Some(json!({"template_id": other, "external_id": "svc-9"}))).await;
    assert_eq!((&changed["template_id"], &changed["external_id"]), (&other, &json!("svc-9")));
    assert_eq!(changed["variables"], json!({"MODE": "fast"}), "the new template's defaults");
    let cleared = api.ok(Method::PUT, &path, &api.admin, Some(json!({"external_id": ""}))).await;
    assert!(cleared["external_id"].is_null());
    let (s, v) = status(
        &api,
        Method::PUT,
        &path,
        &api.admin,
        Some(json!({"limits": {"memory_mb": 64, "disk_mb": 64, "allocations": 0}})),
    )
    .await;
    assert_eq!((s.is_client_error(), error_code(&v)), (true, "invalid_input"), "{v}");
    let two = json!({"allocations": [{"ip": "0.0.0.0", "port": 25565}, {"ip": "0.0.0.0", "port": 25566}],
                     "limits": {"memory_mb": 64, "disk_mb": 64, "allocations": 1}});
    let (s, v) = status(&api, Method::PUT, &path, &api.admin, Some(two)).await;
    assert_eq!((s, error_code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"), "{v}");
}
