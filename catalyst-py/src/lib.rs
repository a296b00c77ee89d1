//! Catalyst for Python: conversion and error mapping over [`CatalystApi`], nothing else. Each
//! method returns an awaitable (asyncio); `catalyst.sync` wraps them for blocking callers.
//! Values cross as Python dicts and lists (through serde), errors as one exception class per
//! error code.

use std::sync::Arc;

use catalyst_core::{Error, ErrorKind};
use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig};
use catalyst_runtime::node::RuntimeChoice;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

pyo3::create_exception!(_native, CatalystError, PyException, "Any Catalyst error; `code` names it.");
pyo3::create_exception!(_native, NotFoundError, CatalystError, "The object does not exist or is not yours.");
pyo3::create_exception!(_native, ConflictError, CatalystError, "It clashes with the current state.");
pyo3::create_exception!(_native, InvalidTransitionError, CatalystError, "The server's state does not allow it.");
pyo3::create_exception!(_native, PermissionDeniedError, CatalystError, "The caller may not do this.");
pyo3::create_exception!(_native, UnauthenticatedError, CatalystError, "The credential is missing, wrong or expired.");
pyo3::create_exception!(_native, InvalidInputError, CatalystError, "An argument is invalid.");
pyo3::create_exception!(_native, UnavailableError, CatalystError, "A node or the server cannot be reached.");
pyo3::create_exception!(_native, RateLimitedError, CatalystError, "Too many requests; retry later.");
pyo3::create_exception!(_native, QuotaExceededError, CatalystError, "A limit (disk, capacity) would be exceeded.");
pyo3::create_exception!(_native, TimeoutError, CatalystError, "It took too long.");
pyo3::create_exception!(_native, InternalError, CatalystError, "Catalyst failed; see its logs.");

fn py_err(e: Error) -> PyErr {
    let message = e.message().to_string();
    let err = match e.kind() {
        ErrorKind::NotFound => NotFoundError::new_err(message),
        ErrorKind::Conflict => ConflictError::new_err(message),
        ErrorKind::InvalidTransition => InvalidTransitionError::new_err(message),
        ErrorKind::PermissionDenied => PermissionDeniedError::new_err(message),
        ErrorKind::Unauthenticated => UnauthenticatedError::new_err(message),
        ErrorKind::InvalidInput => InvalidInputError::new_err(message),
        ErrorKind::Unavailable => UnavailableError::new_err(message),
        ErrorKind::RateLimited => RateLimitedError::new_err(message),
        ErrorKind::QuotaExceeded => QuotaExceededError::new_err(message),
        ErrorKind::Timeout => TimeoutError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    };
    let code = e.kind().code();
    Python::attach(|py| {
        let _ = err.value(py).setattr("code", code);
    });
    err
}

/// A Python object (dict, list, str…) into a Rust input, as an `InvalidInputError` when it
/// does not fit.
fn input<T: DeserializeOwned>(value: &Bound<'_, PyAny>) -> PyResult<T> {
    pythonize::depythonize(value).map_err(|e| InvalidInputError::new_err(e.to_string()))
}

fn output<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    pythonize::pythonize(py, value).map(Bound::unbind).map_err(|e| InternalError::new_err(e.to_string()))
}

/// The tokio runtime every call runs on (and the embedded control plane's background work).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("catalyst")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Completions still handing a result to Python; interpreter exit waits for them (a thread
/// touching Python objects after finalization would crash the process).
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Resolve `future` on its event loop's thread (unless it was cancelled meanwhile).
#[pyfunction]
fn _complete(future: &Bound<'_, PyAny>, ok: bool, value: Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    future.call_method1(if ok { "set_result" } else { "set_exception" }, (value,))?;
    Ok(())
}

