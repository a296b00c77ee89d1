//! `catalyst-server`'s settings, declared once as [`ServerConfig`] and layered: defaults < a
//! TOML file (`--config` or `CATALYST_CONFIG`) < `CATALYST_*` environment < flags. Every key is
//! all three: `rate_limit` in the file, `CATALYST_RATE_LIMIT`, `--rate-limit`; a key of a
//! section nests with `__` in the environment and `.` on the command line
//! (`[backup] keep_last`, `CATALYST_BACKUP__KEEP_LAST`, `--backup.keep-last`). Unknown keys,
//! variables and flags are refused with a message naming them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use catalyst_core::model::{BackupStorage, RetentionPolicy};
use catalyst_core::ports::NetworkMode;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

/// Everything `catalyst-server` can be told.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database and generated secrets live.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL instead of the embedded SQLite.
    pub database_url: Option<String>,
    /// E-mail of the first administrator.
    pub admin_email: String,
    /// Password of the first administrator (generated and printed once if absent).
    pub admin_password: Option<String>,
    /// HMAC key for access tokens (generated and kept in the data dir if absent).
    pub jwt_secret: Option<String>,
    /// Run game servers on this machine too (all-in-one); `none` makes a pure control plane.
    pub local_runtime: LocalRuntime,
    /// containerd's socket, for the local node.
    pub containerd_socket: PathBuf,
    /// How local containers reach the network: `host`, or `bridge` with forwarded ports.
    pub network: NetworkMode,
    /// Serve SFTP for the local node's servers; empty turns it off.
    pub sftp_listen: String,
    /// Run the local node's servers even where they cannot be confined (plain processes
    /// without root): they can then read this machine's secrets. Only for servers you trust.
    pub allow_unconfined: bool,
    /// Let anyone create an account at `/api/auth/register` (off: the billing panel creates
    /// customers with `POST /api/admin/users`).
    pub open_registration: bool,
    /// Browser origins allowed to call the API (`*` for any; comma-separated in a variable).
    #[serde(deserialize_with = "text::list")]
    pub cors_origins: Vec<String>,
    /// Served behind TLS (adds Strict-Transport-Security).
    pub hsts: bool,
    /// Requests per minute per client IP.
    pub rate_limit: u32,
    /// Login, registration, refresh and enrollment attempts per minute per client IP.
    pub auth_rate_limit: u32,
    /// Open connections per client IP, WebSockets included (raise it behind a reverse proxy).
    pub max_connections_per_ip: u32,
    /// Where backups go and which are kept.
    pub backup: BackupConfig,
}

/// `[backup]`: storage and retention.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// `[backup.storage]` with `kind = "local" | "s3" | "sftp"` and that kind's fields (absent: a
    /// directory on each node, `<node data>/backups`).
    pub storage: Option<BackupStorage>,
    /// Keep at most this many backups per server (locked ones aside).
    pub keep_last: Option<u32>,
    /// Delete backups older than this many days.
    pub max_age_days: Option<u32>,
    /// Keep a server's backups under this many MiB in all.
    pub max_total_mb: Option<u64>,
}

impl BackupConfig {
    pub fn storage(&self) -> BackupStorage {
        self.storage.clone().unwrap_or(BackupStorage::Local { directory: String::new() })
    }

    pub fn retention(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: self.keep_last,
            max_age_days: self.max_age_days,
            max_total_bytes: self.max_total_mb.map(|mb| mb * 1024 * 1024),
        }
    }
}

/// Which runtime the in-process node uses.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalRuntime {
    /// containerd when its socket answers, else plain processes.
    Auto,
    /// containerd only.
    Containerd,
    /// Plain child processes (development, hosts without containerd).
    Process,
    /// No local node.
    None,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: "./catalyst-data".into(),
            database_url: None,
            admin_email: "admin@catalyst.local".into(),
            admin_password: None,
            jwt_secret: None,
            local_runtime: LocalRuntime::Auto,
            containerd_socket: "/run/containerd/containerd.sock".into(),
            network: NetworkMode::Host,
            sftp_listen: "0.0.0.0:2022".into(),
            allow_unconfined: false,
            open_registration: false,
            cors_origins: Vec::new(),
            hsts: false,
            rate_limit: 200,
            auth_rate_limit: 10,
            max_connections_per_ip: catalyst_http::MAX_CONNECTIONS_PER_IP,
            backup: BackupConfig::default(),
        }
    }
}

/// Variables of the form `CATALYST_*` that belong to someone else.
const FOREIGN_PREFIXES: [&str; 3] = ["CATALYST_AGENT_", "CATALYST_TEST_", "CATALYST_CARRIED_"];

