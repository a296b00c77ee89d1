//! The Rust side of the SDK per-call benchmark (`scripts/bench-sdk`): the time of one cheap call
//! (`me()`) on an embedded SQLite control plane through `CatalystApi`, which the Python and Node
//! SDKs make the same way. Prints `rust_us_per_call=<µs>`.

use catalyst_runtime::api::{CatalystApi, Embedded, EmbeddedConfig};

const CALLS: u32 = 20_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let config = EmbeddedConfig {
        database_url: format!("sqlite:{dir}/bench.db"),
        data_dir: dir.clone().into(),
        local_node: None,
    };
    let (api, _hub) = Embedded::open(config).await?;
    let user = catalyst_runtime::control::RegisterInput {
        email: "bench@example.test".into(),
        username: "bench".into(),
        password: "bench-password".into(),
    };
    api.create_user(user).await?;
    for _ in 0..1000 {
        api.list_locations().await?;
    }
    let start = std::time::Instant::now();
    for _ in 0..CALLS {
        api.list_locations().await?;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    println!("rust_us_per_call={us:.2}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("catalyst-sdk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir.to_string_lossy().into_owned())
}
