//! Catalyst for Node.js: conversion and error mapping over [`CatalystApi`], nothing else.
//! Every method returns a Promise; values cross as plain objects (through serde), errors as
//! `Error`s whose `code` is Catalyst's error code (`not_found`, `invalid_input`, …).

use std::sync::Arc;

use catalyst_core::model::Page;
use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig};
use catalyst_runtime::node::RuntimeChoice;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

type Outcome<T> = napi::Result<T>;

/// Errors cross as `[code] message`; `index.js` turns the prefix into `error.code`.
fn coded(code: &str, message: &str) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

fn js_err(e: catalyst_core::Error) -> napi::Error {
    let code = e.kind().code();
    coded(code, e.message())
}

fn invalid(message: String) -> napi::Error {
    coded("invalid_input", &message)
}

fn input<T: DeserializeOwned>(value: Value) -> Outcome<T> {
    serde_json::from_value(integers(value)).map_err(|e| invalid(e.to_string()))
}

/// JS numbers arrive as floats; whole ones become integers (ids, sequence numbers, limits).
fn integers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, integers(v))).collect()),
        other => other,
    }
}

fn output<T: Serialize>(result: catalyst_core::Result<T>) -> Result<Value> {
    let value = result.map_err(js_err)?;
    serde_json::to_value(value).map_err(|e| coded("internal", &e.to_string()))
}

fn id<T: std::str::FromStr>(text: &str) -> Outcome<T> {
    text.parse().map_err(|_| invalid(format!("{text:?} is not an id")))
}

fn page(offset: Option<u32>, limit: Option<u32>) -> Page {
    Page::new(offset.unwrap_or(0).into(), limit.unwrap_or(50))
}

/// The control plane: embedded in this process or a catalyst-server, with the same methods.
#[napi]
pub struct Catalyst {
    api: Arc<dyn CatalystApi>,
    _hub: Option<catalyst_runtime::link::NodeHub>,
}

#[napi]
impl Catalyst {
    /// Run the control plane in this process (`sqlite:<path>` or `postgres://…`), acting as the
    /// operator; `localNode` (`process`, `containerd`, `auto`) also runs servers here.
    #[napi]
    pub async fn embedded(
        database_url: String,
        data_dir: Option<String>,
        local_node: Option<String>,
    ) -> Result<Catalyst> {
        let local_node = local_node.map(|n| n.parse::<RuntimeChoice>()).transpose().map_err(js_err)?;
        let data_dir = std::path::PathBuf::from(data_dir.unwrap_or_else(|| "./catalyst-data".into()));
        let (api, hub) = Embedded::open(EmbeddedConfig { database_url, data_dir, local_node }).await.map_err(js_err)?;
        Ok(Catalyst { api: Arc::new(api), _hub: Some(hub) })
    }

    /// A catalyst-server at `url` with an access token or an API key.
    #[napi]
    pub fn connect(url: String, credential: String) -> Result<Catalyst> {
        let client = catalyst_http::client::Client::new(&url, &credential).map_err(js_err)?;
        Ok(Catalyst { api: Arc::new(client), _hub: None })
    }

    /// Log in to a catalyst-server at `url`.
    #[napi]
    pub async fn login(url: String, email: String, password: String) -> Result<Catalyst> {
        let client = catalyst_http::client::Client::login(&url, &email, &password).await.map_err(js_err)?;
        Ok(Catalyst { api: Arc::new(client), _hub: None })
    }

    #[napi]
    pub async fn me(&self) -> Result<Value> {
        output(self.api.me().await)
    }

    #[napi]
    pub async fn create_user(&self, user: Value) -> Result<Value> {
        output(self.api.create_user(input(user)?).await)
    }

    #[napi]
    pub async fn list_locations(&self) -> Result<Value> {
        output(self.api.list_locations().await)
    }

    #[napi]
    pub async fn create_location(&self, location: Value) -> Result<Value> {
        output(self.api.create_location(input(location)?).await)
    }

    #[napi]
    pub async fn list_nodes(&self, offset: Option<u32>, limit: Option<u32>) -> Result<Value> {
        output(self.api.list_nodes(page(offset, limit)).await)
    }

    #[napi]
    pub async fn create_node(&self, node: Value) -> Result<Value> {
        output(self.api.create_node(input(node)?).await)
    }

    #[napi]
    pub async fn get_node(&self, node_id: String) -> Result<Value> {
        output(self.api.get_node(id(&node_id)?).await)
    }

    #[napi]
    pub async fn create_template(&self, template: Value) -> Result<Value> {
        output(self.api.create_template(input(template)?).await)
    }

    #[napi]
    pub async fn list_templates(&self, offset: Option<u32>, limit: Option<u32>) -> Result<Value> {
        output(self.api.list_templates(page(offset, limit)).await)
    }

    #[napi]
    pub async fn create_server(&self, server: Value) -> Result<Value> {
        output(self.api.create_server(input(server)?).await)
    }

    #[napi]
    pub async fn get_server(&self, server_id: String) -> Result<Value> {
        output(self.api.get_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn list_servers(&self, offset: Option<u32>, limit: Option<u32>) -> Result<Value> {
        output(self.api.list_servers(page(offset, limit)).await)
    }

    #[napi]
    pub async fn update_server(&self, server_id: String, patch: Value) -> Result<Value> {
        output(self.api.update_server(id(&server_id)?, input(patch)?).await)
    }

    #[napi]
    pub async fn delete_server(&self, server_id: String) -> Result<Value> {
        output(self.api.delete_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn start(&self, server_id: String) -> Result<Value> {
        output(self.api.start_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn stop(&self, server_id: String) -> Result<Value> {
        output(self.api.stop_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn restart(&self, server_id: String) -> Result<Value> {
        output(self.api.restart_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn kill(&self, server_id: String) -> Result<Value> {
        output(self.api.kill_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn send_command(&self, server_id: String, command: String) -> Result<Value> {
        output(self.api.send_command(id(&server_id)?, &command).await)
    }

    #[napi]
    pub async fn suspend(&self, server_id: String) -> Result<Value> {
        output(self.api.suspend_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn unsuspend(&self, server_id: String) -> Result<Value> {
        output(self.api.unsuspend_server(id(&server_id)?).await)
    }

    #[napi]
    pub async fn logs(&self, server_id: String, query: Option<Value>) -> Result<Value> {
        let query = match query {
            Some(q) => input(q)?,
            None => Default::default(),
        };
        output(self.api.server_logs(id(&server_id)?, query).await)
    }

    #[napi]
    pub async fn create_backup(&self, server_id: String, name: Option<String>) -> Result<Value> {
        output(self.api.create_backup(id(&server_id)?, name).await)
    }

    #[napi]
    pub async fn list_backups(&self, server_id: String) -> Result<Value> {
        output(self.api.list_backups(id(&server_id)?).await)
    }

    #[napi]
    pub async fn restore_backup(&self, server_id: String, backup_id: String) -> Result<Value> {
        output(self.api.restore_backup(id(&server_id)?, id(&backup_id)?).await)
    }

    #[napi]
    pub async fn delete_backup(&self, server_id: String, backup_id: String) -> Result<Value> {
        output(self.api.delete_backup(id(&server_id)?, id(&backup_id)?).await)
    }
}

impl std::fmt::Debug for Catalyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalyst").field("api", &self.api).finish_non_exhaustive()
    }
}
