//! Catalyst for Python: conversion and error mapping over [`CatalystApi`], nothing else. Each
//! method returns an awaitable (asyncio); `catalyst.sync` wraps them for blocking callers.
//! Values cross as Python dicts and lists (through serde), errors as one exception class per
//! error code.

use std::os::fd::AsFd;
use std::sync::Arc;

use catalyst_core::{Error, ErrorKind};
use catalyst_runtime::api::{CatalystApi, Driver, Embedded, EmbeddedConfig, SharedFeed, runtime};
use catalyst_runtime::node::RuntimeChoice;
use nix::sys::eventfd::{EfdFlags, EventFd};
use pyo3::exceptions::{PyException, PyStopAsyncIteration};
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

/// How a finished call makes its result for Python (on the loop's thread).
type Make = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
/// A finished call: its asyncio future and its result.
type Done = (Py<PyAny>, Make);

/// The calls of one asyncio event loop. A woken call bumps an eventfd the loop watches; the
/// loop then polls the woken calls and settles the finished ones.
#[pyclass(frozen, module = "catalyst._native")]
struct LoopDriver {
    driver: Arc<Driver<Done>>,
    wakeups: Arc<EventFd>,
}

#[pymethods]
impl LoopDriver {
    /// Called by the event loop when the eventfd is readable.
    fn _run(&self, py: Python<'_>) {
        let _ = self.wakeups.read();
        for (future, result) in self.driver.run_woken() {
            settle(py, &future, result);
        }
    }
}

impl std::fmt::Debug for LoopDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopDriver").field("driver", &self.driver).finish_non_exhaustive()
    }
}

/// An event loop and its driver.
type LoopAndDriver = (Py<PyAny>, Arc<Driver<Done>>);