/// Wait (up to a few seconds, without the GIL) until no completion is in flight.
#[pyfunction]
fn _drain(py: Python<'_>) {
    py.detach(|| {
        for _ in 0..500 {
            if IN_FLIGHT.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
}

/// Run `work` on the runtime; return an asyncio future of its result, converted for Python.
fn spawn<'py, T, F>(
    py: Python<'py>,
    work: F,
    convert: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: std::future::Future<Output = catalyst_core::Result<T>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let (event_loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
    IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    runtime().spawn(async move {
        let result = work.await;
        Python::attach(|py| {
            let (ok, value) = match result.map_err(py_err).and_then(|v| convert(py, v)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            let complete = match wrap_pyfunction!(_complete, py) {
                Ok(f) => f,
                Err(_) => return,
            };
            let _ = event_loop_ref
                .bind(py)
                .call_method1("call_soon_threadsafe", (complete, future_ref.bind(py), ok, value));
        });
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    });
    Ok(future)
}

/// Run `work` and hand Python an awaitable of its serialized result.
fn call<'py, T, F>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
where
    T: Serialize + Send + 'static,
    F: std::future::Future<Output = catalyst_core::Result<T>> + Send + 'static,
{
    spawn(py, work, |py, value: T| output(py, &value))
}

fn instance(py: Python<'_>, catalyst: Catalyst) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, catalyst)?.into_any())
}

fn id<T: std::str::FromStr>(text: &str) -> PyResult<T> {
    text.parse().map_err(|_| InvalidInputError::new_err(format!("{text:?} is not an id")))
}

/// The control plane: embedded in this process or a catalyst-server, with the same methods.
#[pyclass(frozen, module = "catalyst._native")]
struct Catalyst {
    api: Arc<dyn CatalystApi>,
    /// The embedded mode's node link (kept alive with it).
    _hub: Option<catalyst_runtime::link::NodeHub>,
}

#[pymethods]
impl Catalyst {
    /// Run the control plane in this process on `database_url` (`sqlite:<path>` or
    /// `postgres://…`), acting as the operator; `local_node` (`"process"`, `"containerd"` or
    /// `"auto"`) also runs servers here, with files under `data_dir`.
    #[staticmethod]
    #[pyo3(signature = (database_url, data_dir = None, local_node = None))]
    fn embedded<'py>(
        py: Python<'py>,
        database_url: String,
        data_dir: Option<std::path::PathBuf>,
        local_node: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let local_node = local_node.map(|n| n.parse::<RuntimeChoice>()).transpose().map_err(py_err)?;
        let data_dir = data_dir.unwrap_or_else(|| std::path::PathBuf::from("./catalyst-data"));
        let open = async move {
            let (api, hub) = Embedded::open(EmbeddedConfig { database_url, data_dir, local_node }).await?;
            Ok(Catalyst { api: Arc::new(api), _hub: Some(hub) })
        };
        spawn(py, open, instance)
    }

    /// A catalyst-server at `url`, with an access `token` or an `api_key`.
    #[staticmethod]
    #[pyo3(signature = (url, token = None, api_key = None))]
    fn connect(url: &str, token: Option<&str>, api_key: Option<&str>) -> PyResult<Self> {
        let credential = match (token, api_key) {
            (Some(t), None) => t,
            (None, Some(k)) => k,
            _ => return Err(InvalidInputError::new_err("give exactly one of token and api_key")),
        };
        let client = catalyst_http::client::Client::new(url, credential).map_err(py_err)?;
        Ok(Catalyst { api: Arc::new(client), _hub: None })
    }

    /// Log in to a catalyst-server at `url` with an e-mail address and a password.
    #[staticmethod]
    fn login<'py>(py: Python<'py>, url: String, email: String, password: String) -> PyResult<Bound<'py, PyAny>> {
        let login = async move {
            let client = catalyst_http::client::Client::login(&url, &email, &password).await?;
            Ok(Catalyst { api: Arc::new(client), _hub: None })
        };
        spawn(py, login, instance)
    }

    fn me<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move { api.me().await })
    }

    fn create_user<'py>(&self, py: Python<'py>, user: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, user) = (self.api.clone(), input(user)?);
        call(py, async move { api.create_user(user).await })
    }

    fn list_locations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move { api.list_locations().await })
    }

    fn create_location<'py>(&self, py: Python<'py>, location: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, location) = (self.api.clone(), input(location)?);
        call(py, async move { api.create_location(location).await })
    }

    #[pyo3(signature = (offset = 0, limit = 50))]
    fn list_nodes<'py>(&self, py: Python<'py>, offset: u64, limit: u32) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move { api.list_nodes(catalyst_core::model::Page::new(offset, limit)).await })
    }

    fn create_node<'py>(&self, py: Python<'py>, node: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, node) = (self.api.clone(), input(node)?);
        call(py, async move { api.create_node(node).await })
    }

    fn get_node<'py>(&self, py: Python<'py>, node_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, node_id) = (self.api.clone(), id(node_id)?);
        call(py, async move { api.get_node(node_id).await })
    }

    fn create_template<'py>(&self, py: Python<'py>, template: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, template) = (self.api.clone(), input(template)?);
        call(py, async move { api.create_template(template).await })
    }

    #[pyo3(signature = (offset = 0, limit = 50))]
    fn list_templates<'py>(&self, py: Python<'py>, offset: u64, limit: u32) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move { api.list_templates(catalyst_core::model::Page::new(offset, limit)).await })
    }

    fn create_server<'py>(&self, py: Python<'py>, server: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, server) = (self.api.clone(), input(server)?);
        call(py, async move { api.create_server(server).await })
    }

    fn get_server<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.get_server(server_id).await })
    }

    #[pyo3(signature = (offset = 0, limit = 50))]
    fn list_servers<'py>(&self, py: Python<'py>, offset: u64, limit: u32) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move { api.list_servers(catalyst_core::model::Page::new(offset, limit)).await })
    }

    fn update_server<'py>(
        &self,
        py: Python<'py>,
        server_id: &str,
        patch: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id, patch) = (self.api.clone(), id(server_id)?, input(patch)?);
        call(py, async move { api.update_server(server_id, patch).await })
    }

    fn delete_server<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.delete_server(server_id).await })
    }

    fn start<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.start_server(server_id).await })
    }

    fn stop<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.stop_server(server_id).await })
    }

    fn restart<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.restart_server(server_id).await })
    }

    fn kill<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.kill_server(server_id).await })
    }

    fn send_command<'py>(&self, py: Python<'py>, server_id: &str, command: String) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.send_command(server_id, &command).await })
    }

    fn suspend<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.suspend_server(server_id).await })
    }

    fn unsuspend<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.unsuspend_server(server_id).await })
    }

    #[pyo3(signature = (server_id, query = None))]
    fn logs<'py>(
        &self,
        py: Python<'py>,
        server_id: &str,
        query: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let query = match query {
            Some(q) => input(q)?,
            None => Default::default(),
        };
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.server_logs(server_id, query).await })
    }

    #[pyo3(signature = (server_id, name = None))]
    fn create_backup<'py>(
        &self,
        py: Python<'py>,
        server_id: &str,
        name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.create_backup(server_id, name).await })
    }

    fn list_backups<'py>(&self, py: Python<'py>, server_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id) = (self.api.clone(), id(server_id)?);
        call(py, async move { api.list_backups(server_id).await })
    }

    fn restore_backup<'py>(&self, py: Python<'py>, server_id: &str, backup_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id, backup_id) = (self.api.clone(), id(server_id)?, id(backup_id)?);
        call(py, async move { api.restore_backup(server_id, backup_id).await })
    }

    fn delete_backup<'py>(&self, py: Python<'py>, server_id: &str, backup_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, server_id, backup_id) = (self.api.clone(), id(server_id)?, id(backup_id)?);
        call(py, async move { api.delete_backup(server_id, backup_id).await })
    }
}

