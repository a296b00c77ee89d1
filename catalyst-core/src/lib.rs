//! Catalyst's pure domain, free of I/O.
//!
//! Everything here is deterministic and synchronous except the [`ports`], which are async
//! traits that the runtime crate implements. Time comes from a [`clock::Clock`], never from the
//! system directly, so schedulers and crash back-off can be tested without sleeping.

pub mod clock;
pub mod config_edit;
pub mod denylist;
pub mod egg;
pub mod error;
pub mod events;
pub mod follow;
pub mod id;
pub mod lifecycle;
pub mod model;
pub mod permission;
pub mod ports;
pub mod protocol;
pub mod render;
pub mod restart;
pub mod rules;
pub mod schedule;
pub mod store;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ErrorKind, Result, ResultExt};
