//! Ports: the async traits the runtime implements. Each states its guarantees; each has a fake
//! (the stores: [`crate::store::MemoryStore`]) and a conformance suite in [`crate::testing`]
//! (feature `testing`).
//!
//! Store guarantees shared by every store port:
//! - `create_*` refuses a duplicate unique key with `conflict` and writes nothing.
//! - `get_*` of a missing id is `not_found`.
//! - `update_*` is a compare-and-swap: it succeeds only if the stored `version` equals the given
//!   one, stores `version + 1` and returns the stored row; otherwise `conflict` (or `not_found`).
//!   Two writers holding the same version can never both win.
//! - `delete_*` of a missing id is `not_found`; deleting a row that others reference is `conflict`.
//! - Every multi-row write is atomic.
//!
//! One module per concern, all re-exported here: [`store`], [`link`] (nodes and observers),
//! [`runtime`] (containers), [`sftp`] (who may use a server's files over SFTP) and
//! [`backup_target`] (where backup archives are kept).

pub mod backup_target;
pub mod link;
pub mod runtime;
pub mod sftp;
pub mod store;

pub use backup_target::*;
pub use link::*;
pub use runtime::*;
pub use sftp::*;
pub use store::*;