/// What `main` should do.
pub enum Loaded {
    Run(Box<ServerConfig>),
    /// `--help` or `--version`: print this and exit.
    Print(String),
}

/// Read the settings from `args` (without the program name) and `vars` over the defaults.
pub fn load(args: Vec<String>, vars: impl Iterator<Item = (String, String)>) -> anyhow::Result<Loaded> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Loaded::Print(help()));
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Loaded::Print(format!("catalyst-server {}", env!("CARGO_PKG_VERSION"))));
    }
    let mut flags = Layer::flags(args)?;
    let mut env = Layer::environment(vars);
    let file = flags.take("config").or_else(|| env.take("config"));
    let mut figment = Figment::from(figment::providers::Serialized::defaults(ServerConfig::default()));
    if let Some(path) = file {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        // Parse first: a syntax error then names the file and line.
        toml::from_str::<toml::Table>(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
        figment = figment.merge(<figment::providers::Toml as figment::providers::Format>::file_exact(&path));
    }
    // Lossy: the environment and flags are text, typed by the setting they land in.
    let config = figment.merge(env).merge(flags).extract_lossy::<ServerConfig>().map_err(explain)?;
    Ok(Loaded::Run(Box::new(config)))
}

/// One layer of string values (the environment or the command line); values are typed by
/// the setting they land in ("200" is a number for `rate_limit`, text for a password).
struct Layer {
    name: &'static str,
    values: Dict,
    /// How a key path is spelled in this layer, for error messages.
    spell: fn(&[&str]) -> String,
}

impl Layer {
    fn environment(vars: impl Iterator<Item = (String, String)>) -> Self {
        let mut values = Dict::new();
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("CATALYST_") else { continue };
            if FOREIGN_PREFIXES.iter().any(|p| key.starts_with(p)) {
                continue;
            }
            insert(&mut values, &name.to_lowercase().split("__").collect::<Vec<_>>(), value);
        }
        Self { name: "environment", values, spell: |keys| format!("CATALYST_{}", keys.join("__").to_uppercase()) }
    }

    fn flags(args: Vec<String>) -> anyhow::Result<Self> {
        let mut values = Dict::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                anyhow::bail!(
                    "unexpected argument {arg:?} (settings are flags like --listen 127.0.0.1:3000; see --help)"
                );
            };
            let (key, value) = match flag.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                // A flag followed by another flag (or nothing) is a switch: `--hsts`.
                None => match args.next_if(|next| !next.starts_with("--")) {
                    Some(v) => (flag.to_string(), v),
                    None => (flag.to_string(), "true".into()),
                },
            };
            let key = key.replace('-', "_");
            insert(&mut values, &key.split('.').collect::<Vec<_>>(), value);
        }
        Ok(Self { name: "command line", values, spell: |keys| format!("--{}", keys.join(".").replace('_', "-")) })
    }

    /// Remove a top-level value (`config`, which names the file rather than being a setting).
    fn take(&mut self, key: &str) -> Option<String> {
        match self.values.remove(key)? {
            Value::String(_, s) => Some(s),
            _ => None,
        }
    }
}

