//! `/api/client`: a customer with a client key drives their own server in Pterodactyl's shapes;
//! another customer's server is a 404 on every route and stays as it was; a key made for one's
//! own scripts never reaches beyond its owner.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::Api;

async fn call(api: &Api, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (status, v, _) = api.call(method, path, Some(key), body).await;
    (status, v)
}

/// A server for `owner` on the world's node, stopped.
async fn server_for(api: &Api, owner: &str, node: &str, template: &str, port: u16) -> String {
    let body = json!({"name": format!("srv-{port}"), "owner_id": owner, "node_id": node, "template_id": template,
                      "allocations": [{"ip": "0.0.0.0", "port": port}]});
    let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
    let id = server["id"].as_str().expect("id").to_string();
    api.wait_state(&id, &api.admin, "stopped").await;
    id
}

/// A client key, as pydactyl users make one: `identifier` + `meta.secret_token`.
async fn client_key(api: &Api, token: &str) -> String {
    let (s, k) =
        call(api, token, Method::POST, "/api/client/account/api-keys", Some(json!({"description": "cli"}))).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    format!(
        "{}{}",
        k["attributes"]["identifier"].as_str().expect("identifier"),
        k["meta"]["secret_token"].as_str().expect("secret")
    )
}

#[tokio::test]
async fn a_customer_runs_their_server_with_a_client_key() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (bob, bob_token) = api.user("bob").await;
    let id = server_for(&api, &bob, &node, &template, 25565).await;
    let key = client_key(&api, &bob_token).await;
    let short = &id[..8];

    let (s, account) = call(&api, &key, Method::GET, "/api/client/account", None).await;
    assert_eq!((s, &account["attributes"]["email"]), (StatusCode::OK, &json!("bob@example.test")), "{account}");
    let (s, list) = call(&api, &key, Method::GET, "/api/client", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["meta"]["pagination"]["total"], 1);
    let view = &list["data"][0]["attributes"];
    assert_eq!((&view["identifier"], &view["uuid"], &view["server_owner"]), (&json!(short), &json!(id), &json!(true)));
    assert_eq!(view["relationships"]["allocations"]["data"][0]["attributes"]["port"], 25565);
    for path in [format!("/api/client/servers/{short}"), format!("/api/client/servers/{id}")] {
        let (s, one) = call(&api, &key, Method::GET, &path, None).await;
        assert_eq!((s, &one["attributes"]["uuid"]), (StatusCode::OK, &json!(id)), "{path}: {one}");
        assert_eq!(one["attributes"]["invocation"], "./run --port {{SERVER_PORT}}");
    }

    // Power and console, as pydactyl sends them.
    let base = format!("/api/client/servers/{short}");
    let (s, v) = call(&api, &key, Method::POST, &format!("{base}/power"), Some(json!({"signal": "start"}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    api.wait_state(&id, &bob_token, "running").await;
    let (s, stats) = call(&api, &key, Method::GET, &format!("{base}/resources"), None).await;
    assert_eq!((s, &stats["object"]), (StatusCode::OK, &json!("stats")), "{stats}");
    assert!(stats["attributes"]["resources"]["memory_bytes"].is_u64(), "{stats}");
    let (s, _) = call(&api, &key, Method::POST, &format!("{base}/command"), Some(json!({"command": "say hi"}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs = api.ok(Method::GET, &format!("/api/servers/{id}/logs?stream=stdout"), &bob_token, None).await;
        if logs.as_array().is_some_and(|l| l.iter().any(|x| x["line"] == "> say hi")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the command never reached the console: {logs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = call(&api, &key, Method::POST, &format!("{base}/power"), Some(json!({"signal": "explode"}))).await;
    assert_eq!((s, &v["errors"][0]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("ValidationException")));
    let (s, _) = call(&api, &key, Method::POST, &format!("{base}/power"), Some(json!({"signal": "kill"}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Websocket credentials: a ticket for Catalyst's gateway, good for this server's console
    // and power only, never the key itself.
    let (s, ws) = call(&api, &key, Method::GET, &format!("{base}/websocket"), None).await;
    assert_eq!(s, StatusCode::OK, "{ws}");
    assert!(ws["data"]["socket"].as_str().is_some_and(|u| u.ends_with("/api/ws")), "{ws}");
    let ticket = ws["data"]["token"].as_str().expect("token").to_string();
    assert!(ticket.starts_with("catalyst-ticket.") && !ticket.contains(&key), "{ticket}");
    api.ok(Method::GET, &format!("/api/servers/{id}"), &ticket, None).await;
    api.ok(Method::POST, &format!("/api/servers/{id}/start"), &ticket, None).await;
    api.wait_state(&id, &bob_token, "running").await;
    api.ok(Method::POST, &format!("/api/servers/{id}/command"), &ticket, Some(json!({"command": "list"}))).await;
    let other = server_for(&api, &bob, &node, &template, 25567).await;
    for (method, path, body) in [
        (Method::GET, format!("/api/servers/{other}"), None),
        (Method::GET, "/api/servers".to_string(), None),
        (Method::GET, format!("/api/servers/{id}/files"), None),
        (Method::POST, format!("/api/servers/{id}/backups"), Some(json!({}))),
        (Method::POST, "/api/account/api-keys".to_string(), Some(json!({"name": "k", "scopes": ["server.read"]}))),
        (Method::GET, format!("{base}/websocket"), None),
    ] {
        let (s, v, _) = api.call(method.clone(), &path, Some(&ticket), body).await;
        let lists_its_own = path == "/api/servers" && v["total"] == 1 && v["items"][0]["id"] == json!(id);
        assert!(lists_its_own || s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN, "{method} {path}: {s} {v}");
    }

    // Files: write, read, list, rename, compress, delete.
    let (s, _, _) = api
        .call_with(
            Method::POST,
            &format!("{base}/files/write?file=/eula.txt"),
            Some(&key),
            &[("content-type", "application/text")],
            Body::from("eula=true\n"),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, text) = call(&api, &key, Method::GET, &format!("{base}/files/contents?file=/eula.txt"), None).await;
    assert_eq!((s, text), (StatusCode::OK, json!("eula=true\n")));
    let rename = json!({"root": "/", "files": [{"from": "eula.txt", "to": "eula.old"}]});
    let (s, v) = call(&api, &key, Method::PUT, &format!("{base}/files/rename"), Some(rename)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, listing) = call(&api, &key, Method::GET, &format!("{base}/files/list?directory=/"), None).await;
    assert_eq!(s, StatusCode::OK, "{listing}");
    let names: Vec<&str> =
        listing["data"].as_array().expect("data").iter().filter_map(|f| f["attributes"]["name"].as_str()).collect();
    assert!(names.contains(&"eula.old") && !names.contains(&"eula.txt"), "{names:?}");
    let (s, archive) = call(
        &api,
        &key,
        Method::POST,
        &format!("{base}/files/compress"),
        Some(json!({"root": "/", "files": ["eula.old"]})),
    )
    .await;
    assert_eq!((s, &archive["attributes"]["is_file"]), (StatusCode::OK, &json!(true)), "{archive}");
    let (s, _) = call(
        &api,
        &key,
        Method::POST,
        &format!("{base}/files/delete"),
        Some(json!({"root": "/", "files": ["eula.old"]})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&api, &key, Method::GET, &format!("{base}/files/contents?file=/../../etc/passwd"), None).await;
    assert!(s.is_client_error() && v["errors"].is_array(), "{s} {v}");

    // Startup variables and backups.
    let (s, startup) = call(&api, &key, Method::GET, &format!("{base}/startup"), None).await;
    assert_eq!((s, &startup["meta"]["startup_command"]), (StatusCode::OK, &json!("./run --port {{SERVER_PORT}}")));
    let (s, backup) = call(&api, &key, Method::POST, &format!("{base}/backups"), None).await;
    assert_eq!((s, &backup["object"]), (StatusCode::OK, &json!("backup")), "{backup}");
    let (s, backups) = call(&api, &key, Method::GET, &format!("{base}/backups"), None).await;
    assert_eq!((s, &backups["data"][0]["attributes"]["uuid"]), (StatusCode::OK, &backup["attributes"]["uuid"]));

    // The ticket ends with the key it was made from.
    let keys = api.ok(Method::GET, "/api/account/api-keys", &bob_token, None).await;
    let key_id = keys["items"][0]["id"].as_str().expect("key id");
    api.ok(Method::DELETE, &format!("/api/account/api-keys/{key_id}"), &bob_token, None).await;
    let (s, _, _) = api.call(Method::GET, &format!("/api/servers/{id}"), Some(&ticket), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_customers_server_is_not_found_on_every_client_route() {
    let api = Api::new().await;
    let (node, template) = api.world().await;
    let (bob, _) = api.user("bob").await;
    let (_, alice_token) = api.user("alice").await;
    let id = server_for(&api, &bob, &node, &template, 25566).await;
    let alice_key = client_key(&api, &alice_token).await;
    let base = format!("/api/client/servers/{}", &id[..8]);
    let files = json!({"root": "/", "files": ["x"]});
    for (method, path, body) in [
        (Method::GET, base.clone(), None),
        (Method::GET, format!("/api/client/servers/{id}"), None),
        (Method::GET, format!("{base}/resources"), None),
        (Method::POST, format!("{base}/power"), Some(json!({"signal": "start"}))),
        (Method::POST, format!("{base}/command"), Some(json!({"command": "op alice"}))),
        (Method::GET, format!("{base}/websocket"), None),
        (Method::GET, format!("{base}/startup"), None),
        (Method::PUT, format!("{base}/startup/variable"), Some(json!({"key": "X", "value": "1"}))),
        (Method::POST, format!("{base}/settings/rename"), Some(json!({"name": "mine"}))),
        (Method::POST, format!("{base}/settings/reinstall"), None),
        (Method::GET, format!("{base}/files/list"), None),
        (Method::GET, format!("{base}/files/contents?file=/a"), None),
        (Method::PUT, format!("{base}/files/rename"), Some(json!({"root": "/", "files": [{"from": "a", "to": "b"}]}))),
        (Method::POST, format!("{base}/files/delete"), Some(files.clone())),
        (Method::POST, format!("{base}/files/compress"), Some(files)),
        (Method::POST, format!("{base}/files/decompress"), Some(json!({"root": "/", "file": "a.zip"}))),
        (Method::POST, format!("{base}/files/create-folder"), Some(json!({"root": "/", "name": "d"}))),
        (Method::GET, format!("{base}/backups"), None),
        (Method::POST, format!("{base}/backups"), None),
    ] {
        for token in [&alice_token, &alice_key] {
            let (s, v) = call(&api, token, method.clone(), &path, body.clone()).await;
            assert_eq!(
                (s, &v["errors"][0]["code"]),
                (StatusCode::NOT_FOUND, &json!("NotFoundHttpException")),
                "{method} {path}"
            );
        }
    }
    let (s, list) = call(&api, &alice_key, Method::GET, "/api/client", None).await;
    assert_eq!((s, &list["meta"]["pagination"]["total"]), (StatusCode::OK, &json!(0)));
    // A share without server.read does not break the list (or show the server).
    let bob_token = api.login("bob@example.test", "password-123").await;
    let alice_id = api.ok(Method::GET, "/api/auth/me", &alice_token, None).await["user"]["id"].clone();
    let grant = json!({"user_id": alice_id, "permissions": ["console.read"]});
    api.ok(Method::POST, &format!("/api/servers/{id}/access"), &bob_token, Some(grant)).await;
    let (s, list) = call(&api, &alice_key, Method::GET, "/api/client", None).await;
    assert_eq!((s, &list["meta"]["pagination"]["total"]), (StatusCode::OK, &json!(0)), "{list}");
    let after = api.ok(Method::GET, &format!("/api/servers/{id}"), &api.admin, None).await;
    assert_eq!((&after["name"], &after["state"]), (&json!("srv-25566"), &json!("stopped")));

    // A key made for oneself holds server permissions only where its owner does, and no
    // global permission its owner lacks; keys do not make keys; another's key is not found.
    let (s, v) = call(&api, &alice_key, Method::GET, "/api/application/users", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v, _) = api
        .call(
            Method::POST,
            "/api/account/api-keys",
            Some(&alice_token),
            Some(json!({"name": "x", "scopes": ["admin.users"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) =
        call(&api, &alice_key, Method::POST, "/api/client/account/api-keys", Some(json!({"description": "y"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let admin_keys = api.ok(Method::GET, "/api/admin/api-keys", &api.admin, None).await;
    let alice_key_id = admin_keys["items"][0]["id"].as_str().expect("id").to_string();
    let (s, _, _) =
        api.call(Method::DELETE, &format!("/api/account/api-keys/{alice_key_id}"), Some(&bob_token), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&api, &alice_key, Method::GET, "/api/client", None).await;
    assert_eq!(s, StatusCode::OK, "bob's attempt left alice's key working");
    let (s, _, _) =
        api.call(Method::DELETE, &format!("/api/account/api-keys/{alice_key_id}"), Some(&alice_token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&api, &alice_key, Method::GET, "/api/client", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
