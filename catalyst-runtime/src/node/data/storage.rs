//! Backup storage as a node sees it: put a stream of bytes under a key (visible only once
//! complete), get it back as a stream, delete it. A local directory and S3-compatible buckets
//! go through `object_store` (multipart uploads; the local store writes a temporary file and
//! renames it), so an interrupted backup never replaces or damages a stored one.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use catalyst_core::id::{BackupId, ServerId};
use catalyst_core::model::BackupStorage;
use catalyst_core::{Error, ErrorKind, Result};
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// Bytes per uploaded part (S3 wants at least 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Where a node puts backups.
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    target: Target,
    prefix: String,
}

#[derive(Debug, Clone)]
enum Target {
    Objects(Arc<dyn ObjectStore>),
    Sftp(super::sftp_storage::SftpTarget),
}

fn storage_err(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::not_found("stored backup"),
        other => Error::new(ErrorKind::Unavailable, format!("backup storage: {other}")),
    }
}

impl ArchiveStore {
    /// Open the storage a request names; a local directory is relative to `data_dir` (empty:
    /// `<data_dir>/backups`).
    pub fn open(storage: &BackupStorage, data_dir: &Path) -> Result<Self> {
        match storage {
            BackupStorage::Local { directory } => {
                let dir = if directory.is_empty() { data_dir.join("backups") } else { data_dir.join(directory) };
                std::fs::create_dir_all(&dir).map_err(|e| Error::internal("cannot create the backup directory", e))?;
                // Every server's archives: the node's alone, never a server uid's.
                let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
                std::fs::set_permissions(&dir, private)
                    .map_err(|e| Error::internal("cannot make the backup directory private", e))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(storage_err)?;
                Ok(Self { target: Target::Objects(Arc::new(local)), prefix: String::new() })
            }
            BackupStorage::S3 { endpoint, bucket, region, prefix, access_key_id, secret_access_key } => {
                crate::install_tls_provider();
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key);
                if !endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let s3 = builder.build().map_err(|e| Error::invalid(format!("S3 storage: {e}")))?;
                Ok(Self { target: Target::Objects(Arc::new(s3)), prefix: prefix.trim_matches('/').to_string() })
            }
            BackupStorage::Sftp { host, port, username, password, directory, host_key_fingerprint } => {
                let target = super::sftp_storage::SftpTarget {
                    host: host.clone(),
                    port: *port,
                    username: username.clone(),
                    password: password.clone(),
                    fingerprint: host_key_fingerprint.clone(),
                };
                Ok(Self { target: Target::Sftp(target), prefix: directory.trim_end_matches('/').to_string() })
            }
        }
    }

    /// The key of a backup: `<prefix>/<server>/<backup>.tar.zst`.
    pub fn key(&self, server: ServerId, backup: BackupId) -> String {
        let name = format!("{server}/{backup}.tar.zst");
        if self.prefix.is_empty() { name } else { format!("{}/{name}", self.prefix) }
    }

    /// Store `chunks` under `key`; an `Err` in the stream aborts the upload and nothing is
    /// stored.
    pub async fn put(&self, key: &str, chunks: BoxStream<'_, Result<Bytes>>) -> Result<()> {
        match &self.target {
            Target::Objects(objects) => put_object(objects.as_ref(), &ObjectPath::from(key), chunks).await,
            Target::Sftp(sftp) => sftp.put(key, chunks).await,
        }
    }

    /// The stored bytes.
    pub async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        match &self.target {
            Target::Objects(objects) => {
                let got = objects.get(&ObjectPath::from(key)).await.map_err(storage_err)?;
                Ok(got.into_stream().map(|r| r.map_err(storage_err)).boxed())
            }
            Target::Sftp(sftp) => sftp.get(key).await,
        }
    }

    /// Delete; a missing object is `not_found`.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match &self.target {
            Target::Objects(objects) => {
                let key = ObjectPath::from(key);
                objects.head(&key).await.map_err(storage_err)?;
                objects.delete(&key).await.map_err(storage_err)
            }
            Target::Sftp(sftp) => sftp.delete(key).await,
        }
    }
}

async fn put_object(
    objects: &dyn ObjectStore,
    key: &ObjectPath,
    mut chunks: BoxStream<'_, Result<Bytes>>,
) -> Result<()> {
    let upload = objects.put_multipart(key).await.map_err(storage_err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => {
                if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = writer.abort().await;
                    return Err(storage_err(e));
                }
                writer.write(&bytes);
            }
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
    }
    writer.finish().await.map(|_| ()).map_err(storage_err)
}
