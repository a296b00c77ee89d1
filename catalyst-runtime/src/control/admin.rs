//! Operator views: the audit log, counts, per-node resource totals, every server, and health.

use std::time::Instant;

use catalyst_core::model::{AuditLog, AuditQuery, Node, Page, Paged, Server};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::ports::ServerFilter;
use catalyst_core::{Error, Result};

use super::{AdminHealth, AdminStats, Catalyst, NodeOverview};

/// Nodes read per page when totals span all of them.
const SCAN_PAGE: u32 = 500;

impl Catalyst {
    /// The audit trail, newest first, filtered (`admin.audit-logs`).
    pub async fn audit_logs(&self, who: &Principal, query: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
        authorize(who, Permission::AdminAuditLogs, Scope::Global)?;
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(Error::invalid("from: must not be after to"));
        }
        self.inner.store.query_audit(query, page).await
    }

    /// Counts of everything (`admin.stats`).
    pub async fn admin_stats(&self, who: &Principal) -> Result<AdminStats> {
        authorize(who, Permission::AdminStats, Scope::Global)?;
        let one = Page::new(0, 1);
        let store = &self.inner.store;
        let nodes = self.all_nodes().await?;
        Ok(AdminStats {
            users: store.count_users().await?,
            servers: store.list_servers(&ServerFilter::default(), one).await?.total,
            nodes: nodes.len() as u64,
            nodes_online: nodes.iter().filter(|n| self.node_online(n.id)).count() as u64,
            locations: store.list_locations().await?.len() as u64,
            templates: store.list_templates(one).await?.total,
            backups: store.backup_usage().await?,
        })
    }

    /// Every node with what it has handed out and whether its agent is connected (`admin.read`).
    pub async fn admin_nodes(&self, who: &Principal) -> Result<Vec<NodeOverview>> {
        authorize(who, Permission::AdminRead, Scope::Global)?;
        let mut out = Vec::new();
        for node in self.all_nodes().await? {
            let usage = self.inner.store.node_usage(node.id).await?;
            out.push(NodeOverview {
                online: self.node_online(node.id),
                servers: usage.servers,
                memory_used_mb: usage.memory_mb,
                memory_capacity_mb: node.memory_capacity_mb(),
                disk_used_mb: usage.disk_mb,
                disk_capacity_mb: node.disk_capacity_mb(),
                node,
            });
        }
        Ok(out)
    }

    /// Every server on every node (`admin.read`).
    pub async fn admin_servers(&self, who: &Principal, page: Page) -> Result<Paged<Server>> {
        authorize(who, Permission::AdminRead, Scope::Global)?;
        self.inner.store.list_servers(&ServerFilter::default(), page).await
    }

    /// The database's round trip and the nodes' connections (`admin.read`).
    pub async fn admin_health(&self, who: &Principal) -> Result<AdminHealth> {
        authorize(who, Permission::AdminRead, Scope::Global)?;
        let started = Instant::now();
        let database = self.inner.store.count_users().await.map(|_| ());
        let database_ms = started.elapsed().as_secs_f64() * 1000.0;
        let nodes = self.all_nodes().await.unwrap_or_default();
        let online = nodes.iter().filter(|n| self.node_online(n.id)).count() as u64;
        Ok(AdminHealth {
            status: if database.is_ok() && online == nodes.len() as u64 { "ok" } else { "degraded" }.into(),
            database: database.map_or_else(|e| e.message().to_string(), |()| "ok".into()),
            database_ms,
            nodes_online: online,
            nodes_offline: nodes.len() as u64 - online,
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    pub(super) async fn all_nodes(&self) -> Result<Vec<Node>> {
        let mut all = Vec::new();
        loop {
            let page = self.inner.store.list_nodes(Page::new(all.len() as u64, SCAN_PAGE)).await?;
            let done = page.items.len() < SCAN_PAGE as usize;
            all.extend(page.items);
            if done || all.len() as u64 >= page.total {
                return Ok(all);
            }
        }
    }

    /// Every server on every node, read page by page.
    pub(super) async fn all_servers(&self) -> Result<Vec<Server>> {
        let mut all = Vec::new();
        loop {
            let page =
                self.inner.store.list_servers(&ServerFilter::default(), Page::new(all.len() as u64, SCAN_PAGE)).await?;
            let done = page.items.len() < SCAN_PAGE as usize;
            all.extend(page.items);
            if done || all.len() as u64 >= page.total {
                return Ok(all);
            }
        }
    }
}
