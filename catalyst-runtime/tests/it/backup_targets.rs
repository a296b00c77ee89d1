//! The `BackupTarget` conformance suite on each adapter `open_target` builds: a local
//! directory, a real S3-compatible server (moto) and a real SFTP server (OpenSSH).

use catalyst_core::model::BackupStorage;
use catalyst_core::testing::conformance;
use catalyst_runtime::node::open_target;

use crate::backups::moto;
use crate::sshd::{SFTP_PASSWORD, SFTP_USER, sshd};

#[tokio::test]
async fn a_local_directory_conforms() -> catalyst_core::Result<()> {
    let data = tempfile::tempdir().expect("tempdir");
    let target = open_target(&BackupStorage::Local { directory: "kept".into() }, data.path())?;
    conformance::backup_target(target.as_ref(), "conformance").await?;
    assert!(data.path().join("kept").is_dir(), "the directory is below the data directory");
    Ok(())
}

#[tokio::test]
async fn s3_conforms() -> catalyst_core::Result<()> {
    let Some(moto) = moto().await else { return Ok(()) };
    let storage = BackupStorage::S3 {
        endpoint: moto.endpoint.clone(),
        bucket: "catalyst".into(),
        region: "us-east-1".into(),
        prefix: "/backups/".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    };
    let target = open_target(&storage, std::path::Path::new("/nonexistent"))?;
    conformance::backup_target(target.as_ref(), "conformance").await
}

#[tokio::test]
async fn sftp_conforms() -> catalyst_core::Result<()> {
    let Some(sshd) = sshd() else { return Ok(()) };
    let directory = format!("/home/{SFTP_USER}/catalyst-{}", uuid::Uuid::new_v4().simple());
    let storage = BackupStorage::Sftp {
        host: "127.0.0.1".into(),
        port: sshd.port,
        username: SFTP_USER.into(),
        password: SFTP_PASSWORD.into(),
        directory: format!("{directory}/"),
        host_key_fingerprint: sshd.fingerprint.clone(),
    };
    let target = open_target(&storage, std::path::Path::new("/nonexistent"))?;
    let outcome = conformance::backup_target(target.as_ref(), "conformance").await;
    let left: Vec<_> = walk(std::path::Path::new(&directory));
    let _ = std::fs::remove_dir_all(&directory);
    outcome?;
    assert!(left.iter().all(|p| !p.ends_with(".part")), "no .part file is left: {left:?}");
    Ok(())
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
