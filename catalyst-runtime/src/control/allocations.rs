//! Nodes' allocation pools, and placement: choosing a node with room and a free allocation
//! for a new server.

use catalyst_core::id::NodeId;
use catalyst_core::model::{Allocation, Deploy, FreeAllocation, NewAllocations, Node, NodeAllocation, Page, Paged};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::ports::AllocationFilter;
use catalyst_core::{Error, Result};
use serde_json::json;

use super::{AllocationPatch, Catalyst, Who};

/// Where placement puts a server: the node and its primary allocation.
pub(super) struct Placement {
    pub node_id: NodeId,
    pub allocation: Allocation,
    /// The pool row chosen, to tell a lost race from another conflict.
    pub number: u64,
}

/// How often a create retries placement when a concurrent create claimed the allocation it chose.
pub(super) const PLACEMENT_ATTEMPTS: usize = 8;

impl Catalyst {
    /// Add ports to a node's pool (`node.update`); returns how many were new.
    pub async fn add_allocations(&self, who: &Principal, node: NodeId, input: NewAllocations) -> Result<u64> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let entries = input.entries()?;
        let added = self.inner.store.add_allocations(node, &entries).await?;
        let detail = json!({"ip": entries[0].ip, "requested": entries.len(), "added": added});
        self.audit(Who::Grant(&grant, who), "allocation.create", ("node", Some(node.to_string())), true, detail).await;
        Ok(added)
    }

    /// A node's pool, free and held, by number (`node.read`).
    pub async fn list_allocations(&self, who: &Principal, node: NodeId, page: Page) -> Result<Paged<NodeAllocation>> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.get_node(node).await?;
        let filter = AllocationFilter { node_id: Some(node), ..Default::default() };
        self.inner.store.list_allocations(filter, page).await
    }

    /// One allocation of a node (`not_found` if it is another node's).
    async fn node_allocation(&self, node: NodeId, number: u64) -> Result<NodeAllocation> {
        let a = self.inner.store.get_allocation(number).await?;
        if a.node_id != node {
            return Err(Error::not_found("allocation"));
        }
        Ok(a)
    }

    /// Change an allocation's alias or notes (`node.update`).
    pub async fn update_allocation(
        &self,
        who: &Principal,
        node: NodeId,
        number: u64,
        patch: AllocationPatch,
    ) -> Result<NodeAllocation> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let mut a = self.node_allocation(node, number).await?;
        if let Some(alias) = patch.alias {
            a.alias = catalyst_core::model::optional_text("alias", Some(&alias), 191)?;
        }
        if let Some(notes) = patch.notes {
            a.notes = catalyst_core::model::optional_text("notes", Some(&notes), 256)?;
        }
        let a = self.inner.store.update_allocation(&a).await?;
        let target = ("allocation", Some(number.to_string()));
        self.audit(Who::Grant(&grant, who), "allocation.update", target, true, json!({"node_id": node})).await;
        Ok(a)
    }

    /// Remove a free allocation from the pool (`node.update`); `conflict` while a server holds it.
    pub async fn delete_allocation(&self, who: &Principal, node: NodeId, number: u64) -> Result<()> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let a = self.node_allocation(node, number).await?;
        self.inner.store.delete_allocation(number).await?;
        let target = ("allocation", Some(number.to_string()));
        let detail = json!({"node_id": node, "ip": a.ip, "port": a.port});
        self.audit(Who::Grant(&grant, who), "allocation.delete", target, true, detail).await;
        Ok(())
    }

    /// Choose a node in `deploy`'s locations with `memory_mb` and `disk_mb` to spare and a free
    /// allocation that fits, trying the emptiest node first. Refuses (`quota_exceeded`: the
    /// fleet is full for this request) with the constraint that ruled every node out.
    pub(super) async fn place(&self, deploy: &Deploy, memory_mb: u64, disk_mb: u64) -> Result<Placement> {
        let want = FreeAllocation { ranges: deploy.ranges()?, dedicated_ip: deploy.dedicated_ip };
        for location in &deploy.locations {
            self.inner.store.get_location(*location).await?;
        }
        let (in_locations, roomy) = self.roomy_nodes(&deploy.locations, memory_mb, disk_mb).await?;
        for (_, node) in &roomy {
            if let Some(a) = self.inner.store.free_allocation(node.id, &want).await? {
                let allocation = Allocation { ip: a.ip, port: a.port, primary: true };
                return Ok(Placement { node_id: node.id, allocation, number: a.number });
            }
        }
        let why = if in_locations == 0 {
            "there are no nodes in the requested locations".to_string()
        } else if roomy.is_empty() {
            format!("none of {in_locations} nodes has {memory_mb} MiB memory and {disk_mb} MiB disk free")
        } else {
            let ports =
                if deploy.port_range.is_empty() { String::new() } else { format!(" in {:?}", deploy.port_range) };
            let ip = if deploy.dedicated_ip { " on a dedicated IP" } else { "" };
            format!("none of {} nodes with room has a free allocation{ports}{ip}", roomy.len())
        };
        Err(Error::quota_exceeded(format!("no node satisfies the request: {why}")))
    }

    /// Nodes in these locations (all of them when empty) with `memory_mb` and `disk_mb` to
    /// spare, emptiest first (`node.read`): where a server of that size could go.
    pub async fn deployable_nodes(
        &self,
        who: &Principal,
        locations: &[catalyst_core::id::LocationId],
        memory_mb: u64,
        disk_mb: u64,
    ) -> Result<Vec<Node>> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        Ok(self.roomy_nodes(locations, memory_mb, disk_mb).await?.1.into_iter().map(|(_, n)| n).collect())
    }

    /// How many nodes are in the locations, and those with room, by free memory, most first.
    async fn roomy_nodes(
        &self,
        locations: &[catalyst_core::id::LocationId],
        memory_mb: u64,
        disk_mb: u64,
    ) -> Result<(usize, Vec<(u64, Node)>)> {
        let mut in_locations = 0;
        let mut roomy: Vec<(u64, Node)> = Vec::new();
        let usage: std::collections::HashMap<_, _> = self.inner.store.usage_by_node().await?.into_iter().collect();
        for node in self.all_nodes().await? {
            if !locations.is_empty() && !locations.contains(&node.location_id) {
                continue;
            }
            in_locations += 1;
            let usage = usage.get(&node.id).copied().unwrap_or_default();
            let free_memory = node.memory_capacity_mb().saturating_sub(usage.memory_mb);
            if free_memory >= memory_mb && node.disk_capacity_mb().saturating_sub(usage.disk_mb) >= disk_mb {
                roomy.push((free_memory, node));
            }
        }
        roomy.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        Ok((in_locations, roomy))
    }
}