fn insert(dict: &mut Dict, path: &[&str], value: String) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_string(), Value::from(value));
        }
        [first, rest @ ..] => {
            let entry = dict.entry((*first).to_string()).or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let spell = self.spell;
        Metadata::named(self.name).interpolater(move |_: &Profile, keys: &[&str]| spell(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Figment's errors in the words of the layer they came from: `unknown setting
/// CATALYST_LISTN`, `unknown field `listn`` in a file.
fn explain(errors: figment::Error) -> anyhow::Error {
    use figment::error::Kind;
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let Some(m) = e.metadata.as_ref() else { return e.to_string() };
            let ours = m.name == "environment" || m.name == "command line";
            match (&e.kind, ours) {
                (Kind::UnknownField(_, known), true) => {
                    let spelled = m.interpolate(&Profile::Default, &e.path);
                    format!("unknown setting {spelled} (known: {})", known.join(", "))
                }
                (Kind::UnknownField(field, known), false) => {
                    let file = m.source.as_ref().map_or_else(|| m.name.to_string(), |s| s.to_string());
                    format!("{file}: unknown field `{field}` (known: {})", known.join(", "))
                }
                (kind, true) => format!("{}: {kind}", m.interpolate(&Profile::Default, &e.path)),
                (kind, false) => {
                    let file = m.source.as_ref().map_or_else(|| m.name.to_string(), |s| s.to_string());
                    format!("{file}: {}: {kind}", e.path.join("."))
                }
            }
        })
        .collect();
    anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
}

fn help() -> String {
    let defaults = toml::to_string(&ServerConfig::default()).unwrap_or_default();
    format!(
        "catalyst-server: the Catalyst control plane (all-in-one by default)\n\n\
         Usage: catalyst-server [--config FILE] [--KEY VALUE]...\n\n\
         Every setting below is a TOML key (in --config FILE or CATALYST_CONFIG), an environment\n\
         variable CATALYST_KEY (sections joined with __: CATALYST_BACKUP__KEEP_LAST) and a flag\n\
         --key (sections joined with .: --backup.keep-last); flags win over the environment,\n\
         which wins over the file. Backup storage: [backup.storage] kind = \"s3\" with endpoint,\n\
         bucket, region, prefix, access_key_id, secret_access_key; or kind = \"sftp\" with host,\n\
         port, username, password, directory, host_key_fingerprint.\n\n\
         Settings and their defaults (admin_password, jwt_secret and database_url are unset):\n\n{defaults}"
    )
}

/// Readers for values that arrive as text from the environment or the command line.
mod text {
    use serde::{Deserialize, Deserializer};

    /// A list, or one comma-separated text (`CATALYST_CORS_ORIGINS=https://a,https://b`).
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum List {
            Many(Vec<String>),
            One(String),
        }
        Ok(match List::deserialize(d)? {
            List::Many(v) => v,
            List::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<ServerConfig> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        match load(args.iter().map(|a| a.to_string()).collect(), vars.into_iter())? {
            Loaded::Run(c) => Ok(*c),
            Loaded::Print(_) => anyhow::bail!("printed"),
        }
    }

    #[test]
    fn defaults_environment_and_flags_layer_in_that_order() {
        let c = load_with(&[], &[]).expect("defaults");
        assert_eq!((c.listen.port(), c.rate_limit, c.hsts), (3000, 200, false));
        let c = load_with(
            &["--rate-limit", "7", "--hsts"],
            &[("CATALYST_RATE_LIMIT", "5"), ("CATALYST_AUTH_RATE_LIMIT", "3")],
        )
        .expect("layers");
        assert_eq!((c.rate_limit, c.auth_rate_limit, c.hsts), (7, 3, true));
    }

    #[test]
    fn a_file_loses_to_the_environment_and_sections_nest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\nrate_limit = 9\n[backup]\nkeep_last = 4\n[backup.storage]\nkind = \"s3\"\n\
             bucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n",
        )
        .expect("write");
        let path = file.display().to_string();
        let c = load_with(
            &["--config", &path, "--backup.max-age-days", "30"],
            &[("CATALYST_LISTEN", "127.0.0.1:2"), ("CATALYST_BACKUP__STORAGE__BUCKET", "other")],
        )
        .expect("load");
        assert_eq!((c.listen.port(), c.rate_limit), (2, 9));
        assert_eq!((c.backup.keep_last, c.backup.max_age_days), (Some(4), Some(30)));
        match c.backup.storage() {
            BackupStorage::S3 { bucket, region, .. } => {
                assert_eq!((bucket.as_str(), region.as_str()), ("other", "us-east-1"))
            }
            _ => panic!("not S3"),
        }
    }

    #[test]
    fn text_settings_stay_text_and_lists_split() {
        let c = load_with(
            &["--cors-origins", "https://a, https://b"],
            &[("CATALYST_ADMIN_PASSWORD", "12345678"), ("CATALYST_SFTP_LISTEN", "")],
        )
        .expect("load");
        assert_eq!(c.admin_password.as_deref(), Some("12345678"));
        assert_eq!(c.cors_origins, ["https://a", "https://b"]);
        assert_eq!(c.sftp_listen, "");
    }

    #[test]
    fn unknown_keys_are_named_where_they_came_from() {
        let e = load_with(&[], &[("CATALYST_LISTN", "1")]).err().expect("refused").to_string();
        assert!(e.contains("unknown setting CATALYST_LISTN"), "{e}");
        let e = load_with(&[], &[("CATALYST_BACKUP__KEEP", "1")]).err().expect("refused").to_string();
        assert!(e.contains("unknown setting CATALYST_BACKUP__KEEP"), "{e}");
        let e = load_with(&["--listn", "x"], &[]).err().expect("refused").to_string();
        assert!(e.contains("unknown setting --listn"), "{e}");
        let e = load_with(&["--rate-limit", "many"], &[]).err().expect("refused").to_string();
        assert!(e.contains("--rate-limit"), "{e}");
        // Someone else's variables are not ours to refuse.
        load_with(&[], &[("CATALYST_AGENT_NODE_ID", "x"), ("CATALYST_TEST_POSTGRES_URL", "y")]).expect("ignored");
    }
}
