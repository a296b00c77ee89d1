//! `catalyst-server`: the reference control plane. With no configuration it keeps everything
//! in `./catalyst-data` (SQLite) and listens on 127.0.0.1:3000.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use catalyst_core::clock::SystemClock;
use catalyst_core::model::{BackupStorage, RetentionPolicy};
use catalyst_core::ports::{Isolation, NetworkMode, Store};
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::auth::{AuthConfig, random_secret};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{
    ContainerdConfig, DaemonConfig, NodeDaemon, RuntimeChoice, SftpConfig, choose_runtime, describe_isolation,
    make_private, serve_sftp, untraversable_ancestors,
};
use catalyst_runtime::store::{PostgresStore, SqliteStore};
use clap::Parser;

/// Command line and `CATALYST_*` environment.
#[derive(Parser)]
#[command(name = "catalyst-server", version, about = "Catalyst control plane")]
struct Config {
    /// A TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "CATALYST_CONFIG")]
    config: Option<PathBuf>,
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
    /// Run game servers on this machine too (all-in-one); `none` makes a pure control plane.
    #[arg(long, env = "CATALYST_LOCAL_RUNTIME", value_enum, default_value = "auto")]
    local_runtime: LocalRuntime,
    /// containerd's socket, for the local node.
    #[arg(long, env = "CATALYST_CONTAINERD_SOCKET", default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// Browser origins allowed to call the API (comma-separated; `*` for any).
    #[arg(long, env = "CATALYST_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Served behind TLS (adds Strict-Transport-Security).
    #[arg(long, env = "CATALYST_HSTS")]
    hsts: bool,
    /// Let anyone create an account at `/api/auth/register`. Off by default: a hosting
    /// company's customers are created by its billing panel (`POST /api/admin/users`).
    #[arg(long, env = "CATALYST_OPEN_REGISTRATION")]
    open_registration: bool,
    /// Run the local node's servers even where they cannot be confined (plain processes
    /// without root): they can then read this machine's secrets. Only for servers you trust.
    #[arg(long, env = "CATALYST_ALLOW_UNCONFINED")]
    allow_unconfined: bool,
    /// Requests per minute per client IP.
    #[arg(long, env = "CATALYST_RATE_LIMIT", default_value_t = 200)]
    rate_limit: u32,
    /// Login, registration, refresh and enrollment attempts per minute per client IP.
    #[arg(long, env = "CATALYST_AUTH_RATE_LIMIT", default_value_t = 10)]
    auth_rate_limit: u32,
    /// Open connections per client IP, WebSockets included (raise it behind a reverse proxy,
    /// whose connections all come from one address).
    #[arg(long, env = "CATALYST_MAX_CONNECTIONS_PER_IP", default_value_t = catalyst_http::MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: u32,
    /// How local containers reach the network: the host's stack, or a bridge with forwarded ports.
    #[arg(long, env = "CATALYST_NETWORK", value_enum, default_value = "host")]
    network: Network,
    /// Serve SFTP for the local node's servers (user `<name>.<server id>`, password a JWT or
    /// an API key); empty turns it off.
    #[arg(long, env = "CATALYST_SFTP_LISTEN", default_value = "0.0.0.0:2022")]
    sftp_listen: String,
    /// Where backups go.
    #[arg(long, env = "CATALYST_BACKUP_STORAGE", value_enum, default_value = "local")]
    backup_storage: BackupMode,
    /// Local storage: a directory on each node (default `<node data>/backups`).
    #[arg(long, env = "CATALYST_BACKUP_DIR", default_value = "")]
    backup_dir: String,
    /// S3: endpoint URL (empty for AWS).
    #[arg(long, env = "CATALYST_BACKUP_S3_ENDPOINT", default_value = "")]
    backup_s3_endpoint: String,
    /// S3: bucket.
    #[arg(long, env = "CATALYST_BACKUP_S3_BUCKET", default_value = "")]
    backup_s3_bucket: String,
    /// S3: region.
    #[arg(long, env = "CATALYST_BACKUP_S3_REGION", default_value = "us-east-1")]
    backup_s3_region: String,
    /// S3: key prefix.
    #[arg(long, env = "CATALYST_BACKUP_S3_PREFIX", default_value = "")]
    backup_s3_prefix: String,
    /// S3: access key id.
    #[arg(long, env = "CATALYST_BACKUP_S3_ACCESS_KEY_ID", default_value = "")]
    backup_s3_access_key_id: String,
    /// S3: secret access key.
    #[arg(long, env = "CATALYST_BACKUP_S3_SECRET_ACCESS_KEY", default_value = "", hide_env_values = true)]
    backup_s3_secret_access_key: String,
    /// SFTP: host.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_HOST", default_value = "")]
    backup_sftp_host: String,
    /// SFTP: port.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_PORT", default_value_t = 22)]
    backup_sftp_port: u16,
    /// SFTP: user.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_USERNAME", default_value = "")]
    backup_sftp_username: String,
    /// SFTP: password.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_PASSWORD", default_value = "", hide_env_values = true)]
    backup_sftp_password: String,
    /// SFTP: directory on the server.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_DIRECTORY", default_value = "")]
    backup_sftp_directory: String,
    /// SFTP: the server's host key fingerprint (`SHA256:…`); empty accepts any key.
    #[arg(long, env = "CATALYST_BACKUP_SFTP_HOST_KEY", default_value = "")]
    backup_sftp_host_key: String,
    /// Retention: keep at most this many backups per server (locked ones aside).
    #[arg(long, env = "CATALYST_BACKUP_KEEP_LAST")]
    backup_keep_last: Option<u32>,
    /// Retention: delete backups older than this many days.
    #[arg(long, env = "CATALYST_BACKUP_MAX_AGE_DAYS")]
    backup_max_age_days: Option<u32>,
    /// Retention: keep a server's backups under this many MiB in all.
    #[arg(long, env = "CATALYST_BACKUP_MAX_TOTAL_MB")]
    backup_max_total_mb: Option<u64>,
}