/// The driver of `event_loop` (the last one used is kept at hand: most programs run one loop).
fn driver_of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Driver<Done>>> {
    thread_local! {
        // The loop is held, so its address cannot be reused by another loop.
        static LAST: std::cell::RefCell<Option<LoopAndDriver>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(driver) =
        LAST.with_borrow(|last| last.as_ref().filter(|(l, _)| l.bind(py).is(event_loop)).map(|(_, d)| d.clone()))
    {
        return Ok(driver);
    }
    let driver = registered_driver(py, event_loop)?;
    LAST.set(Some((event_loop.clone().unbind(), driver.clone())));
    Ok(driver)
}

/// The driver of `event_loop`, made and registered with it on first use.
fn registered_driver(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Driver<Done>>> {
    static DRIVERS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let drivers =
        DRIVERS.get_or_try_init(py, || py.import("weakref")?.call_method0("WeakKeyDictionary").map(Bound::unbind))?;
    let drivers = drivers.bind(py);
    if let Ok(known) = drivers.get_item(event_loop) {
        return Ok(known.cast::<LoopDriver>()?.get().driver.clone());
    }
    let wakeups = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
        .map_err(|e| InternalError::new_err(format!("eventfd: {e}")))?;
    let wakeups = Arc::new(wakeups);
    let waker = wakeups.clone();
    let driver = Driver::new(runtime().handle().clone(), move || {
        let _ = waker.write(1);
    });
    let fd = std::os::fd::AsRawFd::as_raw_fd(&wakeups.as_fd());
    let loop_driver = Bound::new(py, LoopDriver { driver: driver.clone(), wakeups })?;
    event_loop.call_method1("add_reader", (fd, loop_driver.getattr("_run")?))?;
    drivers.set_item(event_loop, loop_driver)?;
    Ok(driver)
}

/// Hand a call's result to its future (unless it was cancelled meanwhile).
fn settle(py: Python<'_>, future: &Py<PyAny>, result: Make) {
    let future = future.bind(py);
    if future.call_method0("done").and_then(|d| d.is_truthy()).unwrap_or(true) {
        return;
    }
    let _ = match result(py) {
        Ok(value) => future.call_method1("set_result", (value,)),
        Err(e) => future.call_method1("set_exception", (e.into_value(py),)),
    };
}

/// Start `work` on the running event loop's thread; return an asyncio future of its result,
/// converted for Python.
fn spawn<'py, T, F>(
    py: Python<'py>,
    work: F,
    convert: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: std::future::Future<Output = catalyst_core::Result<T>> + Send + 'static,
{
    static GET_RUNNING_LOOP: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let get_running_loop = GET_RUNNING_LOOP
        .get_or_try_init(py, || py.import("asyncio")?.getattr("get_running_loop").map(Bound::unbind))?;
    let event_loop = get_running_loop.bind(py).call0()?;
    let future = event_loop.call_method0("create_future")?;
    let driver = driver_of(py, &event_loop)?;
    let handle = future.clone().unbind();
    let call = async move {
        let result = work.await;
        let make: Make = Box::new(move |py| result.map_err(py_err).and_then(|v| convert(py, v)));
        (handle, make)
    };
    if let Some((handle, make)) = driver.spawn(call) {
        settle(py, &handle, make);
    }
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
}

#[pymethods]
impl Catalyst {
    /// Run the control plane in this process on `database_url` (`sqlite:<path>` or
    /// `postgres://…`), acting as the operator; `local_node` (`"process"`, `"containerd"` or
    /// `"auto"`) also runs servers here, with files under `data_dir`; `allow_unconfined` lets
    /// it run servers it cannot confine (plain processes without root).
    #[staticmethod]
    #[pyo3(signature = (database_url, data_dir = None, local_node = None, allow_unconfined = false))]
    fn embedded<'py>(
        py: Python<'py>,
        database_url: String,
        data_dir: Option<std::path::PathBuf>,
        local_node: Option<String>,
        allow_unconfined: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let local_node = local_node.map(|n| n.parse::<RuntimeChoice>()).transpose().map_err(py_err)?;
        let data_dir = data_dir.unwrap_or_else(|| std::path::PathBuf::from("./catalyst-data"));
        let open = async move {
            let config = EmbeddedConfig { database_url, data_dir, local_node, allow_unconfined };
            let api = Embedded::open(config).await?;
            Ok(Catalyst { api: Arc::new(api) })
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
        Ok(Catalyst { api: Arc::new(client) })
    }

    /// Log in to a catalyst-server at `url` with an e-mail address and a password.
    #[staticmethod]
    fn login<'py>(py: Python<'py>, url: String, email: String, password: String) -> PyResult<Bound<'py, PyAny>> {
        let login = async move {
            let client = catalyst_http::client::Client::login(&url, &email, &password).await?;
            Ok(Catalyst { api: Arc::new(client) })
        };
        spawn(py, login, instance)
    }

    /// Stop what this handle runs: an embedded control plane ends its node, its tasks and its
    /// database connections (game servers keep running). Harmless twice.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        call(py, async move {
            api.close().await;
            Ok(())
        })
    }

    /// The same as `aclose()`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.aclose(py)
    }

    /// `async with await Catalyst.embedded(...) as c:` closes `c` on the way out.
    fn __aenter__<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, async move { Ok(slf) }, |_, c: Py<Catalyst>| Ok(c.into_any()))
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.aclose(py)
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

    /// Add ports to a node's allocation pool: `{"ip", "ports": ["25565", "27015-27030"]}`.
    /// Returns how many were new.
    fn add_allocations<'py>(
        &self,
        py: Python<'py>,
        node_id: &str,
        allocations: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (api, node_id, allocations) = (self.api.clone(), id(node_id)?, input(allocations)?);
        call(py, async move { api.add_allocations(node_id, allocations).await })
    }

    #[pyo3(signature = (node_id, offset = 0, limit = 50))]
    fn list_allocations<'py>(
        &self,
        py: Python<'py>,
        node_id: &str,
        offset: u64,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (api, node_id) = (self.api.clone(), id(node_id)?);
        call(py, async move { api.list_allocations(node_id, catalyst_core::model::Page::new(offset, limit)).await })
    }

    fn update_allocation<'py>(
        &self,
        py: Python<'py>,
        node_id: &str,
        number: u64,
        patch: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (api, node_id, patch) = (self.api.clone(), id(node_id)?, input(patch)?);
        call(py, async move { api.update_allocation(node_id, number, patch).await })
    }

    fn delete_allocation<'py>(&self, py: Python<'py>, node_id: &str, number: u64) -> PyResult<Bound<'py, PyAny>> {
        let (api, node_id) = (self.api.clone(), id(node_id)?);
        call(py, async move { api.delete_allocation(node_id, number).await })
    }

    fn create_template<'py>(&self, py: Python<'py>, template: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (api, template) = (self.api.clone(), input(template)?);
        call(py, async move { api.create_template(template).await })
    }

    /// Import a Pterodactyl or Pelican egg (its text or bytes, JSON or YAML).
    fn import_template<'py>(&self, py: Python<'py>, egg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let egg: Vec<u8> = match egg.extract::<String>() {
            Ok(text) => text.into_bytes(),
            Err(_) => egg.extract::<Vec<u8>>()?,
        };
        let api = self.api.clone();
        call(py, async move { api.import_template(egg).await })
    }

    /// A template as an egg file: `ptdl_v2` (Pterodactyl) or `plcn_v3` (Pelican).
    #[pyo3(signature = (template_id, format = "ptdl_v2"))]
    fn export_template<'py>(&self, py: Python<'py>, template_id: &str, format: &str) -> PyResult<Bound<'py, PyAny>> {
        let (api, template_id, format) = (self.api.clone(), id(template_id)?, format.to_string());
        call(py, async move { api.export_template(template_id, catalyst_core::egg::EggFormat::parse(&format)?).await })
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

    /// Subscribe to a server's events: `async for event in await catalyst.events(id)`. Console
    /// lines after `since` are replayed first.
    #[pyo3(signature = (server_id, since = None))]
    fn events<'py>(&self, py: Python<'py>, server_id: &str, since: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        Feed::open(py, self.api.clone(), server_id, since, false)
    }

    /// Subscribe to a server's console lines (those after `since` first, when given).
    #[pyo3(signature = (server_id, since = None))]
    fn console<'py>(&self, py: Python<'py>, server_id: &str, since: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        Feed::open(py, self.api.clone(), server_id, since, true)
    }
}

/// A live feed of a server's events (`await catalyst.events(id)`) or console lines
/// (`await catalyst.console(id)`): `async for` over it; `aclose()` (or dropping it) ends it.
#[pyclass(frozen, module = "catalyst._native")]
struct Feed {
    feed: SharedFeed,
}

impl Feed {
    fn open<'py>(
        py: Python<'py>,
        api: Arc<dyn CatalystApi>,
        server_id: &str,
        since: Option<i64>,
        console: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let server_id = id(server_id)?;
        let open = async move { Ok(Feed { feed: SharedFeed::open(api.as_ref(), server_id, since, console).await? }) };
        spawn(py, open, |py, feed| Ok(Py::new(py, feed)?.into_any()))
    }
}

#[pymethods]
impl Feed {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let feed = self.feed.clone();
        spawn(py, async move { feed.next().await.transpose() }, |py, item: Option<serde_json::Value>| match item {
            Some(value) => output(py, &value),
            None => Err(PyStopAsyncIteration::new_err(())),
        })
    }

    /// End the feed (a pending `__anext__` ends too).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.feed.close();
        call(py, async { Ok(()) })
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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Catalyst>()?;
    m.add_class::<Feed>()?;
    let mut all = vec!["Catalyst", "Feed"];
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
