//! Pterodactyl and Pelican eggs: import into a [`NewTemplate`] and export back.
//!
//! Import is pure and whole: it either yields a complete template or an error naming the field
//! and the reason; the caller validates the result like any other template (rules, paths,
//! placeholders) before storing anything. Formats: PTDL_v1, PTDL_v2, PLCN_v1–v3, in JSON or
//! YAML. Export writes PTDL_v2 (what Pterodactyl imports) or PLCN_v3 (Pelican), as JSON.

mod export;
#[cfg(test)]
mod golden_config;
mod import;
mod raw;
#[cfg(test)]
mod tests;

pub use export::export;
pub use import::{import, stop_from_egg};

use crate::{Error, Result};

/// The largest egg accepted (the largest real eggs, with a base64 icon, are under 200 KiB).
pub const MAX_EGG_BYTES: usize = 4 << 20;

/// Egg format versions Catalyst reads.
pub const IMPORT_FORMATS: &[&str] = &["PTDL_v1", "PTDL_v2", "PLCN_v1", "PLCN_v2", "PLCN_v3"];

/// A format Catalyst writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EggFormat {
    /// Pterodactyl ≥ 1.3.
    PtdlV2,
    /// Pelican (multiple startup commands, uuid, tags).
    PlcnV3,
}

impl EggFormat {
    /// `ptdl_v2` or `plcn_v3`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ptdl_v2" => Ok(Self::PtdlV2),
            "plcn_v3" => Ok(Self::PlcnV3),
            _ => Err(Error::invalid(format!("egg format {s:?} is not one of ptdl_v2, plcn_v3"))),
        }
    }

    /// The `meta.version` it writes.
    pub fn version(self) -> &'static str {
        match self {
            Self::PtdlV2 => "PTDL_v2",
            Self::PlcnV3 => "PLCN_v3",
        }
    }
}
