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
    objects: Arc<dyn ObjectStore>,
    prefix: String,
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
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(storage_err)?;
                Ok(Self { objects: Arc::new(local), prefix: String::new() })
            }
            BackupStorage::S3 { endpoint, bucket, region, prefix, access_key_id, secret_access_key } => {
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
                Ok(Self { objects: Arc::new(s3), prefix: prefix.trim_matches('/').to_string() })
            }
            BackupStorage::Sftp { .. } => Err(Error::invalid("SFTP storage is opened by the SFTP client")),
        }
    }

    /// The key of a backup: `<prefix>/<server>/<backup>.tar.zst`.
    pub fn key(&self, server: ServerId, backup: BackupId) -> ObjectPath {
        let name = format!("{server}/{backup}.tar.zst");
        if self.prefix.is_empty() { ObjectPath::from(name) } else { ObjectPath::from(format!("{}/{name}", self.prefix)) }
    }

    /// Store `chunks` under `key`; an `Err` in the stream aborts the upload and nothing is
    /// stored.
    pub async fn put(&self, key: &ObjectPath, mut chunks: BoxStream<'_, Result<Bytes>>) -> Result<()> {
        let upload = self.objects.put_multipart(key).await.map_err(storage_err)?;
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

    /// The stored bytes.
    pub async fn get(&self, key: &ObjectPath) -> Result<BoxStream<'static, Result<Bytes>>> {
        let got = self.objects.get(key).await.map_err(storage_err)?;
        Ok(got.into_stream().map(|r| r.map_err(storage_err)).boxed())
    }

    /// Delete; a missing object is `not_found`.
    pub async fn delete(&self, key: &ObjectPath) -> Result<()> {
        self.objects.head(key).await.map_err(storage_err)?;
        self.objects.delete(key).await.map_err(storage_err)
    }
}
