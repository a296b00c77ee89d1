//! Catalyst's I/O: stores, the control-plane facade and services, and the node side.
//!
//! Everything here implements or uses the ports of `catalyst_core`. Libraries take typed
//! configuration; only binaries read the environment.

pub mod api;
pub mod background;
pub mod bootstrap;
pub mod control;
pub mod link;
pub mod node;
pub mod store;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhook;

pub use control::{Catalyst, CatalystBuilder};

/// Make rustls use ring (the one crypto provider this build carries) for every HTTPS client;
/// idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