impl std::fmt::Debug for Catalyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalyst").field("api", &self.api).finish_non_exhaustive()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Catalyst>()?;
    m.add_function(wrap_pyfunction!(_drain, m)?)?;
    // Interpreter exit waits for results still being handed over.
    py.import("atexit")?.call_method1("register", (m.getattr("_drain")?,))?;
    let mut all = vec!["Catalyst"];
    for (name, class) in [
        ("CatalystError", py.get_type::<CatalystError>()),
        ("NotFoundError", py.get_type::<NotFoundError>()),
        ("ConflictError", py.get_type::<ConflictError>()),
        ("InvalidTransitionError", py.get_type::<InvalidTransitionError>()),
        ("PermissionDeniedError", py.get_type::<PermissionDeniedError>()),
        ("UnauthenticatedError", py.get_type::<UnauthenticatedError>()),
        ("InvalidInputError", py.get_type::<InvalidInputError>()),
        ("UnavailableError", py.get_type::<UnavailableError>()),
        ("RateLimitedError", py.get_type::<RateLimitedError>()),
        ("QuotaExceededError", py.get_type::<QuotaExceededError>()),
        ("TimeoutError", py.get_type::<TimeoutError>()),
        ("InternalError", py.get_type::<InternalError>()),
    ] {
        m.add(name, class)?;
        all.push(name);
    }
    all.sort_unstable();
    m.add("__all__", all)?;
    Ok(())
}