/// Where backups are stored.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackupMode {
    /// A directory on each node.
    Local,
    /// An S3-compatible bucket.
    S3,
    /// A directory on an SFTP server.
    Sftp,
}

impl Config {
    fn backup_storage(&self) -> anyhow::Result<BackupStorage> {
        Ok(match self.backup_storage {
            BackupMode::Local => BackupStorage::Local { directory: self.backup_dir.clone() },
            BackupMode::S3 => {
                anyhow::ensure!(!self.backup_s3_bucket.is_empty(), "S3 backups need CATALYST_BACKUP_S3_BUCKET");
                BackupStorage::S3 {
                    endpoint: self.backup_s3_endpoint.clone(),
                    bucket: self.backup_s3_bucket.clone(),
                    region: self.backup_s3_region.clone(),
                    prefix: self.backup_s3_prefix.clone(),
                    access_key_id: self.backup_s3_access_key_id.clone(),
                    secret_access_key: self.backup_s3_secret_access_key.clone(),
                }
            }
            BackupMode::Sftp => {
                anyhow::ensure!(!self.backup_sftp_host.is_empty(), "SFTP backups need CATALYST_BACKUP_SFTP_HOST");
                BackupStorage::Sftp {
                    host: self.backup_sftp_host.clone(),
                    port: self.backup_sftp_port,
                    username: self.backup_sftp_username.clone(),
                    password: self.backup_sftp_password.clone(),
                    directory: self.backup_sftp_directory.clone(),
                    host_key_fingerprint: self.backup_sftp_host_key.clone(),
                }
            }
        })
    }

    fn backup_retention(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: self.backup_keep_last,
            max_age_days: self.backup_max_age_days,
            max_total_bytes: self.backup_max_total_mb.map(|mb| mb * 1024 * 1024),
        }
    }
}

/// Container networking of the local node.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Network {
    /// Share the host's network stack (fastest; ports bind directly).
    Host,
    /// Own namespace per container on a CNI bridge; allocations forwarded.
    Bridge,
}

