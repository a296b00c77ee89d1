//! Store adapters: memory (core's lock-only [`MemoryStore`], re-exported), SQLite (embedded
//! default) and PostgreSQL (production, multi-instance). All pass the same conformance suites.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod sql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use catalyst_core::store::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
