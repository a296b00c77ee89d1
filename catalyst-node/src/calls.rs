//! Calls polled on the JavaScript thread ([`Driver`]): each call returns a promise at once and
//! is settled when a wake-up (one shared threadsafe function) reaches this thread — no tokio
//! worker in between, and no threadsafe function per call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use catalyst_runtime::api::{Driver, runtime};
use napi::bindgen_prelude::*;
use napi::sys;

/// Makes a call's JavaScript value on this thread.
pub(crate) type Make = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>;
type Done = (u32, Result<Make>);

/// The wake-up of this thread, callable from any thread until the environment tears down.
struct Wake {
    tsfn: RwLock<Option<usize>>,
}

impl Wake {
    fn call(&self) {
        let tsfn = self.tsfn.read().unwrap_or_else(|p| p.into_inner());
        if let Some(raw) = *tsfn {
            // SAFETY: the threadsafe function lives until the cleanup hook takes it out.
            unsafe {
                sys::napi_call_threadsafe_function(raw as sys::napi_threadsafe_function, std::ptr::null_mut(), 0);
            }
        }
    }
}

struct Calls {
    driver: Arc<Driver<Done>>,
    wake: Arc<Wake>,
    promises: HashMap<u32, sys::napi_deferred>,
    next: u32,
    keeps_alive: bool,
}

thread_local! {
    static CALLS: RefCell<Option<Calls>> = const { RefCell::new(None) };
}

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok { Ok(()) } else { Err(Error::from_reason(format!("{what} failed ({status})"))) }
}

unsafe extern "C" fn woken(env: sys::napi_env, _: sys::napi_value, _: *mut std::ffi::c_void, _: *mut std::ffi::c_void) {
    if !env.is_null() {
        run_woken(env);
    }
}

unsafe extern "C" fn torn_down(data: *mut std::ffi::c_void) {
    // SAFETY: `data` is the `Arc<Wake>` leaked in `calls`, reclaimed exactly once here.
    let wake = unsafe { Arc::from_raw(data as *const Wake) };
    *wake.tsfn.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// This thread's calls, set up on first use.
fn with_calls<R>(env: sys::napi_env, f: impl FnOnce(&mut Calls) -> Result<R>) -> Result<R> {
    CALLS.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let mut name = std::ptr::null_mut();
            let mut tsfn = std::ptr::null_mut();
            // SAFETY: plain N-API calls on the environment's own thread.
            unsafe {
                check(sys::napi_create_string_utf8(env, c"catalyst".as_ptr(), 8, &mut name), "naming")?;
                let status = sys::napi_create_threadsafe_function(
                    env,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    name,
                    0,
                    1,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut(),
                    Some(woken),
                    &mut tsfn,
                );
                check(status, "napi_create_threadsafe_function")?;
                check(sys::napi_unref_threadsafe_function(env, tsfn), "napi_unref_threadsafe_function")?;
            }
            let wake = Arc::new(Wake { tsfn: RwLock::new(Some(tsfn as usize)) });
            let hook = Arc::into_raw(wake.clone()) as *mut std::ffi::c_void;
            // SAFETY: the hook reclaims the leaked Arc when the environment tears down.
            check(unsafe { sys::napi_add_env_cleanup_hook(env, Some(torn_down), hook) }, "cleanup hook")?;
            let notify = wake.clone();
            let driver = Driver::new(runtime().handle().clone(), move || notify.call());
            *cell = Some(Calls { driver, wake, promises: HashMap::new(), next: 0, keeps_alive: false });
        }
        f(cell.as_mut().expect("set up above"))
    })
}

/// A pending call keeps Node running; an idle module does not.
fn keep_alive(env: sys::napi_env, calls: &mut Calls) {
    let wanted = calls.driver.pending() > 0;
    if wanted == calls.keeps_alive {
        return;
    }
    if let Some(raw) = *calls.wake.tsfn.read().unwrap_or_else(|p| p.into_inner()) {
        let tsfn = raw as sys::napi_threadsafe_function;
        // SAFETY: on the environment's thread, with a live threadsafe function.
        unsafe {
            if wanted {
                sys::napi_ref_threadsafe_function(env, tsfn);
            } else {
                sys::napi_unref_threadsafe_function(env, tsfn);
            }
        }
    }
    calls.keeps_alive = wanted;
}

fn settle(env: sys::napi_env, deferred: sys::napi_deferred, result: Result<Make>) {
    // SAFETY: `deferred` came from napi_create_promise on this thread and is settled once.
    unsafe {
        match result.and_then(|make| make(env)) {
            Ok(value) => sys::napi_resolve_deferred(env, deferred, value),
            Err(e) => sys::napi_reject_deferred(env, deferred, JsError::from(e).into_value(env)),
        };
    }
}

fn run_woken(env: sys::napi_env) {
    let finished = with_calls(env, |calls| {
        let done = calls.driver.run_woken();
        let finished: Vec<_> =
            done.into_iter().filter_map(|(id, result)| Some((calls.promises.remove(&id)?, result))).collect();
        keep_alive(env, calls);
        Ok(finished)
    });
    for (deferred, result) in finished.unwrap_or_default() {
        settle(env, deferred, result);
    }
}

/// Start `work` here and return a promise of its result, made by `make` on this thread.
pub(crate) fn promise<'env, T, F>(
    env: &'env Env,
    work: F,
    make: fn(sys::napi_env, T) -> Result<sys::napi_value>,
) -> Result<PromiseRaw<'env, Unknown<'env>>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let env = env.raw();
    let mut deferred = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    // SAFETY: on the environment's thread.
    check(unsafe { sys::napi_create_promise(env, &mut deferred, &mut promise) }, "napi_create_promise")?;
    let ready = with_calls(env, |calls| {
        let id = calls.next;
        calls.next = calls.next.wrapping_add(1);
        let call = async move { (id, work.await.map(|value| Box::new(move |env| make(env, value)) as Make)) };
        let ready = calls.driver.spawn(call);
        if ready.is_none() {
            calls.promises.insert(id, deferred);
            keep_alive(env, calls);
        }
        Ok(ready)
    })?;
    if let Some((_, result)) = ready {
        settle(env, deferred, result);
    }
    Ok(PromiseRaw::new(env, promise))
}
