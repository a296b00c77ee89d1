//! Locations, nodes, deployment tokens and node credentials.

use catalyst_core::id::{LocationId, NodeId};
use catalyst_core::model::{Location, Node, Page, Paged};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::{Error, ErrorKind, Result, validate};
use serde_json::json;

use super::auth::{constant_time_eq, random_secret, sha256_hex};
use super::{Catalyst, DeploymentToken, LocationPatch, NewLocation, NewNode, NodeCredential, NodePatch, Who};

const MAX_MB: u64 = 1 << 40;

fn check_fqdn(fqdn: &str) -> Result<String> {
    let f = fqdn.trim().to_ascii_lowercase();
    let ok = !f.is_empty()
        && f.len() <= 253
        && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':')
        && !f.starts_with(['.', '-']);
    if ok { Ok(f) } else { Err(Error::invalid(format!("fqdn {fqdn:?} is not a host name or address"))) }
}

fn check_mb(field: &str, v: u64) -> Result<u64> {
    if v == 0 || v > MAX_MB {
        return Err(Error::invalid(format!("{field} must be between 1 and {MAX_MB}")));
    }
    Ok(v)
}

fn check_overallocate(v: u32) -> Result<u32> {
    if v > 1000 {
        return Err(Error::invalid("overallocate_percent must be at most 1000"));
    }
    Ok(v)
}

impl Catalyst {
    /// The node named `local` in the location `local`, made on first use (as the system) with
    /// `memory_mb` and `disk_mb`: the node an all-in-one server or an embedding application
    /// runs in its own process.
    pub async fn local_node(&self, description: &str, memory_mb: u64, disk_mb: u64) -> Result<Node> {
        const LOCAL: &str = "local";
        let system = Principal::system();
        let nodes = self.list_nodes(&system, Page::new(0, Page::MAX_LIMIT)).await?;
        if let Some(node) = nodes.items.into_iter().find(|n| n.name == LOCAL) {
            return Ok(node);
        }
        let location = match self.list_locations(&system).await?.into_iter().find(|l| l.name == LOCAL) {
            Some(location) => location,
            None => {
                let location = NewLocation { name: LOCAL.into(), description: description.into() };
                self.create_location(&system, location).await?
            }
        };
        let node = NewNode {
            name: LOCAL.into(),
            location_id: location.id,
            fqdn: "localhost".into(),
            memory_mb,
            disk_mb,
            overallocate_percent: 0,
        };
        self.create_node(&system, node).await
    }

    /// Create a location (`node.create`).
    pub async fn create_location(&self, who: &Principal, input: NewLocation) -> Result<Location> {
        let grant = authorize(who, Permission::NodeCreate, Scope::Global)?;
        let location = Location {
            id: LocationId::new(),
            number: 0,
            name: validate::name("name", &input.name, 64)?,
            description: validate::text("description", &input.description, 1024)?,
            created_at: self.now(),
            version: 0,
        };
        let location = self.inner.store.create_location(&location).await?;
        self.audit(
            Who::Grant(&grant, who),
            "location.create",
            ("location", Some(location.id.to_string())),
            true,
            json!({"name": location.name}),
        )
        .await;
        Ok(location)
    }

