//! Records by integer number or external id (what Pterodactyl-style clients address them by),
//! authorized exactly like the by-UUID reads.

use catalyst_core::model::{Location, Node, NodeAllocation, Server, Template, User};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::ports::Lookup;
use catalyst_core::{Error, Result};

use super::Catalyst;

impl Catalyst {
    /// A user by number or external id (`admin.users`).
    pub async fn find_user(&self, who: &Principal, key: Lookup<'_>) -> Result<User> {
        authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.find_user(key).await?.ok_or_else(|| Error::not_found("user"))
    }

    /// A user by e-mail, matched exactly after lower-casing (`admin.users`).
    pub async fn find_user_by_email(&self, who: &Principal, email: &str) -> Result<Option<User>> {
        authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.find_user_by_email(&email.trim().to_lowercase()).await
    }

    /// A user by username, matched exactly (`admin.users`).
    pub async fn find_user_by_username(&self, who: &Principal, username: &str) -> Result<Option<User>> {
        authorize(who, Permission::AdminUsers, Scope::Global)?;
        self.inner.store.find_user_by_username(username.trim()).await
    }

    /// A server by number or external id, as [`Catalyst::get_server`] shows it (`server.read`;
    /// one the caller cannot see is `not_found`).
    pub async fn find_server(&self, who: &Principal, key: Lookup<'_>) -> Result<Server> {
        let server = self.inner.store.find_server(key).await?.ok_or_else(|| Error::not_found("server"))?;
        self.get_server(who, server.id).await
    }

    /// A location by number (`node.read`).
    pub async fn find_location(&self, who: &Principal, number: u64) -> Result<Location> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.find_location(number).await?.ok_or_else(|| Error::not_found("location"))
    }

    /// A node by number (`node.read`).
    pub async fn find_node(&self, who: &Principal, number: u64) -> Result<Node> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.find_node(number).await?.ok_or_else(|| Error::not_found("node"))
    }

    /// A template by number (`template.read`).
    pub async fn find_template(&self, who: &Principal, number: u64) -> Result<Template> {
        authorize(who, Permission::TemplateRead, Scope::Global)?;
        self.inner.store.find_template(number).await?.ok_or_else(|| Error::not_found("template"))
    }

    /// A pool allocation by number (`node.read`).
    pub async fn find_allocation(&self, who: &Principal, number: u64) -> Result<NodeAllocation> {
        authorize(who, Permission::NodeRead, Scope::Global)?;
        self.inner.store.get_allocation(number).await
    }

    /// A page of the servers the caller may see ([`Catalyst::list_servers`]) and the pool
    /// allocations they hold, read at once.
    pub async fn list_servers_held(
        &self,
        who: &Principal,
        page: catalyst_core::model::Page,
    ) -> Result<(catalyst_core::model::Paged<Server>, Vec<NodeAllocation>)> {
        let page = self.list_servers(who, page).await?;
        let ids: Vec<_> = page.items.iter().map(|s| s.id).collect();
        let held = self.inner.store.held_by(&ids).await?;
        Ok((page, held))
    }

    /// The pool allocations these servers hold, in one read (`server.read` on each).
    pub async fn allocations_held(
        &self,
        who: &Principal,
        servers: &[catalyst_core::id::ServerId],
    ) -> Result<Vec<NodeAllocation>> {
        for id in servers {
            self.check_server_permission(who, *id, Permission::ServerRead).await?;
        }
        self.inner.store.held_by(servers).await
    }
}
