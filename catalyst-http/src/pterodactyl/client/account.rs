//! `/api/client/account`: the caller and their client API keys. A client key gets every
//! server permission but `server.delete`, which it exercises wherever its owner may: a
//! customer's own and shared servers (an operator's reach every server, as in Pterodactyl). Its
//! `identifier` is the key's public part and `meta.secret_token` the rest, so the two
//! concatenated are the key, as Pterodactyl clients assume.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use catalyst_core::Error;
use catalyst_core::model::{ApiKey, Page};
use catalyst_core::permission::Permission;
use catalyst_runtime::control::{KEY_PREFIX, NewApiKey};
use serde_json::{Value, json};

use crate::AppState;
use crate::pterodactyl::{Caller, Input, PResult, item, no_content, time};

crate::pterodactyl::routes! {
    get "/api/client/account" => account, 200, "The caller";
    get "/api/client/account/api-keys" => list_keys, 200, "The caller's client keys";
    post "/api/client/account/api-keys" => create_key, 200, "A client key: `identifier` + `meta.secret_token` is the key";
    delete "/api/client/account/api-keys/{identifier}" => delete_key, 204, "Delete one of the caller's keys";
}

async fn account(State(s): State<AppState>, Caller(who): Caller) -> PResult<Json<Value>> {
    let me = s.catalyst.me(&who).await?;
    let u = &me.user;
    Ok(Json(item(
        "user",
        json!({"id": u.number, "admin": !u.roles.is_empty(), "username": u.username, "email": u.email,
               "first_name": u.first_name, "last_name": u.last_name, "language": "en"}),
    )))
}

fn identifier(k: &ApiKey) -> String {
    format!("{KEY_PREFIX}{}_", k.prefix)
}

fn key_view(k: &ApiKey) -> Value {
    item(
        "api_key",
        json!({"identifier": identifier(k), "description": k.name, "allowed_ips": [],
               "last_used_at": k.last_used_at.map(time), "created_at": time(k.created_at)}),
    )
}

async fn list_keys(State(s): State<AppState>, Caller(who): Caller) -> PResult<Json<Value>> {
    let keys = s.catalyst.list_account_keys(&who, Page::new(0, Page::MAX_LIMIT)).await?;
    Ok(Json(json!({"object": "list", "data": keys.items.iter().map(key_view).collect::<Vec<_>>()})))
}

#[derive(serde::Deserialize)]
struct NewKey {
    #[serde(default)]
    description: String,
}

async fn create_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewKey>,
) -> PResult<Json<Value>> {
    let name = if input.description.trim().is_empty() { "client key".to_string() } else { input.description };
    let scopes =
        Permission::ALL.iter().copied().filter(|p| p.is_server_scoped() && *p != Permission::ServerDelete).collect();
    let new = NewApiKey { name, scopes, rate_limit: None, rate_window_secs: 60, expires_at: None };
    let created = s.catalyst.create_account_key(&who, new).await?;
    let secret = created.key.strip_prefix(&identifier(&created.api_key)).unwrap_or_default().to_string();
    let mut view = key_view(&created.api_key);
    view["meta"] = json!({"secret_token": secret});
    Ok(Json(view))
}

async fn delete_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(identifier_): Path<String>,
) -> PResult<Response> {
    let keys = s.catalyst.list_account_keys(&who, Page::new(0, Page::MAX_LIMIT)).await?;
    let key = keys.items.iter().find(|k| identifier(k) == identifier_).ok_or_else(|| Error::not_found("api key"))?;
    s.catalyst.delete_account_key(&who, key.id).await?;
    Ok(no_content())
}