    /// Every location (`node.read`).
    pub async fn list_locations(&self, who: &Principal) -> Result<Vec<Location>> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.list_locations().await
    }

    /// One location (`node.read`).
    pub async fn get_location(&self, who: &Principal, id: LocationId) -> Result<Location> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.get_location(id).await
    }

    /// Change a location (`node.update`).
    pub async fn update_location(&self, who: &Principal, id: LocationId, patch: LocationPatch) -> Result<Location> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let mut l = self.inner.store.get_location(id).await?;
        if let Some(name) = &patch.name {
            l.name = validate::name("name", name, 64)?;
        }
        if let Some(d) = &patch.description {
            l.description = validate::text("description", d, 1024)?;
        }
        let l = self.inner.store.update_location(&l).await?;
        self.audit(Who::Grant(&grant, who), "location.update", ("location", Some(id.to_string())), true, json!({}))
            .await;
        Ok(l)
    }

    /// Delete a location (`node.delete`); refused while nodes are in it.
    pub async fn delete_location(&self, who: &Principal, id: LocationId) -> Result<()> {
        let grant = authorize(who, Permission::NodeDelete, Scope::Global)?;
        self.inner.store.delete_location(id).await?;
        self.audit(Who::Grant(&grant, who), "location.delete", ("location", Some(id.to_string())), true, json!({}))
            .await;
        Ok(())
    }

    /// Create a node (`node.create`).
    pub async fn create_node(&self, who: &Principal, input: NewNode) -> Result<Node> {
        let grant = authorize(who, Permission::NodeCreate, Scope::Global)?;
        let node = Node {
            id: NodeId::new(),
            number: 0,
            name: validate::name("name", &input.name, 64)?,
            location_id: input.location_id,
            fqdn: check_fqdn(&input.fqdn)?,
            memory_mb: check_mb("memory_mb", input.memory_mb)?,
            disk_mb: check_mb("disk_mb", input.disk_mb)?,
            overallocate_percent: check_overallocate(input.overallocate_percent)?,
            deployment_token_hash: None,
            deployment_token_expires_at: None,
            credential_hash: None,
            last_seen_at: None,
            created_at: self.now(),
            version: 0,
        };
        let node = self.inner.store.create_node(&node).await?;
        self.audit(
            Who::Grant(&grant, who),
            "node.create",
            ("node", Some(node.id.to_string())),
            true,
            json!({"name": node.name}),
        )
        .await;
        Ok(node)
    }

    /// Nodes (`node.read`).
    pub async fn list_nodes(&self, who: &Principal, page: Page) -> Result<Paged<Node>> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.list_nodes(page).await
    }

    /// One node (`node.read`).
    pub async fn get_node(&self, who: &Principal, id: NodeId) -> Result<Node> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.get_node(id).await
    }

    /// Is the node's agent connected?
    pub fn node_online(&self, id: NodeId) -> bool {
        self.inner.link.is_online(id)
    }

    /// Change a node (`node.update`).
    pub async fn update_node(&self, who: &Principal, id: NodeId, patch: NodePatch) -> Result<Node> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let mut n = self.inner.store.get_node(id).await?;
        if let Some(v) = &patch.name {
            n.name = validate::name("name", v, 64)?;
        }
        if let Some(v) = patch.location_id {
            n.location_id = v;
        }
        if let Some(v) = &patch.fqdn {
            n.fqdn = check_fqdn(v)?;
        }
        if let Some(v) = patch.memory_mb {
            n.memory_mb = check_mb("memory_mb", v)?;
        }
        if let Some(v) = patch.disk_mb {
            n.disk_mb = check_mb("disk_mb", v)?;
        }
        if let Some(v) = patch.overallocate_percent {
            n.overallocate_percent = check_overallocate(v)?;
        }
        let n = self.inner.store.update_node(&n).await?;
        self.audit(Who::Grant(&grant, who), "node.update", ("node", Some(id.to_string())), true, json!({})).await;
        Ok(n)
    }

    /// Delete a node (`node.delete`); refused while servers are on it.
    pub async fn delete_node(&self, who: &Principal, id: NodeId) -> Result<()> {
        let grant = authorize(who, Permission::NodeDelete, Scope::Global)?;
        self.inner.store.delete_node(id).await?;
        self.audit(Who::Grant(&grant, who), "node.delete", ("node", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// Issue a one-time deployment token (`node.update`). Only its hash is stored; a new token
    /// replaces any outstanding one.
    pub async fn create_deployment_token(&self, who: &Principal, id: NodeId) -> Result<DeploymentToken> {
        let grant = authorize(who, Permission::NodeUpdate, Scope::Global)?;
        let mut node = self.inner.store.get_node(id).await?;
        let token = random_secret();
        let expires_at = self.now()
            + chrono::Duration::from_std(self.inner.auth.deployment_ttl).unwrap_or(chrono::Duration::hours(1));
        node.deployment_token_hash = Some(sha256_hex(&token));
        node.deployment_token_expires_at = Some(expires_at);
        self.inner.store.update_node(&node).await?;
        self.audit(Who::Grant(&grant, who), "node.deployment_token", ("node", Some(id.to_string())), true, json!({}))
            .await;
        Ok(DeploymentToken { node_id: id, token, expires_at })
    }

    /// Exchange a deployment token for the node's long-lived credential. The token works once.
    pub async fn enroll_node(&self, id: NodeId, deployment_token: &str) -> Result<NodeCredential> {
        let refused = || Error::unauthenticated("the deployment token is invalid or expired");
        // Only an answer about the token is a refusal; a store that cannot answer now is
        // `unavailable`, so the agent tries again instead of giving up on a good token.
        let mut node = self.inner.store.get_node(id).await.map_err(|e| if_not_found(e, refused))?;
        let valid =
            node.deployment_token_hash.as_deref().is_some_and(|h| constant_time_eq(h, &sha256_hex(deployment_token)))
                && node.deployment_token_expires_at.is_some_and(|t| t > self.now());
        if !valid {
            self.audit(Who::Anonymous(None), "node.enroll", ("node", Some(id.to_string())), false, json!({})).await;
            return Err(refused());
        }
        let credential = random_secret();
        node.deployment_token_hash = None;
        node.deployment_token_expires_at = None;
        node.credential_hash = Some(sha256_hex(&credential));
        // Compare-and-swap: two agents racing with one token cannot both enroll (the loser's
        // conflict is a refusal: the token is spent).
        self.inner.store.update_node(&node).await.map_err(|e| match e.kind() {
            ErrorKind::Conflict | ErrorKind::NotFound => refused(),
            _ => e,
        })?;
        self.audit(Who::Anonymous(None), "node.enroll", ("node", Some(id.to_string())), true, json!({})).await;
        Ok(NodeCredential { node_id: id, token: credential })
    }

    /// Check an agent's credential.
    pub async fn authenticate_node(&self, id: NodeId, credential: &str) -> Result<Node> {
        let refused = || Error::unauthenticated("the node credential is invalid");
        let node = self.inner.store.get_node(id).await.map_err(|e| if_not_found(e, refused))?;
        match &node.credential_hash {
            Some(h) if constant_time_eq(h, &sha256_hex(credential)) => Ok(node),
            _ => Err(refused()),
        }
    }
}

/// A missing node is `refused`; any other failure keeps its own kind (a busy store is not a
/// wrong credential).
fn if_not_found(e: Error, refused: impl FnOnce() -> Error) -> Error {
    if e.kind() == ErrorKind::NotFound { refused() } else { e }
}
