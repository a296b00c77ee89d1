//! `catalyst-server`: the reference control plane. With no configuration it keeps everything
//! in `./catalyst-data` (SQLite) and listens on 127.0.0.1:3000. Settings: see `config.rs`.

mod config;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use catalyst_runtime::Catalyst;
use catalyst_runtime::bootstrap::{self, LocalNode, NodeBootstrap};
use catalyst_runtime::control::auth::{AuthConfig, random_secret};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{RuntimeChoice, SftpConfig, make_private, serve_sftp};

use self::config::{Loaded, LocalRuntime, ServerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = match config::load(std::env::args().skip(1).collect(), vars)? {
        Loaded::Run(config) => config,
        Loaded::Print(text) => {
            println!("{text}");
            return Ok(());
        }
    };
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("create {}", config.data_dir.display()))?;
    make_private(&config.data_dir).with_context(|| format!("make {} private", config.data_dir.display()))?;

    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => config.data_dir.join("catalyst.db").display().to_string(),
    };
    let store = bootstrap::open_store(&url).await?;
    let secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => bootstrap::persisted_secret(&config.data_dir.join("jwt.secret"), random_secret)?,
    };
    let link = NodeHub::new();
    let catalyst = Catalyst::builder()
        .store(store.clone())
        .link(Arc::new(link.clone()))
        .auth(AuthConfig {
            open_registration: config.open_registration,
            ..AuthConfig::with_secret(secret.into_bytes())?
        })
        .backup_storage(config.backup.storage())
        .backup_retention(config.backup.retention())
        .build()
        .await?;
    let node = match config.local_runtime {
        LocalRuntime::None => None,
        _ => Some(start_local_node(&catalyst, &link, &config).await?),
    };

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
    let http = catalyst_http::HttpConfig {
        rate_limits: catalyst_http::limits::RateLimits {
            per_minute: config.rate_limit,
            auth_per_minute: config.auth_rate_limit,
            ..Default::default()
        },
        cors_origins: config.cors_origins.clone(),
        hsts: config.hsts,
        max_connections_per_ip: config.max_connections_per_ip,
        ..Default::default()
    };
    let app = catalyst_http::router_with(catalyst.clone(), Some(link), &http);
    catalyst_http::serve_with(listener, app, bootstrap::shutdown_signal(), &http).await;
    if let Some(node) = node {
        node.shutdown().await;
    }
    catalyst.shutdown().await;
    store.close().await;
    println!("Catalyst stopped");
    Ok(())
}

/// The all-in-one node: a location and node named `local`, a daemon in this process, and SFTP
/// for its servers.
async fn start_local_node(
    catalyst: &Catalyst,
    link: &NodeHub,
    config: &ServerConfig,
) -> anyhow::Result<catalyst_runtime::node::NodeDaemon> {
    let (memory_mb, disk_mb) = machine_capacity(&config.data_dir);
    let node = catalyst.local_node("This machine", memory_mb, disk_mb).await?;
    let boot = NodeBootstrap {
        runtime: match config.local_runtime {
            LocalRuntime::Containerd => RuntimeChoice::Containerd,
            LocalRuntime::Process => RuntimeChoice::Process,
            LocalRuntime::Auto | LocalRuntime::None => RuntimeChoice::Auto,
        },
        containerd_socket: config.containerd_socket.clone(),
        network: config.network,
        allow_unconfined: config.allow_unconfined,
        ..NodeBootstrap::new(&config.data_dir)
    };
    let local = LocalNode::start(node.id, &boot).await?;
    println!("local node {}", node.id);
    for note in &local.notes {
        println!("{note}");
    }
    if local.recovered > 0 {
        println!("recovered {} servers", local.recovered);
    }
    let daemon = local.daemon;
    link.add_node(daemon.clone());
    if !config.sftp_listen.is_empty() {
        let addr: SocketAddr = config.sftp_listen.parse().context("sftp_listen")?;
        // A taken port is reported, not fatal: the panel and the games keep working.
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let sftp = SftpConfig::with_host_key_file(&config.data_dir.join("sftp_host_ed25519_key"))?;
                let serving = serve_sftp(listener, daemon.clone(), Arc::new(catalyst.clone()), sftp);
                daemon.background().spawn(async move {
                    if let Err(e) = serving.await {
                        eprintln!("SFTP stopped: {e}");
                    }
                });
                println!("SFTP on {addr}");
            }
            Err(e) => eprintln!("SFTP is off: cannot listen on {addr}: {e}"),
        }
    }
    Ok(daemon)
}

/// This machine's memory and the data directory's disk, in MiB.
fn machine_capacity(data_dir: &Path) -> (u64, u64) {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(4096, |kb| kb / 1024);
    let disk = nix::sys::statvfs::statvfs(data_dir).map_or(10_240, |v| v.blocks() * v.fragment_size() / (1 << 20));
    (memory.max(1), disk.max(1))
}
