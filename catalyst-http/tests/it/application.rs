//! `/api/application`: what a WHMCS-style billing module does, with an API key as Bearer, in
//! Pterodactyl's shapes and status codes; bad input and missing scopes in its error shape.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::Api;

const WHMCS: &[(&str, &str)] = &[
    ("accept", "Application/vnd.pterodactyl.v1+json"),
    ("content-type", "application/json"),
    ("user-agent", "Pterodactyl-WHMCS"),
];

async fn call(api: &Api, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let (status, v, _) = api.call_with(method, path, Some(key), WHMCS, body).await;
    (status, v)
}

/// The first error's code and status, in Pterodactyl's shape.
fn error(v: &Value) -> (&str, &str) {
    let e = &v["errors"][0];
    (e["code"].as_str().unwrap_or("<no errors>"), e["status"].as_str().unwrap_or("<no status>"))
}

async fn key(api: &Api, scopes: &[&str]) -> String {
    let body = json!({"name": "billing", "scopes": scopes});
    api.ok(Method::POST, "/api/admin/api-keys", &api.admin, Some(body)).await["key"].as_str().expect("key").to_string()
}

const BILLING: &[&str] = &[
    "admin.users",
    "server.create",
    "server.read",
    "server.update",
    "server.delete",
    "server.suspend",
    "node.read",
    "template.read",
];

