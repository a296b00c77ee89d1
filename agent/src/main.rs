//! `catalyst-agent`: runs a node's game servers and dials the control plane.
//!
//! The node link to a remote control plane lands with the control-plane issue; until then the
//! agent only validates its configuration.

use clap::Parser;

/// Command line and `CATALYST_AGENT_*` environment.
#[derive(Parser)]
#[command(name = "catalyst-agent", version, about = "Catalyst node agent")]
struct Config {
    /// URL of the control plane.
    #[arg(long, env = "CATALYST_AGENT_CONTROL_URL")]
    control_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    match config.control_url {
        Some(url) => anyhow::bail!("connecting to {url} is not available in this version"),
        None => anyhow::bail!("--control-url is required"),
    }
}
