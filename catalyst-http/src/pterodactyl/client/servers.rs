//! `/api/client/servers/{server}`: details, resources, power, command, websocket credentials,
//! startup variables and settings.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use catalyst_core::Error;
use catalyst_core::lifecycle::ServerState;
use catalyst_runtime::control::ServerPatch;
use serde_json::{Value, json};

use super::{Target, one_server};
use crate::AppState;
use crate::extract::{ClientIp, Credential};
use crate::pterodactyl::{Input, PResult, item, no_content};

crate::pterodactyl::routes! {
    get "/api/client" => super::list_servers, 200, "The servers the caller owns or shares";
    get "/api/client/servers/{server}" => details, 200, "One server";
    get "/api/client/servers/{server}/resources" => resources, 200, "State and latest resource sample";
    post "/api/client/servers/{server}/power" => power, 204, "`{signal: start|stop|restart|kill}`";
    post "/api/client/servers/{server}/command" => command, 204, "`{command}` to the console";
    get "/api/client/servers/{server}/websocket" => websocket, 200, "Credentials for Catalyst's gateway (`/api/ws`), not a Wings socket";
    get "/api/client/servers/{server}/startup" => startup, 200, "Startup line and the variables the caller may see";
    put "/api/client/servers/{server}/startup/variable" => set_variable, 200, "Set a variable `{key, value}` (its rules apply)";
    post "/api/client/servers/{server}/settings/rename" => rename, 204, "`{name, description?}`";
    post "/api/client/servers/{server}/settings/reinstall" => reinstall, 204, "Run the install script again";
}

async fn details(State(s): State<AppState>, Target { who, server }: Target) -> PResult<Json<Value>> {
    Ok(Json(one_server(&s, &who, &server).await?))
}

/// Wings' power state names.
fn current_state(state: ServerState) -> &'static str {
    match state {
        ServerState::Starting => "starting",
        ServerState::Running => "running",
        ServerState::Stopping => "stopping",
        _ => "offline",
    }
}

/// `object: "stats"`: the state and the latest resource sample (zeros when none is recent).
async fn resources(State(s): State<AppState>, Target { who, server }: Target) -> PResult<Json<Value>> {
    let usage = s.catalyst.server_usage(&who, server.id).await?;
    let resources = match usage {
        Some(m) => json!({"memory_bytes": m.memory_bytes, "cpu_absolute": m.cpu_percent, "disk_bytes": m.disk_bytes,
                          "network_rx_bytes": m.rx_bytes, "network_tx_bytes": m.tx_bytes, "uptime": 0}),
        None => json!({"memory_bytes": 0, "cpu_absolute": 0, "disk_bytes": 0, "network_rx_bytes": 0,
                       "network_tx_bytes": 0, "uptime": 0}),
    };
    Ok(Json(item(
        "stats",
        json!({"current_state": current_state(server.state), "is_suspended": server.suspended(),
               "resources": resources}),
    )))
}

#[derive(serde::Deserialize)]
struct PowerInput {
    signal: String,
}

/// `{signal: start|stop|restart|kill}` → 204.
async fn power(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<PowerInput>,
) -> PResult<Response> {
    let c = &s.catalyst;
    match input.signal.as_str() {
        "start" => c.start_server(&who, server.id).await?,
        "stop" => c.stop_server(&who, server.id).await?,
        "restart" => c.restart_server(&who, server.id).await?,
        "kill" => c.kill_server(&who, server.id).await?,
        other => return Err(Error::invalid(format!("The selected signal {other:?} is invalid.")).into()),
    };
    Ok(no_content())
}

#[derive(serde::Deserialize)]
struct CommandInput {
    command: String,
}

/// `{command}` → 204.
async fn command(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<CommandInput>,
) -> PResult<Response> {
    s.catalyst.send_command(&who, server.id, &input.command).await?;
    Ok(no_content())
}

/// `{data: {token, socket}}`: a console ticket (ten minutes, this server only, console and
/// power) for Catalyst's own gateway (`/api/ws`). The gateway takes it in an `auth` frame and
/// then speaks Catalyst's frames, not a Wings socket's events (see the README).
async fn websocket(
    State(s): State<AppState>,
    Target { server, .. }: Target,
    Credential(credential): Credential,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> PResult<Json<Value>> {
    let (token, _) = s.catalyst.console_ticket(&credential, ip, server.id).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("host").unwrap_or("127.0.0.1:3000");
    let scheme = if header("x-forwarded-proto") == Some("https") { "wss" } else { "ws" };
    Ok(Json(json!({"data": {"token": token, "socket": format!("{scheme}://{host}/api/ws")}})))
}

/// The variables as `egg_variable` objects, the startup line in `meta`.
async fn startup(State(s): State<AppState>, Target { who, server }: Target) -> PResult<Json<Value>> {
    Ok(Json(startup_view(&s.catalyst.server_startup(&who, server.id).await?)))
}

fn startup_view(startup: &catalyst_runtime::control::ServerStartup) -> Value {
    let data: Vec<Value> = startup.variables.iter().map(|(v, value)| variable_view(v, value)).collect();
    let images: serde_json::Map<String, Value> =
        startup.images.iter().map(|(name, image)| (name.clone(), json!(image))).collect();
    json!({"object": "list", "data": data,
           "meta": {"startup_command": startup.startup, "raw_startup_command": startup.startup,
                    "docker_images": images}})
}

fn variable_view(v: &catalyst_core::model::TemplateVariable, value: &str) -> Value {
    item(
        "egg_variable",
        json!({"name": v.label, "description": v.description, "env_variable": v.name,
               "default_value": v.default.clone().unwrap_or_default(), "server_value": value,
               "is_editable": v.user_editable, "rules": v.rules.joined()}),
    )
}

#[derive(serde::Deserialize)]
struct VariableInput {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// `{key, value}`: the template's rules and "user-editable" decide, as in the facade.
async fn set_variable(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<VariableInput>,
) -> PResult<Json<Value>> {
    let value = input.value.unwrap_or_default();
    let patch = ServerPatch { variables: Some(BTreeMap::from([(input.key.clone(), value)])), ..Default::default() };
    s.catalyst.update_server(&who, server.id, patch).await?;
    let startup = s.catalyst.server_startup(&who, server.id).await?;
    let (v, value) = startup
        .variables
        .iter()
        .find(|(v, _)| v.name == input.key)
        .ok_or_else(|| Error::invalid(format!("The requested variable {} does not exist.", input.key)))?;
    Ok(Json(variable_view(v, value)))
}

#[derive(serde::Deserialize)]
struct RenameInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

async fn rename(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Input(input): Input<RenameInput>,
) -> PResult<Response> {
    let patch = ServerPatch { name: Some(input.name), description: input.description, ..Default::default() };
    s.catalyst.update_server(&who, server.id, patch).await?;
    Ok(no_content())
}

async fn reinstall(State(s): State<AppState>, Target { who, server }: Target) -> PResult<Response> {
    s.catalyst.reinstall_server(&who, server.id).await?;
    Ok(no_content())
}
