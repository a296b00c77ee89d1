//! What a node needs to run a server: the template rendered for it.

use std::collections::BTreeMap;

use catalyst_core::Result;
use catalyst_core::model::{Allocation, Server, StartupMode, Template};
use catalyst_core::protocol::ServerSpec;
use catalyst_core::render::{self, ConfigFacts, RenderContext};

/// Render `template` for `server` on a node in `location`: image and startup chosen, built-ins
/// and variables as environment, config edits with their placeholders resolved.
pub(super) fn spec_for(server: &Server, template: &Template, location: &str) -> Result<ServerSpec> {
    let primary =
        server.primary_allocation().cloned().unwrap_or(Allocation { ip: "0.0.0.0".into(), port: 0, primary: true });
    let image = template.image_for(server.image.as_deref())?.to_string();
    let startup = template.startup_for(server.startup_command.as_deref())?;
    let id = server.id.to_string();
    let ctx = RenderContext::new()
        .extend(&server.variables)
        .with("SERVER_ID", &id)
        .with("SERVER_UUID", &id)
        .with("P_SERVER_UUID", &id)
        .with("SERVER_MEMORY", server.limits.memory_mb.to_string())
        .with("SERVER_IP", primary.ip.clone())
        .with("SERVER_PORT", primary.port.to_string())
        .with("TZ", "UTC")
        .with("P_SERVER_LOCATION", location)
        .with("P_SERVER_ALLOCATION_LIMIT", server.limits.allocations.to_string())
        // What egg images' entrypoints expand; in shell mode merely informative.
        .with("STARTUP", startup);
    let mut env = BTreeMap::new();
    for (k, v) in &template.env {
        env.insert(k.clone(), render::render(v, &ctx)?);
    }
    env.extend(ctx.values().iter().map(|(k, v)| (k.clone(), v.clone())));
    let startup = match template.startup_mode {
        // Values reach the shell as environment variables, never as shell text.
        StartupMode::Shell => render::render_shell(startup, &ctx)?,
        // The image's entrypoint reads STARTUP; the node runs the image's own command.
        StartupMode::Entrypoint => String::new(),
    };
    let facts = ConfigFacts {
        uuid: id.clone(),
        ip: primary.ip,
        port: primary.port.to_string(),
        memory_mb: server.limits.memory_mb.to_string(),
        swap_mb: server.limits.swap_mb.to_string(),
        io: server.limits.io_weight.to_string(),
        cpu: server.limits.cpu_percent.to_string(),
        disk_mb: server.limits.disk_mb.to_string(),
    };
    let config = render::config_context(&facts, ctx.values());
    let config_files = template.config_files.iter().map(|e| render::render_edit(e, &config)).collect::<Result<_>>()?;
    Ok(ServerSpec {
        server_id: server.id,
        image,
        startup,
        startup_mode: template.startup_mode,
        env,
        limits: server.limits,
        allocations: server.allocations.clone(),
        stop: template.stop.clone(),
        done_patterns: template.done_patterns.clone(),
        install: template.install.clone(),
        restart_policy: server.restart_policy,
        config_files,
        file_denylist: template.file_denylist.clone(),
    })
}
