//! The OpenAPI document: every `$ref` resolves, and the constraints the API enforces are
//! declared, so generated clients send what the server accepts.

use serde_json::{Value, json};

fn document() -> Value {
    serde_json::to_value(catalyst_http::openapi_document()).expect("json")
}

/// Every `$ref` value anywhere in `v`, with the JSON pointer where it was found.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref"
                    && let Some(r) = child.as_str()
                {
                    out.push((at.clone(), r));
                }
                refs(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_in_the_document_resolves_to_a_defined_schema() {
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(found.len() > 50, "only {} refs: the walk is broken", found.len());
    let dangling: Vec<String> = found
        .iter()
        .filter(|(_, r)| {
            // Local refs only (`#/components/schemas/Name`), each naming a defined entry.
            let Some(pointer) = r.strip_prefix('#') else { return true };
            !r.starts_with("#/components/") || doc.pointer(pointer).is_none()
        })
        .map(|(at, r)| format!("{at}: {r}"))
        .collect();
    assert!(dangling.is_empty(), "dangling refs:\n{}", dangling.join("\n"));
}

/// `components.schemas.<schema>.properties.<field>`.
fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
    let p = &doc["components"]["schemas"][schema]["properties"][field];
    assert!(p.is_object(), "{schema}.{field} is not in the document");
    p
}

#[test]
fn enforced_constraints_are_declared() {
    let doc = document();
    let username = property(&doc, "RegisterInput", "username");
    assert_eq!((&username["minLength"], &username["maxLength"]), (&json!(3), &json!(191)), "{username}");
    assert!(username["pattern"].as_str().is_some_and(|p| p.contains("A-Za-z0-9_.@+-")), "{username}");
    assert_eq!(property(&doc, "RegisterInput", "password")["minLength"], 8);
    assert_eq!(property(&doc, "RegisterInput", "email")["maxLength"], 254);
    let port = property(&doc, "Allocation", "port");
    assert_eq!((&port["minimum"], &port["maximum"]), (&json!(1), &json!(65535)), "{port}");
    let memory = property(&doc, "Limits", "memory_mb");
    assert_eq!((&memory["minimum"], &memory["maximum"]), (&json!(0), &json!(1_048_576)), "{memory}");
    let allocations = property(&doc, "NewServer", "allocations");
    assert_eq!(allocations["maxItems"], 32, "{allocations}");
    let ports = property(&doc, "NewAllocations", "ports");
    assert_eq!((&ports["minItems"], &ports["maxItems"]), (&json!(1), &json!(100)), "{ports}");
    assert_eq!(property(&doc, "NewUser", "external_id")["maxLength"], 191);
    let held = property(&doc, "Limits", "allocations");
    assert_eq!((&held["minimum"], &held["maximum"]), (&json!(1), &json!(32)), "{held}");
    assert_eq!(property(&doc, "NewServer", "name")["maxLength"], 100);
    assert_eq!(property(&doc, "NewTemplate", "startup")["maxLength"], 8192);
    assert_eq!(property(&doc, "CommandInput", "command")["maxLength"], 4096);
    assert_eq!(property(&doc, "NewApiKey", "rate_window_secs")["maximum"], 86_400);
    assert_eq!(property(&doc, "NewNode", "overallocate_percent")["maximum"], 1000);
}

/// The Pterodactyl dialects have documents of their own, and every operation they list is a
/// route the router answers (with Pterodactyl's error shape, never the "route not found" body).
#[tokio::test]
async fn the_pterodactyl_dialects_document_every_route_they_serve() {
    use axum::http::{Method, StatusCode};

    let api = super::api::Api::new().await;
    for (doc_path, at_least) in [("/api/application/openapi.json", 28), ("/api/client/openapi.json", 26)] {
        let (s, doc, _) = api.call(Method::GET, doc_path, None, None).await;
        assert_eq!(s, StatusCode::OK, "{doc_path} needs no credential");
        let paths = doc["paths"].as_object().expect("paths");
        let mut operations = 0;
        for (path, methods) in paths {
            assert!(path.starts_with(doc_path.trim_end_matches("/openapi.json")), "{path} in {doc_path}");
            for (method, op) in methods.as_object().expect("methods") {
                operations += 1;
                assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}");
                let concrete =
                    path.replace("{server}", "deadbeef").replace("{identifier}", "x").replace(['{', '}'], "");
                let method: Method = method.to_uppercase().parse().expect("method");
                let (s, v, _) = api.call(method.clone(), &concrete, Some(&api.admin), Some(json!({}))).await;
                assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {v}");
                assert!(
                    v["error"]["message"] != "route not found",
                    "{method} {path} is documented but not routed: {v}"
                );
            }
        }
        assert!(operations >= at_least, "{doc_path}: {operations} operations");
    }
}
