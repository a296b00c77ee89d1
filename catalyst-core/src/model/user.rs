use std::fmt;

use crate::id::{LocationId, NodeId, RoleId, SessionId, UserId};
use crate::model::Timestamp;

/// A person who logs in. The password hash never leaves the store in serialized form.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Unique id (UUID), assigned by Catalyst when the account is created.
    pub id: UserId,
    /// Stable integer id, assigned by the store on insert (the Pterodactyl API's `id`).
    #[serde(default)]
    pub number: u64,
    /// The billing system's id for this customer: unique, matched exactly.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Given name (billing panels send it).
    #[serde(default)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    pub last_name: String,
    /// Unique, lower-cased.
    pub email: String,
    /// Unique display name.
    pub username: String,
    /// argon2id PHC string.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    /// Roles whose permissions the user holds everywhere.
    pub roles: Vec<RoleId>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("number", &self.number)
            .field("external_id", &self.external_id)
            .field("email", &self.email)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("roles", &self.roles)
            .field("version", &self.version)
            .finish()
    }
}

/// A named set of permission patterns (`server.read`, `server.*`, `*`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Role {
    /// Unique id (UUID), assigned by Catalyst when the role is created.
    pub id: RoleId,
    /// Unique name.
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// Permission patterns.
    pub permissions: Vec<String>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

/// A refresh-token family: revoking it ends the login everywhere.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// Identity (also the JWT `sid` claim).
    pub id: SessionId,
    /// The user who logged in.
    pub user_id: UserId,
    /// SHA-256 of the current refresh token; the token itself is never stored.
    pub refresh_hash: String,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// After this the refresh token is refused.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Set on logout, password change or reuse detection.
    pub revoked: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A group of nodes, usually a data centre.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Location {
    /// Unique id (UUID), assigned by Catalyst when the location is created.
    pub id: LocationId,
    /// Stable integer id, assigned by the store on insert (the Pterodactyl API's `id`).
    #[serde(default)]
    pub number: u64,
    /// Unique short name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

/// A machine that runs the agent.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Node {
    /// Unique id (UUID), assigned by Catalyst when the node is created; the agent presents it
    /// with its token.
    pub id: NodeId,
    /// Stable integer id, assigned by the store on insert (the Pterodactyl API's `id`).
    #[serde(default)]
    pub number: u64,
    /// Unique name.
    pub name: String,
    /// Where it is.
    pub location_id: LocationId,
    /// Public host name or address that players and SFTP clients use.
    pub fqdn: String,
    /// Memory the node may hand out, in MiB.
    pub memory_mb: u64,
    /// Disk the node may hand out, in MiB.
    pub disk_mb: u64,
    /// Allowed over-allocation in percent (0 = none).
    pub overallocate_percent: u32,
    /// SHA-256 of the one-time deployment token, while one is outstanding.
    #[serde(skip_serializing, default)]
    pub deployment_token_hash: Option<String>,
    /// When the outstanding deployment token stops working.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deployment_token_expires_at: Option<Timestamp>,
    /// SHA-256 of the agent's long-lived credential, once enrolled.
    #[serde(skip_serializing, default)]
    pub credential_hash: Option<String>,
    /// Last time the agent was heard from.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("location_id", &self.location_id)
            .field("fqdn", &self.fqdn)
            .field("memory_mb", &self.memory_mb)
            .field("disk_mb", &self.disk_mb)
            .field("enrolled", &self.credential_hash.is_some())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Memory that may be allocated including over-allocation.
    pub fn memory_capacity_mb(&self) -> u64 {
        self.memory_mb + self.memory_mb * u64::from(self.overallocate_percent) / 100
    }

    /// Disk that may be allocated including over-allocation.
    pub fn disk_capacity_mb(&self) -> u64 {
        self.disk_mb + self.disk_mb * u64::from(self.overallocate_percent) / 100
    }
}
