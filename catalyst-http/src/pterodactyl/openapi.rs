//! The dialects' OpenAPI documents, apart from Catalyst's own (`/api/openapi.json`):
//! `/api/application/openapi.json` and `/api/client/openapi.json`, built from the same route
//! tables as the routers.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use super::Route;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/application/openapi.json", get(|| async { Json(application()) }))
        .route("/api/client/openapi.json", get(|| async { Json(client()) }))
}

fn application() -> Value {
    document(
        "Catalyst: Pterodactyl Application API",
        "Pterodactyl 1.x's Application API for billing modules (WHMCS, Paymenter, Blesta, pydactyl). \
         Integer ids, the `{object, attributes}` envelope, `meta.pagination`, errors as \
         `{errors: [{code, status, detail}]}`. Authenticate with a Catalyst API key as a bearer token; \
         its scopes decide.",
        super::application::routes(),
    )
}

fn client() -> Value {
    document(
        "Catalyst: Pterodactyl Client API (subset)",
        "The part of Pterodactyl 1.x's Client API that pydactyl and Blesta use. Servers go by their \
         8-character identifier or UUID; one the caller cannot see is a 404. The websocket route \
         hands out Catalyst's own gateway, which speaks Catalyst's frames, not Wings' events.",
        super::client::routes(),
    )
}

fn document<'a>(title: &str, description: &str, routes: impl Iterator<Item = &'a Route>) -> Value {
    let mut paths: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for r in routes {
        let parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let success = if r.status == 204 { json!({"description": "Done"}) } else { json!({"description": "OK"}) };
        let operation = json!({
            "summary": r.summary,
            "operationId": format!("{} {}", r.method, r.path),
            "parameters": parameters,
            "responses": {
                r.status.to_string(): success,
                "4XX": {"description": "Refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}},
            },
        });
        paths.entry(r.path).or_default().insert(r.method.to_string(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "description": description, "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A Catalyst API key"}},
            "schemas": {"Errors": {
                "type": "object",
                "required": ["errors"],
                "properties": {"errors": {"type": "array", "items": {
                    "type": "object",
                    "required": ["code", "status", "detail"],
                    "properties": {"code": {"type": "string"}, "status": {"type": "string"}, "detail": {"type": "string"}},
                }}},
            }},
        },
    })
}
