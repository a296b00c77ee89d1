//! A node's allocation pool: the `ip:port` pairs it may hand to servers, and the request to
//! let Catalyst choose a node and an allocation (placement).

use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::id::{LocationId, NodeId, ServerId};
use crate::{Error, Result};

/// One `ip:port` of a node's pool, free or held by one server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NodeAllocation {
    /// Stable integer id, assigned by the store (the Pterodactyl API's allocation `id`).
    pub number: u64,
    /// The node whose pool it is in.
    pub node_id: NodeId,
    /// IP address, `0.0.0.0` for all.
    pub ip: String,
    /// TCP and UDP port.
    pub port: u16,
    /// Name shown to players instead of the IP (a host name).
    pub alias: Option<String>,
    /// Free text for operators and owners.
    pub notes: Option<String>,
    /// The server holding it, if any.
    pub server_id: Option<ServerId>,
}

/// Ports to add to a node's pool on one IP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAllocations {
    /// IP address the ports are on.
    pub ip: String,
    /// Ports and ranges: `"25565"`, `"27015-27030"`.
    #[schema(min_items = 1, max_items = 100)]
    pub ports: Vec<String>,
    /// Name shown instead of the IP.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub alias: Option<String>,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub notes: Option<String>,
}

/// One row [`NewAllocations`] expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// Normalised IP.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Alias.
    pub alias: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

/// The most ports one range may span, and one request may add (Pterodactyl allows 1000 per range).
pub const MAX_RANGE: usize = 1000;
/// The most ports one request may add.
pub const MAX_PORTS_PER_REQUEST: usize = 10_000;

/// Parse `"25565"` or `"27015-27030"`: ports 1-65535, at most [`MAX_RANGE`] in a range.
pub fn parse_port_range(spec: &str) -> Result<RangeInclusive<u16>> {
    let bad = || Error::invalid(format!("port {spec:?} must be a port 1-65535 or a range like 27015-27030"));
    let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    let range = match spec.split_once('-') {
        Some((a, b)) => port(a)?..=port(b)?,
        None => port(spec).map(|p| p..=p)?,
    };
    if range.start() > range.end() {
        return Err(Error::invalid(format!("port range {spec:?} ends before it starts")));
    }
    if range.len() > MAX_RANGE {
        return Err(Error::invalid(format!("port range {spec:?} spans more than {MAX_RANGE} ports")));
    }
    Ok(range)
}

/// Parse an IP address and print it in its canonical form.
pub fn normalise_ip(ip: &str) -> Result<String> {
    ip.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| Error::invalid(format!("{ip:?} is not an IP address")))
}

impl NewAllocations {
    /// The rows to insert: validated, de-duplicated, in port order.
    pub fn entries(&self) -> Result<Vec<PoolEntry>> {
        let ip = normalise_ip(&self.ip)?;
        let alias = optional_text("alias", self.alias.as_deref(), 191)?;
        let notes = optional_text("notes", self.notes.as_deref(), 256)?;
        if self.ports.is_empty() || self.ports.len() > 100 {
            return Err(Error::invalid("ports: give 1-100 ports or ranges"));
        }
        let mut ports = std::collections::BTreeSet::new();
        for spec in &self.ports {
            ports.extend(parse_port_range(spec)?);
            if ports.len() > MAX_PORTS_PER_REQUEST {
                return Err(Error::invalid(format!("ports: at most {MAX_PORTS_PER_REQUEST} per request")));
            }
        }
        Ok(ports
            .into_iter()
            .map(|port| PoolEntry { ip: ip.clone(), port, alias: alias.clone(), notes: notes.clone() })
            .collect())
    }
}

/// `None` for absent or blank text, else the validated text.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => crate::validate::text(field, v, max).map(Some),
    }
}

/// Let Catalyst choose the node and the primary allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Locations the node may be in (empty: any).
    #[serde(default)]
    pub locations: Vec<LocationId>,
    /// Only an IP no other server on the node uses.
    #[serde(default)]
    pub dedicated_ip: bool,
    /// Ports and ranges the primary allocation must be in (empty: any).
    #[serde(default)]
    pub port_range: Vec<String>,
}

impl Deploy {
    /// The port ranges as numbers.
    pub fn ranges(&self) -> Result<Vec<(u16, u16)>> {
        self.port_range.iter().map(|s| parse_port_range(s).map(|r| (*r.start(), *r.end()))).collect()
    }
}

/// How [`crate::ports::AllocationStore::free_allocation`] narrows its choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeAllocation {
    /// Inclusive port ranges the port must be in (empty: any).
    pub ranges: Vec<(u16, u16)>,
    /// Only on an IP where nothing on the node is assigned.
    pub dedicated_ip: bool,
}

impl FreeAllocation {
    /// Does a free allocation qualify (its IP's other uses are checked by the store)?
    pub fn port_fits(&self, port: u16) -> bool {
        self.ranges.is_empty() || self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_refuse() {
        assert_eq!(parse_port_range("25565").unwrap(), 25565..=25565);
        assert_eq!(parse_port_range(" 4000 - 4010 ").unwrap(), 4000..=4010);
        for bad in ["70000-1", "0", "a", "10-5", "1-2000", "", "-", "5-"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_dedupe_and_normalise() {
        let req = NewAllocations {
            ip: " 10.0.0.1 ".into(),
            ports: vec!["4000-4002".into(), "4001".into()],
            alias: Some(" ".into()),
            notes: Some("lobby".into()),
        };
        let e = req.entries().unwrap();
        assert_eq!(e.iter().map(|e| e.port).collect::<Vec<_>>(), [4000, 4001, 4002]);
        assert_eq!(e[0].ip, "10.0.0.1");
        assert_eq!(e[0].alias, None);
        assert_eq!(e[0].notes.as_deref(), Some("lobby"));
        let bad = NewAllocations { ip: "10.0.0.999".into(), ..req.clone() };
        assert!(bad.entries().is_err());
        let many =
            NewAllocations { ports: (0..11).map(|i| format!("{}-{}", i * 1000 + 1, i * 1000 + 1000)).collect(), ..req };
        assert!(many.entries().unwrap_err().message().contains("at most"));
    }
}
