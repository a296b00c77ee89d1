//! The [`BackupTarget`] adapters: a local directory and S3-compatible buckets through
//! `object_store` ([`local_s3`]), and SFTP servers ([`sftp`]). A [`BackupStorage`] names one;
//! [`open_target`] builds it.

mod local_s3;
#[cfg(feature = "sftp")]
mod sftp;

use std::path::Path;
use std::sync::Arc;

use catalyst_core::Result;
use catalyst_core::model::BackupStorage;
use catalyst_core::ports::BackupTarget;

/// Open the backup target `storage` names. A local directory is relative to `data_dir`
/// (empty: `<data_dir>/backups`) and made private to the node. A kind whose feature is off
/// (`s3`, `sftp`) is `invalid_input`.
pub fn open_target(storage: &BackupStorage, data_dir: &Path) -> Result<Arc<dyn BackupTarget>> {
    match storage {
        BackupStorage::Local { directory } => {
            let dir = if directory.is_empty() { data_dir.join("backups") } else { data_dir.join(directory) };
            Ok(Arc::new(local_s3::ObjectTarget::local(&dir)?))
        }
        #[cfg(feature = "s3")]
        BackupStorage::S3 { endpoint, bucket, region, prefix, access_key_id, secret_access_key } => {
            let s3 = local_s3::S3 { endpoint, bucket, region, access_key_id, secret_access_key };
            Ok(Arc::new(local_s3::ObjectTarget::s3(s3, prefix)?))
        }
        #[cfg(not(feature = "s3"))]
        BackupStorage::S3 { .. } => Err(off("S3", "s3")),
        #[cfg(feature = "sftp")]
        BackupStorage::Sftp { host, port, username, password, directory, host_key_fingerprint } => {
            let target = sftp::SftpTarget {
                host: host.clone(),
                port: *port,
                username: username.clone(),
                password: password.clone(),
                fingerprint: host_key_fingerprint.clone(),
                root: directory.trim_end_matches('/').to_string(),
            };
            Ok(Arc::new(target))
        }
        #[cfg(not(feature = "sftp"))]
        BackupStorage::Sftp { .. } => Err(off("SFTP", "sftp")),
    }
}

/// The error for a storage kind this build left out.
#[cfg(any(not(feature = "s3"), not(feature = "sftp")))]
fn off(kind: &str, feature: &str) -> catalyst_core::Error {
    catalyst_core::Error::invalid(format!(
        "{kind} backup storage is not available: catalyst-runtime was built without its `{feature}` feature"
    ))
}

/// `key` below `root` (an empty root is the top).
fn under(root: &str, key: &str) -> String {
    if root.is_empty() { key.to_string() } else { format!("{root}/{key}") }
}

#[cfg(all(test, not(feature = "s3"), not(feature = "sftp")))]
mod tests {
    use super::*;

    /// A kind this build left out is refused up front, naming the feature to turn on.
    #[test]
    fn a_kind_without_its_feature_is_invalid_input() {
        let s3 = BackupStorage::S3 {
            endpoint: String::new(),
            bucket: "b".into(),
            region: "r".into(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        let sftp = BackupStorage::Sftp {
            host: "h".into(),
            port: 22,
            username: "u".into(),
            password: "p".into(),
            directory: String::new(),
            host_key_fingerprint: String::new(),
        };
        for (storage, feature) in [(s3, "`s3`"), (sftp, "`sftp`")] {
            let e = open_target(&storage, Path::new("/nonexistent")).expect_err("refused");
            assert_eq!(e.kind(), catalyst_core::ErrorKind::InvalidInput);
            assert!(e.message().contains(feature), "{}", e.message());
        }
    }
}
