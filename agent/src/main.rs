//! `catalyst-agent`: runs a node's game servers and dials the control plane.
//!
//! First start: `--node-id` and a one-time `--deployment-token` (from
//! `POST /api/nodes/:id/deployment-token`); the credential it is exchanged for is kept in the
//! data directory (mode 0600) and used from then on.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use catalyst_core::id::NodeId;
use catalyst_core::ports::NetworkMode;
use catalyst_http::agent_client::{self, AgentConfig};
use catalyst_runtime::bootstrap::{LocalNode, NodeBootstrap, shutdown_signal, write_private};
use catalyst_runtime::node::{RuntimeChoice, make_private};
use clap::Parser;

/// Command line and `CATALYST_AGENT_*` environment.
#[derive(Parser)]
#[command(name = "catalyst-agent", version, about = "Catalyst node agent")]
struct Config {
    /// Base URL of the control plane, e.g. http://panel.example.com:3000.
    #[arg(long, env = "CATALYST_AGENT_CONTROL_URL")]
    control_url: String,
    /// This node's id.
    #[arg(long, env = "CATALYST_AGENT_NODE_ID")]
    node_id: NodeId,
    /// One-time deployment token, needed only until the credential is stored.
    #[arg(long, env = "CATALYST_AGENT_DEPLOYMENT_TOKEN", hide_env_values = true)]
    deployment_token: Option<String>,
    /// Server files, state and the credential.
    #[arg(long, env = "CATALYST_AGENT_DATA_DIR", default_value = "./catalyst-agent-data")]
    data_dir: PathBuf,
    /// Container runtime.
    #[arg(long, env = "CATALYST_AGENT_RUNTIME", value_enum, default_value = "auto")]
    runtime: Runtime,
    /// containerd's socket.
    #[arg(long, env = "CATALYST_AGENT_CONTAINERD_SOCKET", default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// containerd namespace for this agent's containers.
    #[arg(long, env = "CATALYST_AGENT_NAMESPACE", default_value = "catalyst")]
    namespace: String,
    /// Container networking.
    #[arg(long, env = "CATALYST_AGENT_NETWORK", value_enum, default_value = "host")]
    network: Network,
    /// Serve this node's Prometheus metrics at `http://<address>/metrics` (off by default;
    /// keep it on loopback or a private network).
    #[arg(long, env = "CATALYST_AGENT_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Serve SFTP for this node's servers (user `<name>.<server id>`, password a JWT or an
    /// API key). Empty turns it off.
    #[arg(long, env = "CATALYST_AGENT_SFTP_LISTEN", default_value = "0.0.0.0:2022")]
    sftp_listen: String,
    /// Run servers even where they cannot be confined (plain processes without root): they
    /// can then read this node's credential and every other server. Only for trusted servers.
    #[arg(long, env = "CATALYST_AGENT_ALLOW_UNCONFINED")]
    allow_unconfined: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Runtime {
    Auto,
    Containerd,
    Process,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Network {
    Host,
    Bridge,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Config::parse();
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("create {}", config.data_dir.display()))?;
    make_private(&config.data_dir).with_context(|| format!("make {} private", config.data_dir.display()))?;
    let credential = credential(&config).await?;

    let boot = NodeBootstrap {
        runtime: match config.runtime {
            Runtime::Auto => RuntimeChoice::Auto,
            Runtime::Containerd => RuntimeChoice::Containerd,
            Runtime::Process => RuntimeChoice::Process,
        },
        containerd_socket: config.containerd_socket.clone(),
        namespace: config.namespace.clone(),
        network: match config.network {
            Network::Host => NetworkMode::Host,
            Network::Bridge => NetworkMode::Bridge,
        },
        allow_unconfined: config.allow_unconfined,
        ..NodeBootstrap::new(&config.data_dir)
    };
    let local = LocalNode::start(config.node_id, &boot).await?;
    for note in &local.notes {
        tracing::info!("{note}");
    }
    tracing::info!(recovered = local.recovered, node = %config.node_id, "agent started");
    let daemon = local.daemon;
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("bind {addr}"))?;
        let exporter = catalyst_runtime::node::NodeExporter::spawn(&daemon).await;
        let serving = catalyst_http::serve(listener, catalyst_http::exporter_router(exporter), shutdown_signal());
        daemon.background().spawn(serving);
        tracing::info!(%addr, "serving node metrics at /metrics");
    }

    if !config.sftp_listen.is_empty() {
        let addr: std::net::SocketAddr = config.sftp_listen.parse().context("--sftp-listen")?;
        // A taken port is reported, not fatal: the games keep running and reporting.
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let key = config.data_dir.join("sftp_host_ed25519_key");
                let sftp = catalyst_runtime::node::SftpConfig::with_host_key_file(&key)?;
                let authority = Arc::new(agent_client::RemoteSftpAuthority::new(&config.control_url));
                let serving = catalyst_runtime::node::serve_sftp(listener, daemon.clone(), authority, sftp);
                daemon.background().spawn(async move {
                    if let Err(e) = serving.await {
                        tracing::error!(error = %e, "SFTP stopped");
                    }
                });
                tracing::info!(%addr, "serving SFTP");
            }
            Err(e) => tracing::error!(%addr, error = %e, "SFTP is off: cannot listen"),
        }
    }

    let url = format!("{}/api/agent/ws", config.control_url.trim_end_matches('/').replacen("http", "ws", 1));
    let link = AgentConfig { url, node_id: config.node_id, credential };
    agent_client::run(link, daemon.clone(), shutdown_signal()).await?;
    daemon.shutdown().await;
    tracing::info!("agent stopped; containers keep running");
    Ok(())
}

/// The stored credential, or a fresh one from the deployment token.
async fn credential(config: &Config) -> anyhow::Result<String> {
    let path = config.data_dir.join("credential");
    if let Ok(c) = std::fs::read_to_string(&path) {
        return Ok(c.trim().to_string());
    }
    let token = config.deployment_token.as_deref().context("no stored credential: pass --deployment-token once")?;
    let enrolled = agent_client::enroll_with_retry(&config.control_url, config.node_id, token);
    let credential = tokio::select! {
        c = enrolled => c?,
        () = shutdown_signal() => anyhow::bail!("stopped before enrolling"),
    };
    write_private(&path, &credential)?;
    tracing::info!("enrolled; credential stored in {}", path.display());
    Ok(credential)
}
