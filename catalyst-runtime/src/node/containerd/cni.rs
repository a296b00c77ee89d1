//! Bridge networking through CNI plugins (Debian's containernetworking-plugins): a network
//! namespace per container on the `catalyst0` bridge, with each allocation's port forwarded
//! (TCP and UDP) by the portmap plugin, also from 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use catalyst_core::model::Allocation;
use catalyst_core::{Error, ErrorKind, Result};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// Where the plugins are and which network they build.
#[derive(Debug, Clone)]
pub struct CniConfig {
    /// Plugin binaries (`bridge`, `host-local`, `portmap`).
    pub plugin_dir: PathBuf,
    /// IPAM state.
    pub state_dir: PathBuf,
    /// Bridge device name.
    pub bridge: String,
    /// Container subnet.
    pub subnet: String,
}

impl CniConfig {
    /// `/usr/lib/cni`, bridge `catalyst0` on 10.89.0.0/16.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dir: "/usr/lib/cni".into(),
            state_dir: state_dir.into(),
            bridge: "catalyst0".into(),
            subnet: "10.89.0.0/16".into(),
        }
    }
}

/// The named network namespace of a container.
/// The bridge's address in `subnet` (host-local IPAM gives the gateway the first address).
pub fn gateway(subnet: &str) -> String {
    let network = subnet.split('/').next().and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
    match network {
        Some(ip) => std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string(),
        None => "127.0.0.1".into(),
    }
}

pub fn netns_path(id: &str) -> PathBuf {
    Path::new("/var/run/netns").join(format!("catalyst-{id}"))
}

fn plugins(config: &CniConfig) -> Vec<Value> {
    vec![
        json!({
            "type": "bridge",
            "bridge": config.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": config.subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": config.state_dir.join("ipam"),
            },
        }),
        json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
    ]
}

fn port_mappings(allocations: &[Allocation]) -> Value {
    let mut out = Vec::new();
    for a in allocations {
        let host_ip = if a.ip == "0.0.0.0" { String::new() } else { a.ip.clone() };
        for protocol in ["tcp", "udp"] {
            out.push(json!({"hostPort": a.port, "containerPort": a.port, "protocol": protocol, "hostIP": host_ip}));
        }
    }
    Value::Array(out)
}

async fn run_plugin(config: &CniConfig, command: &str, id: &str, netns: &Path, conf: &Value) -> Result<Value> {
    let kind = conf["type"].as_str().unwrap_or_default();
    let mut child = tokio::process::Command::new(config.plugin_dir.join(kind))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &config.plugin_dir)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("CNI plugin {kind} is missing (install containernetworking-plugins)"),
            )
            .with_source(e)
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(conf.to_string().as_bytes()).await.map_err(|e| Error::internal("CNI plugin input", e))?;
    }
    let out = child.wait_with_output().await.map_err(|e| Error::internal("CNI plugin", e))?;
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() {
        let msg = body["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        return Err(Error::internal(format!("CNI {kind} {command} failed: {msg}"), std::io::Error::other(msg.clone())));
    }
    Ok(body)
}

fn plugin_conf(plugin: &Value, prev: Option<&Value>, allocations: &[Allocation]) -> Value {
    let mut conf = plugin.clone();
    conf["cniVersion"] = json!("1.0.0");
    conf["name"] = json!("catalyst");
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"] == json!(true) {
        conf["runtimeConfig"] = json!({"portMappings": port_mappings(allocations)});
    }
    conf
}

async fn ip(args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| Error::internal("cannot run ip", e))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(Error::internal(format!("ip {}: {msg}", args.join(" ")), std::io::Error::other(msg)))
    }
}

/// Create the namespace and run every plugin's ADD; undo on failure.
pub async fn setup(config: &CniConfig, id: &str, allocations: &[Allocation]) -> Result<PathBuf> {
    let name = format!("catalyst-{id}");
    let netns = netns_path(id);
    if !netns.exists() {
        ip(&["netns", "add", &name]).await?;
    }
    let mut prev: Option<Value> = None;
    for plugin in plugins(config) {
        match run_plugin(config, "ADD", id, &netns, &plugin_conf(&plugin, prev.as_ref(), allocations)).await {
            Ok(result) => prev = Some(result),
            Err(e) => {
                teardown(config, id, allocations).await;
                return Err(e);
            }
        }
    }
    Ok(netns)
}

/// Run every plugin's DEL in reverse and remove the namespace. Best effort, idempotent.
pub async fn teardown(config: &CniConfig, id: &str, allocations: &[Allocation]) {
    let netns = netns_path(id);
    if !netns.exists() {
        return;
    }
    for plugin in plugins(config).iter().rev() {
        if let Err(e) = run_plugin(config, "DEL", id, &netns, &plugin_conf(plugin, None, allocations)).await {
            tracing::warn!(container = id, error = %e, "CNI teardown");
        }
    }
    let _ = ip(&["netns", "delete", &format!("catalyst-{id}")]).await;
}
