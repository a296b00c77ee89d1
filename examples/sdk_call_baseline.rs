//! The Rust side of the SDK per-call benchmark (`scripts/bench-sdk`): the time of two cheap
//! calls through `CatalystApi` on an embedded SQLite control plane, made the way the Python and
//! Node SDKs make them — `list_locations()` (a SQLite round trip) and `get_server()` of a server
//! the control plane has cached (no I/O: what a binding adds shows alone). Prints
//! `rust_list_us=<µs>` and `rust_get_us=<µs>`.

use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig};
use catalyst_runtime::node::RuntimeChoice;
use serde_json::json;

const CALLS: u32 = 20_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("catalyst-sdk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = EmbeddedConfig {
        database_url: format!("sqlite:{}/bench.db", dir.display()),
        data_dir: dir.clone(),
        local_node: Some(RuntimeChoice::Process),
        // The benchmark's server runs `sleep`: nothing to confine.
        allow_unconfined: true,
    };
    let api = Embedded::open(config).await?;
    let server = bench_server(&api).await?;

    let list = time(|| async { api.list_locations().await.map(drop) }).await?;
    let get = time(|| async { api.get_server(server).await.map(drop) }).await?;
    println!("rust_list_us={list:.2}");
    println!("rust_get_us={get:.2}");
    api.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A server on the local node (never started), the same one the Python and Node benches make.
async fn bench_server(api: &Embedded) -> anyhow::Result<catalyst_core::id::ServerId> {
    let user = api
        .create_user(serde_json::from_value(
            json!({"email": "bench@example.test", "username": "bench", "password": "bench-password"}),
        )?)
        .await?;
    let node = api.list_nodes(catalyst_core::model::Page::new(0, 1)).await?.items.remove(0);
    let template = api
        .create_template(serde_json::from_value(json!({"name": "bench", "image": "busybox", "startup": "sleep 3600"}))?)
        .await?;
    let server = json!({
        "name": "bench", "owner_id": user.id, "node_id": node.id, "template_id": template.id,
        "limits": {"memory_mb": 256, "disk_mb": 1024}, "allocations": [{"ip": "127.0.0.1", "port": 25999}],
    });
    Ok(api.create_server(serde_json::from_value(server)?).await?.id)
}

/// µs per call of `call`, after a warm-up.
async fn time<F, Fut>(call: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = catalyst_core::Result<()>>,
{
    for _ in 0..1000 {
        call().await?;
    }
    let start = std::time::Instant::now();
    for _ in 0..CALLS {
        call().await?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS))
}
