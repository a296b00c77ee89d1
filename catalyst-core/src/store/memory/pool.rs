//! Allocation pools and the numbers the memory store assigns.

use async_trait::async_trait;

use super::{MemoryStore, State, page_of};
use crate::id::{NodeId, ServerId};
use crate::model::{FreeAllocation, NodeAllocation, Page, Paged, PoolEntry, Server};
use crate::ports::{AllocationFilter, AllocationStore};
use crate::{Error, Result};

/// The last number handed out per kind; like a database sequence, never reused.
#[derive(Debug, Default)]
pub(super) struct Serials {
    pub users: u64,
    pub locations: u64,
    pub nodes: u64,
    pub templates: u64,
    pub servers: u64,
    pub allocations: u64,
}

/// The next number of a kind.
pub(super) fn next(serial: &mut u64) -> u64 {
    *serial += 1;
    *serial
}

/// A pool's key: node, IP, port.
pub(super) type PoolKey = (NodeId, String, u16);

/// Claim `server`'s allocations and release the ones it no longer lists, all or nothing.
pub(super) fn claim(s: &mut State, server: &Server) -> Result<()> {
    let wanted: Vec<PoolKey> = server.allocations.iter().map(|a| (server.node_id, a.ip.clone(), a.port)).collect();
    if wanted.iter().any(|k| s.pool.get(k).and_then(|a| a.server_id).is_some_and(|holder| holder != server.id)) {
        return Err(Error::conflict("an allocation is already used on this node"));
    }
    release(s, server.id, |key| !wanted.contains(key));
    for key in wanted {
        let number = if s.pool.contains_key(&key) { 0 } else { next(&mut s.serials.allocations) };
        let (node_id, ip, port) = key.clone();
        let entry = s.pool.entry(key).or_insert(NodeAllocation {
            number,
            node_id,
            ip,
            port,
            alias: None,
            notes: None,
            server_id: None,
        });
        entry.server_id = Some(server.id);
    }
    Ok(())
}

/// Give back the server's allocations that `which` selects.
pub(super) fn release(s: &mut State, server: ServerId, which: impl Fn(&PoolKey) -> bool) {
    for (key, a) in s.pool.iter_mut() {
        if a.server_id == Some(server) && which(key) {
            a.server_id = None;
        }
    }
}

#[async_trait]
impl AllocationStore for MemoryStore {
    async fn add_allocations(&self, node: NodeId, entries: &[PoolEntry]) -> Result<u64> {
        let mut s = self.lock();
        if !s.nodes.contains_key(&node) {
            return Err(Error::not_found("node"));
        }
        let mut added = 0;
        for e in entries {
            let key = (node, e.ip.clone(), e.port);
            if s.pool.contains_key(&key) {
                continue;
            }
            let number = next(&mut s.serials.allocations);
            let row = NodeAllocation {
                number,
                node_id: node,
                ip: e.ip.clone(),
                port: e.port,
                alias: e.alias.clone(),
                notes: e.notes.clone(),
                server_id: None,
            };
            s.pool.insert(key, row);
            added += 1;
        }
        Ok(added)
    }

    async fn list_allocations(&self, filter: AllocationFilter, page: Page) -> Result<Paged<NodeAllocation>> {
        let s = self.lock();
        let mut rows: Vec<NodeAllocation> = s
            .pool
            .values()
            .filter(|a| filter.node_id.is_none_or(|n| a.node_id == n))
            .filter(|a| filter.server_id.is_none_or(|srv| a.server_id == Some(srv)))
            .cloned()
            .collect();
        rows.sort_by_key(|a| a.number);
        Ok(page_of(rows, page))
    }

    async fn get_allocation(&self, number: u64) -> Result<NodeAllocation> {
        let s = self.lock();
        s.pool.values().find(|a| a.number == number).cloned().ok_or_else(|| Error::not_found("allocation"))
    }

    async fn update_allocation(&self, allocation: &NodeAllocation) -> Result<NodeAllocation> {
        let mut s = self.lock();
        let stored = s
            .pool
            .values_mut()
            .find(|a| a.number == allocation.number)
            .ok_or_else(|| Error::not_found("allocation"))?;
        stored.alias = allocation.alias.clone();
        stored.notes = allocation.notes.clone();
        Ok(stored.clone())
    }

    async fn delete_allocation(&self, number: u64) -> Result<()> {
        let mut s = self.lock();
        let (key, held) = s
            .pool
            .iter()
            .find(|(_, a)| a.number == number)
            .map(|(k, a)| (k.clone(), a.server_id.is_some()))
            .ok_or_else(|| Error::not_found("allocation"))?;
        if held {
            return Err(Error::conflict("a server holds this allocation"));
        }
        s.pool.remove(&key);
        Ok(())
    }

    async fn held_by(&self, servers: &[ServerId]) -> Result<Vec<NodeAllocation>> {
        let s = self.lock();
        let mut rows: Vec<NodeAllocation> =
            s.pool.values().filter(|a| a.server_id.is_some_and(|x| servers.contains(&x))).cloned().collect();
        rows.sort_by_key(|a| a.number);
        Ok(rows)
    }

    async fn free_allocation(&self, node: NodeId, want: &FreeAllocation) -> Result<Option<NodeAllocation>> {
        let s = self.lock();
        let on_node = || s.pool.values().filter(|a| a.node_id == node);
        let used_ip = |ip: &str| on_node().any(|a| a.ip == ip && a.server_id.is_some());
        let fits: Vec<&NodeAllocation> = on_node()
            .filter(|a| a.server_id.is_none() && want.port_fits(a.port))
            .filter(|a| !want.dedicated_ip || !used_ip(&a.ip))
            .collect();
        if fits.is_empty() {
            return Ok(None);
        }
        // A v4 UUID is 122 random bits; the core has no other randomness source.
        let pick = (uuid::Uuid::new_v4().as_u128() % fits.len() as u128) as usize;
        Ok(Some(fits[pick].clone()))
    }
}
