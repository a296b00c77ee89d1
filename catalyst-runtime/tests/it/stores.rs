//! Every real store adapter passes the same conformance suite as the memory fake.

use catalyst_core::testing::conformance;

use crate::support;

#[tokio::test]
async fn sqlite_passes_the_store_conformance_suite() {
    let (store, _dir) = support::sqlite().await;
    conformance::all(&store).await;
}

#[tokio::test]
async fn sqlite_in_memory_url_works_with_one_connection() {
    let store = catalyst_runtime::store::SqliteStore::connect("sqlite::memory:").await.expect("open");
    conformance::users(&store).await;
}

#[tokio::test]
async fn postgres_passes_the_store_conformance_suite() {
    let Some(pg) = support::postgres().await else { return };
    conformance::all(&pg.store).await;
    pg.cleanup().await;
}

#[tokio::test]
async fn sqlite_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    let user = conformance::fixtures::user("persisted");
    {
        let store = catalyst_runtime::store::SqliteStore::open(&path).await.expect("open");
        catalyst_core::ports::UserStore::create_user(&store, &user).await.expect("create");
    }
    let store = catalyst_runtime::store::SqliteStore::open(&path).await.expect("reopen");
    let back = catalyst_core::ports::UserStore::get_user(&store, user.id).await.expect("get");
    assert_eq!(back, user);
}
