//! The SFTP backup target (russh client + russh-sftp, feature `sftp`): an archive is written
//! to `<name>.part` and renamed once complete, so an interrupted upload never replaces or shows
//! up as a stored backup.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use catalyst_core::ports::BackupTarget;
use catalyst_core::{Error, ErrorKind, Result};
use futures::stream::{BoxStream, StreamExt};
use russh_sftp::client::SftpSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An SFTP server, the account to use, and the directory the keys are below.
#[derive(Clone)]
pub(crate) struct SftpTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: String,
    pub(crate) password: String,
    /// `SHA256:…` of the host key; empty accepts any.
    pub(crate) fingerprint: String,
    /// Keys are below this directory (empty: relative to the login directory).
    pub(crate) root: String,
}

impl std::fmt::Debug for SftpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpTarget").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

struct Client {
    fingerprint: String,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        if self.fingerprint.is_empty() {
            return Ok(true);
        }
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(russh::keys::HashAlg::Sha256).to_string() == self.fingerprint
            }
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("SFTP backup storage: {what}: {e}"))
}

fn sftp_err(what: &str, e: russh_sftp::client::error::Error) -> Error {
    if let russh_sftp::client::error::Error::Status(s) = &e
        && s.status_code == russh_sftp::protocol::StatusCode::NoSuchFile
    {
        return Error::not_found("stored backup");
    }
    unavailable(what, e)
}

/// Bytes read per request when downloading.
const READ_CHUNK: usize = 256 * 1024;

impl SftpTarget {
    async fn session(&self) -> Result<SftpSession> {
        let config = Arc::new(russh::client::Config::default());
        let handler = Client { fingerprint: self.fingerprint.clone() };
        let mut ssh = russh::client::connect(config, (self.host.as_str(), self.port), handler)
            .await
            .map_err(|e| unavailable("connect", e))?;
        let auth =
            ssh.authenticate_password(&self.username, &self.password).await.map_err(|e| unavailable("login", e))?;
        if !auth.success() {
            return Err(unavailable("login", "the password was refused"));
        }
        let channel = ssh.channel_open_session().await.map_err(|e| unavailable("session", e))?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| unavailable("subsystem", e))?;
        SftpSession::new(channel.into_stream()).await.map_err(|e| sftp_err("start", e))
    }

    /// Create each missing directory of `path`'s parent.
    async fn parents(sftp: &SftpSession, path: &str) -> Result<()> {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if part.is_empty() {
                at.push('/');
                continue;
            }
            if !at.is_empty() && !at.ends_with('/') {
                at.push('/');
            }
            at.push_str(part);
            if !sftp.try_exists(at.as_str()).await.map_err(|e| sftp_err("stat", e))? {
                sftp.create_dir(at.as_str()).await.map_err(|e| sftp_err("mkdir", e))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackupTarget for SftpTarget {
    async fn put(&self, key: &str, mut chunks: BoxStream<'_, Result<Bytes>>) -> Result<()> {
        let key = &super::under(&self.root, key);
        let sftp = self.session().await?;
        Self::parents(&sftp, key).await?;
        let part = format!("{key}.part");
        let mut file = sftp.create(part.as_str()).await.map_err(|e| sftp_err("create", e))?;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    drop(file);
                    let _ = sftp.remove_file(part.as_str()).await;
                    return Err(e);
                }
            };
            file.write_all(&chunk).await.map_err(|e| unavailable("write", e))?;
        }
        file.shutdown().await.map_err(|e| unavailable("close", e))?;
        drop(file);
        if sftp.try_exists(key).await.map_err(|e| sftp_err("stat", e))? {
            sftp.remove_file(key).await.map_err(|e| sftp_err("replace", e))?;
        }
        sftp.rename(part.as_str(), key).await.map_err(|e| sftp_err("rename", e))?;
        let _ = sftp.close().await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let sftp = self.session().await?;
        let file = sftp.open(super::under(&self.root, key)).await.map_err(|e| sftp_err("open", e))?;
        // The session lives as long as the stream.
        let stream = futures::stream::unfold(Some((sftp, file)), |state| async move {
            let (sftp, mut file) = state?;
            let mut buf = vec![0u8; READ_CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some((sftp, file))))
                }
                Err(e) => Some((Err(unavailable("read", e)), None)),
            }
        });
        Ok(stream.boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let sftp = self.session().await?;
        sftp.remove_file(super::under(&self.root, key)).await.map_err(|e| sftp_err("delete", e))
    }
}
