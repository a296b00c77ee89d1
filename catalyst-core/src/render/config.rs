//! Placeholders in config-file edits, as eggs write them (`{{server.build.default.port}}`,
//! `{{env.MAX_PLAYERS}}`…). Only the names below resolve — never a path into arbitrary server
//! data, as Pterodactyl's panel allows.

use std::collections::BTreeMap;

use super::{RenderContext, render};
use crate::Result;
use crate::model::{ConfigFileEdit, ConfigValue};

/// Facts about the server that config edits may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFacts {
    /// The server's id.
    pub uuid: String,
    /// Primary allocation's IP.
    pub ip: String,
    /// Primary allocation's port.
    pub port: String,
    /// Memory limit in MiB.
    pub memory_mb: String,
    /// Swap in MiB.
    pub swap_mb: String,
    /// Block-IO weight.
    pub io: String,
    /// CPU percent.
    pub cpu: String,
    /// Disk limit in MiB.
    pub disk_mb: String,
}

/// Every fixed placeholder name config edits may use.
pub const CONFIG_PLACEHOLDERS: &[&str] = &[
    "server.uuid",
    "server.build.default.ip",
    "server.build.default.port",
    "server.allocations.default.ip",
    "server.allocations.default.port",
    "server.build.memory",
    "server.build.memory_limit",
    "server.build.swap",
    "server.build.io",
    "server.build.cpu",
    "server.build.disk",
    "config.docker.interface",
];

/// Prefixes followed by an environment name (`{{env.X}}`): the server's variables and built-ins.
pub const CONFIG_ENV_PREFIXES: &[&str] =
    &["env.", "server.build.env.", "server.environment.", "server.build.environment."];

/// What `{{config.docker.interface}}` renders to on the control plane: the node replaces it
/// with the address servers reach it on. No value can contain it: values refuse control
/// characters.
pub const NODE_INTERFACE: &str = "\0config.docker.interface\0";

/// The context config edits render in: `facts`, and every `env` value under each prefix.
pub fn config_context(facts: &ConfigFacts, env: &BTreeMap<String, String>) -> RenderContext {
    let fixed = [
        &facts.uuid,
        &facts.ip,
        &facts.port,
        &facts.ip,
        &facts.port,
        &facts.memory_mb,
        &facts.memory_mb,
        &facts.swap_mb,
        &facts.io,
        &facts.cpu,
        &facts.disk_mb,
    ];
    let mut ctx = RenderContext::new();
    for (name, value) in CONFIG_PLACEHOLDERS.iter().zip(fixed) {
        ctx = ctx.with(*name, value.clone());
    }
    ctx = ctx.with("config.docker.interface", NODE_INTERFACE);
    for (key, value) in env {
        for prefix in CONFIG_ENV_PREFIXES {
            ctx = ctx.with(format!("{prefix}{key}"), value.clone());
        }
    }
    ctx
}

/// `edit` with every value rendered in `ctx` (from [`config_context`]).
pub fn render_edit(edit: &ConfigFileEdit, ctx: &RenderContext) -> Result<ConfigFileEdit> {
    let mut set = BTreeMap::new();
    for (key, value) in &edit.set {
        let value = match value {
            ConfigValue::Always(v) => ConfigValue::Always(render(v, ctx)?),
            ConfigValue::IfValue(map) => {
                ConfigValue::IfValue(map.iter().map(|(k, v)| Ok((k.clone(), render(v, ctx)?))).collect::<Result<_>>()?)
            }
        };
        set.insert(key.clone(), value);
    }
    Ok(ConfigFileEdit { path: edit.path.clone(), format: edit.format, set })
}

/// On the node: `edit` with [`NODE_INTERFACE`] replaced by the node's address, in every value
/// (before the file is edited: an editor would escape the marker).
pub fn with_node_interface(edit: &ConfigFileEdit, address: &str) -> ConfigFileEdit {
    let fill = |v: &String| v.replace(NODE_INTERFACE, address);
    let set = edit
        .set
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ConfigValue::Always(v) => ConfigValue::Always(fill(v)),
                ConfigValue::IfValue(map) => {
                    ConfigValue::IfValue(map.iter().map(|(k, v)| (k.clone(), fill(v))).collect())
                }
            };
            (k.clone(), v)
        })
        .collect();
    ConfigFileEdit { path: edit.path.clone(), format: edit.format, set }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eggs_placeholders_resolve_and_nothing_else() {
        let facts = ConfigFacts { port: "25565".into(), memory_mb: "1024".into(), ..Default::default() };
        let env = BTreeMap::from([("MOTD".to_string(), "{{server.build.memory}}".to_string())]);
        let ctx = config_context(&facts, &env);
        assert_eq!(render("{{server.build.default.port}}", &ctx).ok().as_deref(), Some("25565"));
        assert_eq!(render("{{server.allocations.default.port}}", &ctx).ok().as_deref(), Some("25565"));
        assert_eq!(
            render("{{ env.MOTD }}", &ctx).ok().as_deref(),
            Some("{{server.build.memory}}"),
            "values are not re-rendered"
        );
        assert_eq!(render("{{server.build.env.MOTD}}", &ctx).ok().as_deref(), Some("{{server.build.memory}}"));
        assert_eq!(render("{{config.docker.interface}}", &ctx).ok().as_deref(), Some(NODE_INTERFACE));
        for unknown in ["{{server.owner.email}}", "{{env.NOPE}}", "{{config.token}}", "{{server.node.daemon_token}}"] {
            assert!(render(unknown, &ctx).is_err(), "{unknown}");
        }
    }
}
