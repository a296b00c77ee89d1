//! Backup targets over `object_store`: a local directory and (feature `s3`) S3-compatible
//! buckets. Uploads are multipart; the local store writes a temporary file and renames it, S3
//! shows an object once its upload completes, so an interrupted backup never replaces or
//! damages a stored one.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use catalyst_core::ports::BackupTarget;
use catalyst_core::{Error, ErrorKind, Result};
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// Bytes per uploaded part (S3 wants at least 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Backups in an object store, below `prefix`.
#[derive(Debug, Clone)]
pub(crate) struct ObjectTarget {
    objects: Arc<dyn ObjectStore>,
    prefix: String,
}

/// Where an S3-compatible bucket is and how to log in.
#[cfg(feature = "s3")]
#[derive(Debug)]
pub(crate) struct S3<'a> {
    /// Empty: AWS itself.
    pub(crate) endpoint: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) region: &'a str,
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
}

fn storage_err(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::not_found("stored backup"),
        other => Error::new(ErrorKind::Unavailable, format!("backup storage: {other}")),
    }
}

impl ObjectTarget {
    /// Backups in the directory `dir`, created when missing and made private to the node.
    pub(crate) fn local(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal("cannot create the backup directory", e))?;
        // Every server's archives: the node's alone, never a server uid's.
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
        std::fs::set_permissions(dir, private)
            .map_err(|e| Error::internal("cannot make the backup directory private", e))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(storage_err)?;
        Ok(Self { objects: Arc::new(local), prefix: String::new() })
    }

    /// Backups in an S3-compatible bucket, below `prefix`.
    #[cfg(feature = "s3")]
    pub(crate) fn s3(s3: S3<'_>, prefix: &str) -> Result<Self> {
        crate::install_tls_provider();
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(s3.bucket)
            .with_region(s3.region)
            .with_access_key_id(s3.access_key_id)
            .with_secret_access_key(s3.secret_access_key);
        if !s3.endpoint.is_empty() {
            builder = builder
                .with_endpoint(s3.endpoint)
                .with_allow_http(s3.endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = builder.build().map_err(|e| Error::invalid(format!("S3 storage: {e}")))?;
        Ok(Self { objects: Arc::new(s3), prefix: prefix.trim_matches('/').to_string() })
    }

    fn path(&self, key: &str) -> ObjectPath {
        ObjectPath::from(super::under(&self.prefix, key))
    }
}

#[async_trait]
impl BackupTarget for ObjectTarget {
    async fn put(&self, key: &str, mut chunks: BoxStream<'_, Result<Bytes>>) -> Result<()> {
        let upload = self.objects.put_multipart(&self.path(key)).await.map_err(storage_err)?;
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

    async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let got = self.objects.get(&self.path(key)).await.map_err(storage_err)?;
        Ok(got.into_stream().map(|r| r.map_err(storage_err)).boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.path(key);
        self.objects.head(&key).await.map_err(storage_err)?;
        self.objects.delete(&key).await.map_err(storage_err)
    }
}
