//! What a server's customer sees beyond the record, as client panels (Pterodactyl's Client
//! API) show it: servers by short identifier, their own servers, the node's address, live
//! usage and the startup variables. Authorized like [`Catalyst::get_server`].

use std::time::Duration;

use catalyst_core::id::ServerId;
use catalyst_core::model::{NodeAllocation, Page, Paged, Server, ServerMetrics, TemplateVariable};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::ports::ServerFilter;
use catalyst_core::{Error, Result};

use super::Catalyst;

/// Where a server's node is reached (its name and address, nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeAddress {
    /// The node's name.
    pub name: String,
    /// Its public host name.
    pub fqdn: String,
}

/// A server's startup settings as its customer sees them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerStartup {
    /// The startup line with `{{VAR}}` placeholders.
    pub startup: String,
    /// The image the server runs.
    pub image: String,
    /// Images it may switch to (display name, image), the template's default first.
    pub images: Vec<(String, String)>,
    /// Variables the caller may see, in the template's order, with their values.
    pub variables: Vec<(TemplateVariable, String)>,
    /// The template's panel features (`eula`, `java_version`, ...).
    pub features: Vec<String>,
}

/// A raw sample older than this is not "current" usage.
const FRESH: Duration = Duration::from_secs(120);

impl Catalyst {
    /// A server by Pterodactyl's identifier: the first 8 hex digits of its UUID, or the whole
    /// UUID. Only servers the caller may see are candidates; two of them sharing the prefix
    /// is a `conflict` that names the way out.
    pub async fn find_server_by_identifier(&self, who: &Principal, identifier: &str) -> Result<Server> {
        if let Ok(id) = identifier.parse::<ServerId>() {
            return self.get_server(who, id).await;
        }
        let prefix = (identifier.len() == 8)
            .then(|| u32::from_str_radix(identifier, 16).ok())
            .flatten()
            .ok_or_else(|| Error::not_found("server"))?;
        let mut filter = ServerFilter { id_prefix: Some(prefix.to_be_bytes()), ..Default::default() };
        if !who.holds(Permission::ServerRead) {
            filter.visible_to = Some(who.user_id().ok_or_else(|| Error::not_found("server"))?);
        }
        let found = self.inner.store.list_servers(&filter, Page::new(0, 2)).await?;
        match found.items.as_slice() {
            [one] => self.get_server(who, one.id).await,
            [] => Err(Error::not_found("server")),
            _ => Err(Error::conflict(format!("identifier {identifier} names more than one server; use its UUID"))),
        }
    }

    /// A page of the servers the caller owns or was given access to (whatever global grants
    /// they hold) and may read, and the pool allocations those servers hold. A share without
    /// `server.read` is left out of the page, and the total drops by the ones this page left
    /// out (not by those on other pages).
    pub async fn list_own_servers(&self, who: &Principal, page: Page) -> Result<(Paged<Server>, Vec<NodeAllocation>)> {
        let user = who.user_id().ok_or_else(|| Error::denied("only a user has servers of their own"))?;
        let filter = ServerFilter { visible_to: Some(user), ..Default::default() };
        let mut page = self.list_servers_where(who, &filter, page).await?;
        let mut readable = Vec::with_capacity(page.items.len());
        for server in std::mem::take(&mut page.items) {
            match self.check_server_permission(who, server.id, Permission::ServerRead).await {
                Ok(()) => readable.push(server),
                Err(_) => page.total = page.total.saturating_sub(1),
            }
        }
        page.items = readable;
        let ids: Vec<_> = page.items.iter().map(|s| s.id).collect();
        let held = self.inner.store.held_by(&ids).await?;
        Ok((page, held))
    }

    /// The name and address of the node a server runs on (`server.read`).
    pub async fn server_node_address(&self, who: &Principal, id: ServerId) -> Result<NodeAddress> {
        let (server, _) = self.server_with(who, id, Permission::ServerRead).await?;
        let node = self.inner.store.get_node(server.node_id).await?;
        Ok(NodeAddress { name: node.name, fqdn: node.fqdn })
    }

    /// The server's latest resource sample, if one arrived in the last two minutes
    /// (`server.read`).
    pub async fn server_usage(&self, who: &Principal, id: ServerId) -> Result<Option<ServerMetrics>> {
        self.check_server_permission(who, id, Permission::ServerRead).await?;
        let now = self.now();
        let since = now - chrono::Duration::from_std(FRESH).unwrap_or_default();
        if let Some(m) = self.inner.latest.get(id).filter(|m| m.at >= since) {
            return Ok(Some(m));
        }
        // Another instance may have received it: the store has every sample.
        Ok(self.inner.store.list_metrics(id, since, now, 10_000).await?.pop())
    }

    /// The server's startup line, image choices and the variables the caller may see
    /// (`server.read`; variables that are not user-viewable need a global grant).
    pub async fn server_startup(&self, who: &Principal, id: ServerId) -> Result<ServerStartup> {
        let (server, grant) = self.server_with(who, id, Permission::ServerRead).await?;
        let template = self.inner.store.get_template(server.template_id).await?;
        let variables = template
            .variables
            .iter()
            .filter(|v| grant.is_global() || v.user_viewable)
            .map(|v| {
                let value = server.variables.get(&v.name).cloned().or_else(|| v.default.clone()).unwrap_or_default();
                (v.clone(), value)
            })
            .collect();
        let mut images = vec![(template.image.clone(), template.image.clone())];
        images.extend(
            template.images.iter().filter(|i| i.image != template.image).map(|i| (i.name.clone(), i.image.clone())),
        );
        Ok(ServerStartup {
            startup: template.startup_for(server.startup_command.as_deref())?.to_string(),
            image: template.image_for(server.image.as_deref())?.to_string(),
            images,
            variables,
            features: template.features.clone(),
        })
    }
}
