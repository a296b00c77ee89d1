//! Catalyst for Node.js: conversion and error mapping over [`CatalystApi`], nothing else.
//! Every method returns a Promise; values cross as plain objects (through serde), errors as
//! `Error`s whose `code` is Catalyst's error code (`not_found`, `invalid_input`, …).

use std::sync::Arc;

mod calls;

use catalyst_core::model::Page;
use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig, SharedFeed};
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

/// A promise of `work`'s JSON result.
fn json<'env>(
    env: &'env Env,
    work: impl std::future::Future<Output = Result<Value>> + Send + 'static,
) -> Result<PromiseRaw<'env, Unknown<'env>>> {
    // SAFETY: called by `calls` on the environment's thread.
    calls::promise(env, work, |env, value| unsafe { Value::to_napi_value(env, value) })
}

fn instance<T: ToNapiValue>(env: napi::sys::napi_env, value: T) -> Result<napi::sys::napi_value> {
    // SAFETY: called by `calls` on the environment's thread.
    unsafe { T::to_napi_value(env, value) }
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
}

#[napi]
impl Catalyst {
    /// Run the control plane in this process (`sqlite:<path>` or `postgres://…`), acting as the
    /// operator; `localNode` (`process`, `containerd`, `auto`) also runs servers here;
    /// `allowUnconfined` lets it run servers it cannot confine (plain processes without root).
    #[napi]
    pub fn embedded<'env>(
        env: &'env Env,
        database_url: String,
        data_dir: Option<String>,
        local_node: Option<String>,
        allow_unconfined: Option<bool>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let open = async move {
            let local_node = local_node.map(|n| n.parse::<RuntimeChoice>()).transpose().map_err(js_err)?;
            let data_dir = std::path::PathBuf::from(data_dir.unwrap_or_else(|| "./catalyst-data".into()));
            let allow_unconfined = allow_unconfined.unwrap_or(false);
            let config = EmbeddedConfig { database_url, data_dir, local_node, allow_unconfined };
            let api = Embedded::open(config).await.map_err(js_err)?;
            Ok(Catalyst { api: Arc::new(api) })
        };
        calls::promise(env, open, instance)
    }

    /// A catalyst-server at `url` with an access token or an API key.
    #[napi]
    pub fn connect(url: String, credential: String) -> Result<Catalyst> {
        let client = catalyst_http::client::Client::new(&url, &credential).map_err(js_err)?;
        Ok(Catalyst { api: Arc::new(client) })
    }

    /// Log in to a catalyst-server at `url`.
    #[napi]
    pub fn login<'env>(
        env: &'env Env,
        url: String,
        email: String,
        password: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let login = async move {
            let client = catalyst_http::client::Client::login(&url, &email, &password).await.map_err(js_err)?;
            Ok(Catalyst { api: Arc::new(client) })
        };
        calls::promise(env, login, instance)
    }

    /// Stop what this handle runs: an embedded control plane ends its node, its tasks and its
    /// database connections (game servers keep running). Harmless twice.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move {
            api.close().await;
            output(Ok(()))
        })
    }

    #[napi]
    pub fn me<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.me().await) })
    }

    #[napi]
    pub fn create_user<'env>(&self, env: &'env Env, user: Value) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_user(input(user)?).await) })
    }

    #[napi]
    pub fn list_locations<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_locations().await) })
    }

    #[napi]
    pub fn create_location<'env>(&self, env: &'env Env, location: Value) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_location(input(location)?).await) })
    }

    #[napi]
    pub fn list_nodes<'env>(
        &self,
        env: &'env Env,
        offset: Option<u32>,
        limit: Option<u32>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_nodes(page(offset, limit)).await) })
    }

    #[napi]
    pub fn create_node<'env>(&self, env: &'env Env, node: Value) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_node(input(node)?).await) })
    }

    #[napi]
    pub fn get_node<'env>(&self, env: &'env Env, node_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.get_node(id(&node_id)?).await) })
    }

    /// Add ports to a node's allocation pool; resolves to how many were new.
    #[napi]
    pub fn add_allocations<'env>(
        &self,
        env: &'env Env,
        node_id: String,
        allocations: Value,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.add_allocations(id(&node_id)?, input(allocations)?).await) })
    }

    #[napi]
    pub fn list_allocations<'env>(
        &self,
        env: &'env Env,
        node_id: String,
        offset: Option<u32>,
        limit: Option<u32>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_allocations(id(&node_id)?, page(offset, limit)).await) })
    }

    #[napi]
    pub fn update_allocation<'env>(
        &self,
        env: &'env Env,
        node_id: String,
        number: u32,
        patch: Value,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.update_allocation(id(&node_id)?, u64::from(number), input(patch)?).await) })
    }

    #[napi]
    pub fn delete_allocation<'env>(
        &self,
        env: &'env Env,
        node_id: String,
        number: u32,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.delete_allocation(id(&node_id)?, u64::from(number)).await) })
    }

    #[napi]
    pub fn create_template<'env>(&self, env: &'env Env, template: Value) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_template(input(template)?).await) })
    }

    /// Import a Pterodactyl or Pelican egg (its text or a Buffer, JSON or YAML).
    #[napi(ts_args_type = "egg: string | Buffer")]
    pub fn import_template<'env>(
        &self,
        env: &'env Env,
        egg: Either<String, Buffer>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let egg = match egg {
            Either::A(text) => text.into_bytes(),
            Either::B(buffer) => buffer.to_vec(),
        };
        let api = self.api.clone();
        json(env, async move { output(api.import_template(egg).await) })
    }

    /// A template as an egg file: `ptdl_v2` (default) or `plcn_v3`.
    #[napi]
    pub fn export_template<'env>(
        &self,
        env: &'env Env,
        template_id: String,
        format: Option<String>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move {
            let format = catalyst_core::egg::EggFormat::parse(format.as_deref().unwrap_or("ptdl_v2"));
            output(match format {
                Ok(format) => api.export_template(id(&template_id)?, format).await,
                Err(e) => Err(e),
            })
        })
    }

    #[napi]
    pub fn list_templates<'env>(
        &self,
        env: &'env Env,
        offset: Option<u32>,
        limit: Option<u32>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_templates(page(offset, limit)).await) })
    }

    #[napi]
    pub fn create_server<'env>(&self, env: &'env Env, server: Value) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_server(input(server)?).await) })
    }

    #[napi]
    pub fn get_server<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.get_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn list_servers<'env>(
        &self,
        env: &'env Env,
        offset: Option<u32>,
        limit: Option<u32>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_servers(page(offset, limit)).await) })
    }

    #[napi]
    pub fn update_server<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        patch: Value,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.update_server(id(&server_id)?, input(patch)?).await) })
    }

    #[napi]
    pub fn delete_server<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.delete_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn start<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.start_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn stop<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.stop_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn restart<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.restart_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn kill<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.kill_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn send_command<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        command: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.send_command(id(&server_id)?, &command).await) })
    }

    #[napi]
    pub fn suspend<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.suspend_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn unsuspend<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.unsuspend_server(id(&server_id)?).await) })
    }

    #[napi]
    pub fn logs<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        query: Option<Value>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move {
            let query = match query {
                Some(q) => input(q)?,
                None => Default::default(),
            };
            output(api.server_logs(id(&server_id)?, query).await)
        })
    }

    #[napi]
    pub fn create_backup<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        name: Option<String>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.create_backup(id(&server_id)?, name).await) })
    }

    #[napi]
    pub fn list_backups<'env>(&self, env: &'env Env, server_id: String) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.list_backups(id(&server_id)?).await) })
    }

    #[napi]
    pub fn restore_backup<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        backup_id: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.restore_backup(id(&server_id)?, id(&backup_id)?).await) })
    }

    #[napi]
    pub fn delete_backup<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        backup_id: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        json(env, async move { output(api.delete_backup(id(&server_id)?, id(&backup_id)?).await) })
    }

    /// Subscribe to a server's events (console lines after `since` replayed first).
    #[napi]
    pub fn events<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        since: Option<i64>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        self.feed(env, server_id, since, false)
    }

    /// Subscribe to a server's console lines (those after `since` first).
    #[napi]
    pub fn console<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        since: Option<i64>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        self.feed(env, server_id, since, true)
    }
}

/// A live feed of a server's events or console lines: `next()` resolves to the next one, or to
/// `null` once it has ended; `close()` ends it. `index.js` makes it an async iterator.
#[napi]
pub struct Feed {
    feed: SharedFeed,
}

#[napi]
impl Feed {
    #[napi]
    pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let feed = self.feed.clone();
        json(env, async move { feed.next().await.unwrap_or(Ok(Value::Null)).map_err(js_err) })
    }

    /// End the feed (a pending `next()` resolves to `null`).
    #[napi]
    pub fn close(&self) {
        self.feed.close();
    }
}

impl Catalyst {
    fn feed<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        since: Option<i64>,
        console: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let api = self.api.clone();
        let open = async move {
            let feed = SharedFeed::open(api.as_ref(), id(&server_id)?, since, console).await.map_err(js_err)?;
            Ok(Feed { feed })
        };
        calls::promise(env, open, instance)
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Catalyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalyst").field("api", &self.api).finish_non_exhaustive()
    }
}