/// Which runtime the in-process node uses.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum LocalRuntime {
    /// containerd when its socket answers, else plain processes.
    Auto,
    /// containerd only.
    Containerd,
    /// Plain child processes (development, hosts without containerd).
    Process,
    /// No local node.
    None,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = load_config()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("create {}", config.data_dir.display()))?;
    make_private(&config.data_dir).with_context(|| format!("make {} private", config.data_dir.display()))?;

    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(PostgresStore::connect(url, None).await?),
        None => Arc::new(SqliteStore::open(&config.data_dir.join("catalyst.db")).await?),
    };
    let secret = match &config.jwt_secret {
        Some(s) => s.clone().into_bytes(),
        None => persisted_secret(&config.data_dir.join("jwt.secret"))?,
    };
    let link = NodeHub::new();
    let catalyst = Catalyst::builder()
        .store(store)
        .link(Arc::new(link.clone()))
        .auth(AuthConfig { open_registration: config.open_registration, ..AuthConfig::with_secret(secret)? })
        .backup_storage(config.backup_storage()?)
        .backup_retention(config.backup_retention())
        .build()
        .await?;
    if config.local_runtime != LocalRuntime::None {
        start_local_node(&catalyst, &link, &config).await?;
    }

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
    let app = catalyst_http::router_with(catalyst, Some(link), &http);
    catalyst_http::serve_with(listener, app, shutdown(), &http).await;
    println!("Catalyst stopped");
    Ok(())
}

/// The settings a config file may hold; unknown keys are errors.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    admin_email: Option<String>,
    admin_password: Option<String>,
    jwt_secret: Option<String>,
    local_runtime: Option<LocalRuntime>,
    containerd_socket: Option<PathBuf>,
    cors_origins: Option<Vec<String>>,
    hsts: Option<bool>,
    open_registration: Option<bool>,
    allow_unconfined: Option<bool>,
    rate_limit: Option<u32>,
    auth_rate_limit: Option<u32>,
    max_connections_per_ip: Option<u32>,
    network: Option<Network>,
    sftp_listen: Option<String>,
    backup_storage: Option<BackupMode>,
    backup_dir: Option<String>,
    backup_s3_endpoint: Option<String>,
    backup_s3_bucket: Option<String>,
    backup_s3_region: Option<String>,
    backup_s3_prefix: Option<String>,
    backup_s3_access_key_id: Option<String>,
    backup_s3_secret_access_key: Option<String>,
    backup_sftp_host: Option<String>,
    backup_sftp_port: Option<u16>,
    backup_sftp_username: Option<String>,
    backup_sftp_password: Option<String>,
    backup_sftp_directory: Option<String>,
    backup_sftp_host_key: Option<String>,
    backup_keep_last: Option<u32>,
    backup_max_age_days: Option<u32>,
    backup_max_total_mb: Option<u64>,
}

