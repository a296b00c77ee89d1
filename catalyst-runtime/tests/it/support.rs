//! Shared test plumbing: real databases, fresh per test.

use catalyst_runtime::store::{PostgresStore, SqliteStore};

/// A SQLite store on a file in a fresh temporary directory (kept alive by the guard).
pub async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("catalyst.db")).await.expect("open sqlite");
    (store, dir)
}

/// A PostgreSQL store in a fresh schema, or `None` (with a loud line) when no server is
/// configured outside CI. In CI a missing PostgreSQL is a failure.
pub async fn postgres() -> Option<PgGuard> {
    let Ok(url) = std::env::var("CATALYST_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CATALYST_TEST_POSTGRES_URL is not set: PostgreSQL tests cannot be skipped in CI"
        );
        eprintln!("!!! SKIPPED: PostgreSQL tests (set CATALYST_TEST_POSTGRES_URL to run them)");
        return None;
    };
    let schema = format!("catalyst_test_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::connect(&url, Some(&schema)).await.expect("connect PostgreSQL");
    Some(PgGuard { store, url, schema })
}

/// A PostgreSQL store whose schema is dropped at the end of the test.
pub struct PgGuard {
    pub store: PostgresStore,
    url: String,
    schema: String,
}

impl PgGuard {
    /// Drop the schema.
    pub async fn cleanup(self) {
        PostgresStore::drop_schema(&self.url, &self.schema).await.expect("drop schema");
    }
}

/// Skip a test outside CI with a loud line; in CI the same condition is a failure.
pub fn skip_unless_ci(what: &str) {
    assert!(std::env::var("CI").is_err(), "{what}: cannot be skipped in CI");
    eprintln!("!!! SKIPPED: {what}");
}
