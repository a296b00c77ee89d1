//! `catalyst-server`: the reference control plane. With no configuration it keeps everything
//! in `./catalyst-data` (SQLite) and listens on 127.0.0.1:3000.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use catalyst_core::ports::Store;
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::auth::{AuthConfig, random_secret};
use catalyst_runtime::link::LocalLink;
use catalyst_runtime::store::{PostgresStore, SqliteStore};
use clap::Parser;

/// Command line and `CATALYST_*` environment.
#[derive(Parser)]
#[command(name = "catalyst-server", version, about = "Catalyst control plane")]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "CATALYST_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where the SQLite database and generated secrets live.
    #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
    data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "CATALYST_DATABASE_URL")]
    database_url: Option<String>,
    /// E-mail of the first administrator.
    #[arg(long, env = "CATALYST_ADMIN_EMAIL", default_value = "admin@catalyst.local")]
    admin_email: String,
    /// Password of the first administrator (generated and printed once if absent).
    #[arg(long, env = "CATALYST_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// HMAC key for access tokens (generated and kept in the data dir if absent).
    #[arg(long, env = "CATALYST_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Config::parse();
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("create {}", config.data_dir.display()))?;

    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(PostgresStore::connect(url, None).await?),
        None => Arc::new(SqliteStore::open(&config.data_dir.join("catalyst.db")).await?),
    };
    let secret = match &config.jwt_secret {
        Some(s) => s.clone().into_bytes(),
        None => persisted_secret(&config.data_dir.join("jwt.secret"))?,
    };
    let link = LocalLink::new();
    let catalyst =
        Catalyst::builder().store(store).link(Arc::new(link)).auth(AuthConfig::with_secret(secret)?).build().await?;

    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (random_secret(), true),
    };
    if catalyst.bootstrap_admin(&config.admin_email, "admin", password.clone()).await?.is_some() {
        if generated {
            println!("created administrator {} with password {password}", config.admin_email);
            println!("(shown once; set CATALYST_ADMIN_PASSWORD to choose it)");
        } else {
            println!("created administrator {}", config.admin_email);
        }
    }

    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("bind {}", config.listen))?;
    println!("Catalyst listening on http://{}", listener.local_addr()?);
    axum::serve(listener, catalyst_http::router(catalyst).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    println!("Catalyst stopped");
    Ok(())
}

/// Read the token key from `path`, creating it (mode 0600) on first start.
fn persisted_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s.trim().as_bytes().to_vec());
    }
    let secret = random_secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
