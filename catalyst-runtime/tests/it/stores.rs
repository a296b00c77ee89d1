//! Every real store adapter passes the same conformance suites as the memory store, one test
//! per suite and adapter (`stores::sqlite::users`, `stores::postgres::backups`, …).

use catalyst_core::ports::Store;
use catalyst_core::testing::conformance::{self, StoreUnderTest};
use catalyst_runtime::store::SqliteStore;

use crate::support;

/// A SQLite file in a temporary directory that lives as long as the store.
struct SqliteFile {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl StoreUnderTest for SqliteFile {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

impl StoreUnderTest for support::PgGuard {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn finish(self) {
        self.cleanup().await;
    }
}

catalyst_core::store_conformance!(sqlite, || async {
    let (store, dir) = support::sqlite().await;
    Some(SqliteFile { store, _dir: dir })
});

catalyst_core::store_conformance!(postgres, support::postgres);

#[tokio::test]
async fn sqlite_in_memory_url_works_with_one_connection() -> catalyst_core::Result<()> {
    let store = SqliteStore::connect("sqlite::memory:").await?;
    conformance::users(&store).await
}

#[tokio::test]
async fn sqlite_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    let user = {
        let store = SqliteStore::open(&path).await.expect("open");
        let user = conformance::fixtures::user("persisted");
        catalyst_core::ports::UserStore::create_user(&store, &user).await.expect("create")
    };
    let store = SqliteStore::open(&path).await.expect("reopen");
    let back = catalyst_core::ports::UserStore::get_user(&store, user.id).await.expect("get");
    assert_eq!(back, user);
    let next = conformance::fixtures::user("after");
    let next = catalyst_core::ports::UserStore::create_user(&store, &next).await.expect("create");
    assert_eq!(next.number, user.number + 1, "numbering goes on after a reopen");
}
