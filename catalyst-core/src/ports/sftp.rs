//! Who may use a server's files over SFTP. The node's SFTP server asks an [`SftpAuthority`] at
//! login and again every few seconds; the control plane answers in-process, or over its REST
//! API for a remote agent.

use async_trait::async_trait;

use crate::Result;
use crate::id::{ServerId, UserId};

/// What a credential may do with one server's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FileAccess {
    /// The user behind the credential.
    pub user_id: Option<UserId>,
    /// `file.read`.
    pub read: bool,
    /// `file.write`.
    pub write: bool,
    /// `file.delete`.
    pub delete: bool,
}

/// Checks SFTP logins: a credential (JWT or API key) for a server.
#[async_trait]
pub trait SftpAuthority: Send + Sync + std::fmt::Debug + 'static {
    /// What the credential may do with the server's files; an error when it may do nothing
    /// (unknown, expired, revoked, suspended server).
    async fn file_access(&self, server: ServerId, credential: &str) -> Result<FileAccess>;
}