#[tokio::test]
async fn a_billing_module_provisions_suspends_and_terminates() {
    let api = Api::new().await;
    let (node, _) = api.world().await;
    let egg =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalyst-core/tests/eggs/pterodactyl-egg-paper.json"))
            .expect("egg");
    let (s, _, _) = api
        .call_with(
            Method::POST,
            "/api/templates/import",
            Some(&api.admin),
            &[("content-type", "application/json")],
            Body::from(egg),
        )
        .await;
    assert!(s.is_success());
    api.ok(
        Method::POST,
        &format!("/api/nodes/{node}/allocations"),
        &api.admin,
        Some(json!({"ip": "0.0.0.0", "ports": ["27000-27001"]})),
    )
    .await;
    let key = key(&api, BILLING).await;

    // WHMCS's connection test and look-ups.
    let (s, nodes) = call(&api, &key, Method::GET, "/api/application/nodes", None).await;
    assert_eq!((s, nodes["meta"]["pagination"]["count"].as_u64()), (StatusCode::OK, Some(1)), "{nodes}");
    let location = nodes["data"][0]["attributes"]["location_id"].as_u64().expect("location id");
    let (s, v) = call(&api, &key, Method::GET, "/api/application/users/external/whmcs-7", None).await;
    assert_eq!((s, error(&v)), (StatusCode::NOT_FOUND, ("NotFoundHttpException", "404")), "absent means create");
    let user = json!({"username": "k3v9x2mq", "email": "Client@Example.test", "first_name": "Ada", "last_name": "L",
                      "external_id": "whmcs-7", "language": "en"});
    let (s, created) = call(&api, &key, Method::POST, "/api/application/users", Some(user.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["object"], "user");
    let user_id = created["attributes"]["id"].as_u64().expect("integer id");
    let (s, v) = call(&api, &key, Method::POST, "/api/application/users", Some(user)).await;
    assert!(s.is_client_error() && v["errors"].is_array(), "duplicate: {s} {v}");
    let (_, found) =
        call(&api, &key, Method::GET, "/api/application/users?filter[email]=client@example.test", None).await;
    assert_eq!(found["meta"]["pagination"]["total"], 1, "{found}");
    let (_, none) = call(&api, &key, Method::GET, "/api/application/users?filter[email]=example.test", None).await;
    assert_eq!(none["meta"]["pagination"]["total"], 0, "exact, not a substring: {none}");
    let (_, ext) = call(&api, &key, Method::GET, "/api/application/users/external/whmcs-7", None).await;
    assert_eq!(ext["attributes"]["id"].as_u64(), Some(user_id));
    let (_, named) = call(&api, &key, Method::GET, "/api/application/users?filter[username]=k3v9x2mq", None).await;
    assert_eq!(named["data"][0]["attributes"]["id"].as_u64(), Some(user_id), "{named}");
    let (_, none) = call(&api, &key, Method::GET, "/api/application/users?filter[username]=k3v9", None).await;
    assert_eq!(none["meta"]["pagination"]["total"], 0, "exact: {none}");
    // Blesta sends the e-mail address as the username.
    let blesta = json!({"username": "bl+9@example.test", "email": "bl+9@example.test", "first_name": "B",
                        "last_name": "L", "external_id": "bl-9"});
    let (s, v) = call(&api, &key, Method::POST, "/api/application/users", Some(blesta)).await;
    assert_eq!((s, &v["attributes"]["username"]), (StatusCode::CREATED, &json!("bl+9@example.test")), "{v}");

    // The egg with its variables, through any nest id.
    let (_, nests) = call(&api, &key, Method::GET, "/api/application/nests", None).await;
    let nest = nests["data"][0]["attributes"]["id"].as_u64().expect("nest");
    let (_, eggs) = call(&api, &key, Method::GET, &format!("/api/application/nests/{nest}/eggs"), None).await;
    let paper =
        eggs["data"].as_array().expect("eggs").iter().find(|e| e["attributes"]["name"] == "Paper").expect("paper");
    let egg_id = paper["attributes"]["id"].as_u64().expect("egg id");
    let (_, egg) =
        call(&api, &key, Method::GET, &format!("/api/application/nests/999/eggs/{egg_id}?include=variables"), None)
            .await;
    let vars = egg["attributes"]["relationships"]["variables"]["data"].as_array().expect("variables");
    assert!(vars.iter().any(|v| v["attributes"]["env_variable"] == "SERVER_JARFILE"), "{egg}");
    let environment: serde_json::Map<String, Value> = vars
        .iter()
        .map(|v| {
            (
                v["attributes"]["env_variable"].as_str().expect("env").to_string(),
                v["attributes"]["default_value"].clone(),
            )
        })
        .collect();

    // Create with deploy, the way WHMCS sends it (flat ints, an ignored nest).
    let server = json!({
        "name": "Minecraft", "user": user_id, "nest": nest, "egg": egg_id, "docker_image": egg["attributes"]["docker_image"],
        "startup": egg["attributes"]["startup"], "environment": environment,
        "limits": {"memory": 1024, "swap": -1, "io": 500, "cpu": 100, "disk": 2048},
        "feature_limits": {"databases": null, "allocations": 2, "backups": 3},
        "deploy": {"locations": [location], "dedicated_ip": false, "port_range": ["27000-27001"]},
        "start_on_completion": true, "oom_disabled": true, "external_id": "svc-1",
    });
    let (s, created) = call(&api, &key, Method::POST, "/api/application/servers", Some(server.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let a = &created["attributes"];
    assert_eq!(
        (a["user"].as_u64(), a["egg"].as_u64(), a["external_id"].as_str()),
        (Some(user_id), Some(egg_id), Some("svc-1"))
    );
    assert_eq!((a["limits"]["swap"].as_u64(), a["feature_limits"]["backups"].as_u64()), (Some(1 << 20), Some(3)));
    assert_eq!(a["identifier"].as_str().map(str::len), Some(8));
    assert!(a["allocation"].is_u64(), "{a}");
    let server_id = a["id"].as_u64().expect("id");
    let (_, by_ext) = call(&api, &key, Method::GET, "/api/application/servers/external/svc-1", None).await;
    assert_eq!(by_ext["attributes"]["id"].as_u64(), Some(server_id));
    assert!(by_ext["attributes"].get("relationships").is_none(), "no includes unless asked: {by_ext}");
    let path = "/api/application/servers/external/svc-1?include=allocations,user,node,location,egg,nest,variables";
    let (_, with) = call(&api, &key, Method::GET, path, None).await;
    let r = &with["attributes"]["relationships"];
    let held = &r["allocations"]["data"][0]["attributes"];
    assert_eq!((&held["id"], &held["assigned"]), (&a["allocation"], &json!(true)), "{with}");
    assert!(held["port"].as_u64().is_some_and(|p| (27000..=27001).contains(&p)), "{with}");
    assert_eq!((&r["user"]["attributes"]["id"], &r["egg"]["attributes"]["id"]), (&json!(user_id), &json!(egg_id)));
    assert_eq!((&r["node"]["object"], &r["location"]["attributes"]["id"]), (&json!("node"), &json!(location)));
    assert_eq!(r["nest"]["attributes"]["id"], a["nest"]);
    assert!(r["variables"]["data"].as_array().is_some_and(|v| !v.is_empty()), "{with}");

    // Paymenter's look-up: nodes with room in a location, with their pools.
    let deployable = format!(
        "/api/application/nodes/deployable?memory=1024&disk=2048&location_ids[]={location}&include=allocations"
    );
    let (s, fit) = call(&api, &key, Method::GET, &deployable, None).await;
    assert_eq!((s, &fit["meta"]["pagination"]["total"]), (StatusCode::OK, &json!(1)), "{fit}");
    let pool = fit["data"][0]["attributes"]["relationships"]["allocations"]["data"].as_array().expect("pool");
    assert_eq!(pool.iter().filter(|a| a["attributes"]["assigned"] == true).count(), 1, "{fit}");
    let (_, none) =
        call(&api, &key, Method::GET, "/api/application/nodes/deployable?memory=99999999&disk=1", None).await;
    assert_eq!(none["meta"]["pagination"]["total"], 0, "{none}");
    let (s, v) = call(&api, &key, Method::GET, "/api/application/nodes/deployable?disk=1", None).await;
    assert_eq!((s, error(&v).0), (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"), "{v}");

    // The pool holds two ports: the third create finds no node.
    let mut two = server.clone();
    two["external_id"] = json!("svc-2");
    let (s, v) = call(&api, &key, Method::POST, "/api/application/servers", Some(two)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut three = server.clone();
    three["external_id"] = json!("svc-3");
    let (s, v) = call(&api, &key, Method::POST, "/api/application/servers", Some(three)).await;
    assert_eq!((s, error(&v).1), (StatusCode::BAD_REQUEST, "400"), "no node satisfies: {v}");
    assert!(v["errors"][0]["detail"].as_str().unwrap_or_default().contains("no node satisfies the request"), "{v}");
    let mut dup = server.clone();
    dup["deploy"]["port_range"] = json!(["70000-1"]);
    let (s, v) = call(&api, &key, Method::POST, "/api/application/servers", Some(dup)).await;
    assert_eq!((s, error(&v).0), (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"), "{v}");
    let mut unknown_egg = server.clone();
    unknown_egg["egg"] = json!(99_999);
    let (s, v) = call(&api, &key, Method::POST, "/api/application/servers", Some(unknown_egg)).await;
    assert_eq!((s, error(&v).1), (StatusCode::NOT_FOUND, "404"), "{v}");

    // Pages.
    let (_, page) = call(&api, &key, Method::GET, "/api/application/servers?per_page=1&page=2", None).await;
    let p = &page["meta"]["pagination"];
    assert_eq!(
        (p["total"].as_u64(), p["count"].as_u64(), p["current_page"].as_u64(), p["total_pages"].as_u64()),
        (Some(2), Some(1), Some(2), Some(2))
    );
    for bad in ["per_page=0", "per_page=10000", "page=0", "page=x"] {
        let (s, v) = call(&api, &key, Method::GET, &format!("/api/application/servers?{bad}"), None).await;
        assert_eq!((s, error(&v).0), (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"), "{bad}: {v}");
    }

    api.wait_state(created["attributes"]["uuid"].as_str().expect("uuid"), &api.admin, "stopped").await;

    // Details, build (WHMCS's flat form, one more port) and startup (change package).
    let path = format!("/api/application/servers/{server_id}");
    let details = json!({"name": "Renamed", "user": user_id, "description": "upgraded"});
    let (s, v) = call(&api, &key, Method::PATCH, &format!("{path}/details"), Some(details)).await;
    assert_eq!(
        (s, &v["attributes"]["name"], &v["attributes"]["external_id"]),
        (StatusCode::OK, &json!("Renamed"), &json!("svc-1")),
        "{v}"
    );
    api.ok(
        Method::POST,
        &format!("/api/nodes/{node}/allocations"),
        &api.admin,
        Some(json!({"ip": "0.0.0.0", "ports": ["27002"]})),
    )
    .await;
    let node_number = nodes["data"][0]["attributes"]["id"].as_u64().expect("node");
    let (_, pool) =
        call(&api, &key, Method::GET, &format!("/api/application/nodes/{node_number}/allocations"), None).await;
    let extra =
        pool["data"].as_array().expect("pool").iter().find(|a| a["attributes"]["port"] == 27002).expect("27002");
    assert_eq!(extra["attributes"]["assigned"], false);
    let build = json!({"allocation": a["allocation"], "memory": 2048, "swap": 0, "io": 500, "cpu": 200, "disk": 4096,
                       "threads": null, "oom_disabled": true, "add_allocations": [extra["attributes"]["id"]],
                       "feature_limits": {"databases": 0, "allocations": 2, "backups": 1}});
    let (s, v) = call(&api, &key, Method::PATCH, &format!("{path}/build"), Some(build)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((&v["attributes"]["limits"]["memory"], &v["attributes"]["limits"]["cpu"]), (&json!(2048), &json!(200)));
    assert_eq!(v["attributes"]["allocation"], a["allocation"], "the primary stays");
    let (_, pool) =
        call(&api, &key, Method::GET, &format!("/api/application/nodes/{node_number}/allocations"), None).await;
    assert!(pool["data"].as_array().expect("pool").iter().all(|a| a["attributes"]["assigned"] == true), "{pool}");
    let over = json!({"memory": 2048, "disk": 4096, "feature_limits": {"allocations": 1}});
    let (s, v) = call(&api, &key, Method::PATCH, &format!("{path}/build"), Some(over)).await;
    assert!(s.is_client_error() && v["errors"].is_array(), "two allocations over a limit of one: {s} {v}");
    let catalyst_nest =
        nests["data"].as_array().expect("nests").iter().find(|n| n["attributes"]["name"] == "Catalyst").expect("nest");
    let (_, game) = call(
        &api,
        &key,
        Method::GET,
        &format!("/api/application/nests/{}/eggs", catalyst_nest["attributes"]["id"]),
        None,
    )
    .await;
    let game = game["data"][0]["attributes"]["id"].as_u64().expect("game egg");
    let startup = json!({"egg": game, "environment": {}, "image": "img", "skip_scripts": false});
    let (s, v) = call(&api, &key, Method::PATCH, &format!("{path}/startup"), Some(startup)).await;
    assert_eq!((s, v["attributes"]["egg"].as_u64()), (StatusCode::OK, Some(game)), "{v}");
    let bad = json!({"egg": game, "environment": {}, "startup": "rm -rf /", "skip_scripts": false});
    let (s, v) = call(&api, &key, Method::PATCH, &format!("{path}/startup"), Some(bad)).await;
    assert_eq!(
        (s, error(&v).0),
        (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"),
        "an arbitrary startup: {v}"
    );

    // Suspend twice, unsuspend, terminate: 204 with no body each time.
    for action in ["suspend", "suspend", "unsuspend"] {
        let (s, v) =
            call(&api, &key, Method::POST, &format!("/api/application/servers/{server_id}/{action}"), None).await;
        assert_eq!((s, &v), (StatusCode::NO_CONTENT, &Value::Null), "{action}");
    }
    let (s, _) = call(&api, &key, Method::DELETE, &format!("/api/application/servers/{server_id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&api, &key, Method::GET, &format!("/api/application/servers/{server_id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&api, &key, Method::GET, "/api/application/servers/not-a-number", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A password change, then the user cannot be deleted while they own a server.
    let (s, v) = call(
        &api,
        &key,
        Method::PATCH,
        &format!("/api/application/users/{user_id}"),
        Some(json!({"password": "a-new-password"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api.login("client@example.test", "a-new-password").await;
    let (s, v) = call(&api, &key, Method::DELETE, &format!("/api/application/users/{user_id}"), None).await;
    assert_eq!((s, error(&v).0), (StatusCode::CONFLICT, "ConflictHttpException"), "{v}");
}

async fn nodes_of(api: &Api) -> String {
    api.ok(Method::GET, "/api/nodes", &api.admin, None).await["items"][0]["id"].as_str().expect("node").to_string()
}

async fn template_of(api: &Api) -> String {
    api.ok(Method::GET, "/api/templates", &api.admin, None).await["items"][0]["id"].as_str().expect("tpl").to_string()
}

#[tokio::test]
async fn keys_without_the_scope_and_customers_get_pterodactyls_errors() {
    let api = Api::new().await;
    let (_, _) = api.world().await;
    let reader = key(&api, &["server.read"]).await;
    let (s, v) = call(&api, &reader, Method::GET, "/api/application/users", None).await;
    assert_eq!((s, error(&v)), (StatusCode::FORBIDDEN, ("AccessDeniedHttpException", "403")), "{v}");
    let (s, v) = call(
        &api,
        &reader,
        Method::POST,
        "/api/application/users",
        Some(json!({"email": "x@example.test", "username": "xx1"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&api, "ptla_forged", Method::GET, "/api/application/servers", None).await;
    assert_eq!((s, error(&v).0), (StatusCode::UNAUTHORIZED, "AuthenticationException"), "{v}");

    // Every server route refuses another customer's server, and changes nothing.
    let (node, template) = (nodes_of(&api).await, template_of(&api).await);
    let (bob, _) = api.user("bob").await;
    let body = json!({"name": "bobs", "owner_id": bob, "node_id": node, "template_id": template,
                      "allocations": [{"ip": "0.0.0.0", "port": 25565}]});
    let bobs = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let number = bobs["number"].as_u64().expect("number");
    api.wait_state(bobs["id"].as_str().expect("id"), &api.admin, "stopped").await;
    let (_, alice) = api.user("alice").await;
    let base = format!("/api/application/servers/{number}");
    for (method, path, body) in [
        (Method::GET, base.clone(), None),
        (Method::PATCH, format!("{base}/details"), Some(json!({"name": "mine"}))),
        (Method::PATCH, format!("{base}/build"), Some(json!({"memory": 64, "disk": 64}))),
        (Method::PATCH, format!("{base}/startup"), Some(json!({"environment": {}}))),
        (Method::POST, format!("{base}/suspend"), None),
        (Method::POST, format!("{base}/unsuspend"), None),
        (Method::POST, format!("{base}/reinstall"), None),
        (Method::DELETE, base.clone(), None),
        (Method::DELETE, format!("{base}/force"), None),
        (Method::GET, "/api/application/servers/external/x".to_string(), None),
    ] {
        for token in [&alice, &reader] {
            let (s, v) = call(&api, token, method.clone(), &path, body.clone()).await;
            let refused = s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN;
            let readable = token == &reader && method == Method::GET && s == StatusCode::OK;
            assert!(refused || readable, "{method} {path}: {s} {v}");
            assert!(v.is_null() || v["errors"].is_array() || readable, "{v}");
        }
    }
    let after =
        api.ok(Method::GET, &format!("/api/servers/{}", bobs["id"].as_str().expect("id")), &api.admin, None).await;
    assert_eq!(
        (&after["name"], &after["state"], &after["limits"]),
        (&bobs["name"], &json!("stopped"), &bobs["limits"])
    );

    // A customer's own token sees only their servers; the admin lists are closed to them.
    let (s, v) = call(&api, &alice, Method::GET, "/api/application/servers", None).await;
    assert_eq!((s, v["meta"]["pagination"]["total"].as_u64()), (StatusCode::OK, Some(0)), "{v}");
    let (s, _) = call(&api, &alice, Method::GET, "/api/application/nodes", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&api, &alice, Method::GET, "/api/application/users/1", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn memory_and_disk_zero_are_unlimited_as_in_pterodactyl() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (bob, _) = api.user("bob").await;
    let body = json!({"name": "big", "owner_id": bob, "node_id": node, "template_id": template,
                      "limits": {"memory_mb": 0, "disk_mb": 0}, "allocations": [{"ip": "0.0.0.0", "port": 25570}]});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let id = server["id"].as_str().expect("id");
    api.wait_state(id, &api.admin, "stopped").await;
    let key = key(&api, BILLING).await;
    let number = server["number"].as_u64().expect("number");
    let (_, view) = call(&api, &key, Method::GET, &format!("/api/application/servers/{number}"), None).await;
    assert_eq!(
        (&view["attributes"]["limits"]["memory"], &view["attributes"]["limits"]["disk"]),
        (&json!(0), &json!(0))
    );
    // Backups are bounded by their count only.
    api.ok(Method::POST, &format!("/api/servers/{id}/backups"), &api.admin, Some(json!({}))).await;
    let build = json!({"allocation": view["attributes"]["allocation"], "memory": 0, "disk": 0, "swap": -1, "io": 500,
                       "cpu": 0, "feature_limits": {"databases": 0, "allocations": 1, "backups": 1}});
    let (s, v) =
        call(&api, &key, Method::PATCH, &format!("/api/application/servers/{number}/build"), Some(build)).await;
    assert_eq!((s, &v["attributes"]["limits"]["memory"]), (StatusCode::OK, &json!(0)), "{v}");
    let (s, v) = call(
        &api,
        &key,
        Method::PATCH,
        &format!("/api/application/servers/{number}/build"),
        Some(json!({"allocation": view["attributes"]["allocation"], "memory": -5, "disk": 0})),
    )
    .await;
    assert_eq!((s, error(&v).0), (StatusCode::UNPROCESSABLE_ENTITY, "ValidationException"), "{v}");
    let (s, v, _) = api
        .call(
            Method::PUT,
            &format!("/api/servers/{id}"),
            Some(&api.admin),
            Some(json!({"limits": {"memory_mb": 8, "disk_mb": 0}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "between 0 and 16 MiB is no limit anyone means: {v}");
}

#[tokio::test]
async fn a_forced_delete_releases_the_server_while_its_node_is_away() {
    use catalyst_core::lifecycle::ServerState;

    let api = Api::new().await;
    let (node, template, daemon) = api.world_daemon().await;
    let (bob, _) = api.user("bob").await;
    let ports = json!({"ip": "0.0.0.0", "ports": ["27100-27101"]});
    api.ok(Method::POST, &format!("/api/nodes/{node}/allocations"), &api.admin, Some(ports)).await;
    let mut made = Vec::new();
    for (port, ext) in [(27100, "svc-a"), (27101, "svc-b")] {
        let body = json!({"name": ext, "owner_id": bob, "node_id": node, "template_id": template, "external_id": ext,
                          "allocations": [{"ip": "0.0.0.0", "port": port}]});
        let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
        api.wait_state(server["id"].as_str().expect("id"), &api.admin, "stopped").await;
        made.push((server["id"].as_str().expect("id").to_string(), server["number"].as_u64().expect("number")));
    }
    let key = key(&api, BILLING).await;
    let node_id: catalyst_core::id::NodeId = node.parse().expect("node id");
    api.link.remove_node(node_id);

    // A plain delete needs the node; a forced one does not.
    let ((a, a_number), (b, _)) = (&made[0], &made[1]);
    let (s, v) = call(&api, &key, Method::DELETE, &format!("/api/application/servers/{a_number}"), None).await;
    assert_eq!((s, error(&v).0), (StatusCode::SERVICE_UNAVAILABLE, "DaemonConnectionException"), "{v}");
    let (s, v) = call(&api, &key, Method::DELETE, &format!("/api/application/servers/{a_number}/force"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let gone = api.ok(Method::GET, &format!("/api/servers/{a}"), &api.admin, None).await;
    assert_eq!(
        (&gone["state"], &gone["external_id"], &gone["allocations"]),
        (&json!("deleting"), &Value::Null, &json!([]))
    );
    let pool = api.ok(Method::GET, &format!("/api/nodes/{node}/allocations"), &api.admin, None).await;
    let port = pool["items"].as_array().expect("pool").iter().find(|x| x["port"] == 27100).cloned().expect("27100");
    assert!(port["server_id"].is_null(), "the port is free again: {port}");
    let (s, _) = call(&api, &key, Method::GET, "/api/application/servers/external/svc-a", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the external id is free for the next order");
    let (_, v, _) = api.call(Method::POST, &format!("/api/servers/{a}/start"), Some(&api.admin), None).await;
    assert_eq!(v["error"]["code"], "invalid_transition", "a deleting server cannot start: {v}");
    let bob_token = api.login("bob@example.test", "password-123").await;
    let (s, v, _) = api.call(Method::GET, &format!("/api/servers/{a}/files/access"), Some(&bob_token), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "its files are closed to the customer (SFTP too): {v}");

    // A customer cannot force; forcing again drops a record whose node is gone.
    let (s, _, _) = api.call(Method::DELETE, &format!("/api/servers/{b}?force=true"), Some(&bob_token), None).await;
    assert!(s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND, "{s}");
    api.call(Method::DELETE, &format!("/api/servers/{b}?force=true"), Some(&api.admin), None).await;
    let (s, _, _) = api.call(Method::DELETE, &format!("/api/servers/{b}?force=true"), Some(&api.admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = api.call(Method::GET, &format!("/api/servers/{b}"), Some(&api.admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The node reconnects reporting the server: what it reports does not undo the deletion,
    // and once it takes requests it deletes the server, then the record goes.
    let inventory = [(a.parse().expect("server id"), ServerState::Stopped)];
    api.catalyst.reconcile_node(node_id, &inventory).await.expect("reconcile");
    let still = api.ok(Method::GET, &format!("/api/servers/{a}"), &api.admin, None).await;
    assert_eq!(still["state"], "deleting");
    api.link.attach(node_id, std::sync::Arc::new(daemon));
    api.catalyst.settle_node(node_id, &inventory).await;
    let (s, _, _) = api.call(Method::GET, &format!("/api/servers/{a}"), Some(&api.admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_suspension_made_while_the_node_was_away_reaches_it_when_it_returns() {
    use catalyst_core::lifecycle::ServerState;

    let api = Api::new().await;
    let (node, template, daemon) = api.world_daemon().await;
    let (bob, bob_token) = api.user("bob").await;
    let body = json!({"name": "unpaid", "owner_id": bob, "node_id": node, "template_id": template,
                      "allocations": [{"ip": "0.0.0.0", "port": 25590}]});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let id = server["id"].as_str().expect("id").to_string();
    api.wait_state(&id, &api.admin, "stopped").await;
    let node_id: catalyst_core::id::NodeId = node.parse().expect("node id");
    api.link.remove_node(node_id);
    api.ok(Method::POST, &format!("/api/servers/{id}/suspend"), &api.admin, None).await;

    // The node comes back still thinking the server is stopped: the suspension wins.
    let inventory = [(id.parse().expect("server id"), ServerState::Stopped)];
    api.catalyst.reconcile_node(node_id, &inventory).await.expect("reconcile");
    assert_eq!(api.ok(Method::GET, &format!("/api/servers/{id}"), &api.admin, None).await["state"], "suspended");
    api.link.attach(node_id, std::sync::Arc::new(daemon));
    api.catalyst.settle_node(node_id, &inventory).await;
    let (_, v, _) = api.call(Method::POST, &format!("/api/servers/{id}/start"), Some(&bob_token), None).await;
    assert_eq!(v["error"]["code"], "invalid_transition", "{v}");
    // The node applied it: lifting it is a transition the node accepts.
    api.ok(Method::POST, &format!("/api/servers/{id}/unsuspend"), &api.admin, None).await;
    api.wait_state(&id, &api.admin, "stopped").await;
    api.ok(Method::POST, &format!("/api/servers/{id}/start"), &bob_token, None).await;
}
