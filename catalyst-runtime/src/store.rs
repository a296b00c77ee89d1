//! Store adapters: memory (from core's testing fakes), SQLite (embedded default) and
//! PostgreSQL (production, multi-instance). All pass `catalyst_core::testing::conformance`.

#[macro_use]
mod sql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use catalyst_core::testing::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
