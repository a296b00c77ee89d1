//! An embedded control plane owns what it starts: closing it ends every task it and its node
//! started and every database connection; dropping it ends the tasks too.

use std::path::{Path, PathBuf};

use catalyst_core::lifecycle::ServerState;
use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig};
use catalyst_runtime::node::RuntimeChoice;
use serde_json::json;

async fn open(dir: &Path) -> Embedded {
    Embedded::open(EmbeddedConfig {
        database_url: format!("sqlite:{}", dir.join("catalyst.db").display()),
        data_dir: dir.to_path_buf(),
        local_node: Some(RuntimeChoice::Process),
        // The test's server runs `sleep`; unconfined only matters when not run as root.
        allow_unconfined: true,
    })
    .await
    .expect("open")
}

fn alive() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Files under `dir` this process holds open: the database, its WAL, a server's files.
fn open_files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok()).filter(|target| target.starts_with(dir)).collect()
}

/// Wait (yielding, without a deadline on the outcome) until `done` holds or 10 s have passed.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done()
}

/// A server on the local node, started, then killed: the node has supervised it and reported on it.
async fn exercise(api: &Embedded) -> catalyst_runtime::api::Subscription {
    let user = api
        .create_user(
            serde_json::from_value(json!({"email": "o@example.test", "username": "owner", "password": "password-123"}))
                .expect("user"),
        )
        .await
        .expect("create user");
    let node = api.list_nodes(catalyst_core::model::Page::new(0, 1)).await.expect("nodes").items.remove(0);
    let template = api
        .create_template(
            serde_json::from_value(json!({"name": "t", "image": "busybox", "startup": "sleep 3600"}))
                .expect("template"),
        )
        .await
        .expect("create template");
    let input = json!({
        "name": "s", "owner_id": user.id, "node_id": node.id, "template_id": template.id,
        "limits": {"memory_mb": 64, "disk_mb": 64}, "allocations": [{"ip": "127.0.0.1", "port": 25998}],
    });
    let server = api.create_server(serde_json::from_value(input).expect("server")).await.expect("create server").id;
    let feed = api.events(server, None).await.expect("follow");
    for want in [ServerState::Stopped, ServerState::Running] {
        let mut state = api.get_server(server).await.expect("get").state;
        for _ in 0..1000 {
            if state == want {
                break;
            }
            if want == ServerState::Running && state == ServerState::Stopped {
                let _ = api.start_server(server).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            state = api.get_server(server).await.expect("get").state;
        }
        assert_eq!(state, want);
    }
    api.kill_server(server).await.expect("kill");
    feed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_task_subscription_and_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = alive();
    let api = open(dir.path()).await;
    let mut feed = exercise(&api).await;
    assert!(alive() > before, "the control plane and its node run tasks");
    assert!(!open_files_under(dir.path()).is_empty(), "the database is open");

    api.close().await;
    // What was queued before the close is still delivered; then the feed ends.
    let drained =
        tokio::time::timeout(std::time::Duration::from_secs(10), async { while feed.next().await.is_some() {} });
    assert!(drained.await.is_ok(), "the subscription ended");
    drop(feed);
    assert!(eventually(|| alive() == before).await, "{} tasks outlived close (before: {before})", alive());
    assert_eq!(open_files_under(dir.path()), Vec::<PathBuf>::new(), "files outlived close");
    api.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_ends_every_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = alive();
    let api = open(dir.path()).await;
    drop(exercise(&api).await);
    let clone = api.clone();
    drop(api);
    assert!(alive() > before, "a clone keeps it running");
    drop(clone);
    assert!(eventually(|| alive() == before).await, "{} tasks outlived the last handle (before: {before})", alive());
}