/// Defaults < config file < environment < flags. Unknown `CATALYST_*` variables are refused
/// (except the agent's `CATALYST_AGENT_*` and the test harness's `CATALYST_TEST_*`), so a typo
/// never silently falls back to a default.
fn load_config() -> anyhow::Result<Config> {
    use clap::{CommandFactory, FromArgMatches};
    let command = Config::command();
    let known: Vec<String> =
        command.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect();
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let ours =
            key.starts_with("CATALYST_") && !key.starts_with("CATALYST_AGENT_") && !key.starts_with("CATALYST_TEST_");
        if ours && !known.iter().any(|k| *k == key) {
            anyhow::bail!("unknown setting {key} (known: {})", known.join(", "));
        }
    }
    let matches = command.get_matches();
    let mut config = Config::from_arg_matches(&matches)?;
    let Some(path) = config.config.clone() else { return Ok(config) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let file: FileConfig =
        toml::from_str(&text).with_context(|| format!("{} is not a valid configuration", path.display()))?;
    // A value from the file applies only where neither a flag nor the environment set one.
    let unset = |id: &str| {
        !matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
    };
    macro_rules! take {
        ($($field:ident),*) => {$(
            if let Some(v) = file.$field && unset(stringify!($field)) {
                config.$field = v;
            }
        )*};
    }
    macro_rules! take_opt {
        ($($field:ident),*) => {$(
            if let Some(v) = file.$field && unset(stringify!($field)) {
                config.$field = Some(v);
            }
        )*};
    }
    take!(
        listen,
        data_dir,
        admin_email,
        local_runtime,
        containerd_socket,
        cors_origins,
        hsts,
        open_registration,
        allow_unconfined,
        rate_limit,
        auth_rate_limit,
        max_connections_per_ip,
        network,
        sftp_listen,
        backup_storage,
        backup_dir,
        backup_s3_endpoint,
        backup_s3_bucket,
        backup_s3_region,
        backup_s3_prefix,
        backup_s3_access_key_id,
        backup_s3_secret_access_key,
        backup_sftp_host,
        backup_sftp_port,
        backup_sftp_username,
        backup_sftp_password,
        backup_sftp_directory,
        backup_sftp_host_key
    );
    take_opt!(database_url, admin_password, jwt_secret, backup_keep_last, backup_max_age_days, backup_max_total_mb);
    Ok(config)
}

/// The all-in-one node: a location and node named `local`, and a daemon in this process.
async fn start_local_node(catalyst: &Catalyst, link: &NodeHub, config: &Config) -> anyhow::Result<()> {
    let (memory_mb, disk_mb) = machine_capacity(&config.data_dir);
    let node = catalyst.local_node("This machine", memory_mb, disk_mb).await?;
    let choice = match config.local_runtime {
        LocalRuntime::Containerd => RuntimeChoice::Containerd,
        LocalRuntime::Process => RuntimeChoice::Process,
        LocalRuntime::Auto | LocalRuntime::None => RuntimeChoice::Auto,
    };
    let mut cc = ContainerdConfig::new(config.data_dir.join("containerd"));
    cc.socket = config.containerd_socket.clone();
    cc.cni.state_dir = config.data_dir.join("cni");
    let (runtime, note) = choose_runtime(choice, cc).await?;
    if let Some(note) = note {
        println!("{note}");
    }
    println!("local node {} on the {} runtime", node.id, runtime.name());
    let isolation = runtime.isolation();
    println!("{}", describe_isolation(isolation, config.allow_unconfined));
    let mut daemon_config = DaemonConfig::new(config.data_dir.join("node"));
    daemon_config.allow_unconfined = config.allow_unconfined;
    if isolation == Isolation::Uid {
        for dir in untraversable_ancestors(&config.data_dir) {
            eprintln!(
                "WARNING: {} is not traversable by other users (mode o-x): servers running as their own uid \
                 cannot reach their directories under it; choose a --data-dir outside it or chmod o+x it",
                dir.display()
            );
        }
    }
    daemon_config.network = match config.network {
        Network::Host => NetworkMode::Host,
        Network::Bridge => NetworkMode::Bridge,
    };
    let daemon = NodeDaemon::new(node.id, runtime, Arc::new(SystemClock), daemon_config);
    let recovered = daemon.recover().await?;
    if recovered > 0 {
        println!("recovered {recovered} servers");
    }
    daemon.spawn_reporters(std::time::Duration::from_secs(5), std::time::Duration::from_secs(30));
    link.add_node(daemon.clone());
    if !config.sftp_listen.is_empty() {
        let addr: SocketAddr = config.sftp_listen.parse().context("CATALYST_SFTP_LISTEN")?;
        // A taken port is reported, not fatal: the panel and the games keep working.
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let sftp = SftpConfig::with_host_key_file(&config.data_dir.join("sftp_host_ed25519_key"))?;
                tokio::spawn(serve_sftp(listener, daemon, Arc::new(catalyst.clone()), sftp));
                println!("SFTP on {addr}");
            }
            Err(e) => eprintln!("SFTP is off: cannot listen on {addr}: {e}"),
        }
    }
    Ok(())
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
