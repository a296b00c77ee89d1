//! Backups of a server's directory and where they are kept.

use crate::id::{BackupId, NodeId, ServerId};
use crate::model::Timestamp;

/// A backup's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// Being written.
    InProgress,
    /// Stored and verified by its checksum.
    Completed,
    /// Failed; nothing usable was stored.
    Failed,
}

/// Which kind of storage holds a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// A directory on the node.
    Local,
    /// An S3-compatible bucket.
    S3,
    /// A directory on an SFTP server.
    Sftp,
}

/// One backup: a tar + zstd archive of the server directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Backup {
    /// Unique id (UUID), assigned when the backup is requested; also names the archive
    /// (`<server id>/<backup id>.tar.zst` in the storage).
    pub id: BackupId,
    /// The server it belongs to.
    pub server_id: ServerId,
    /// The node that made it.
    pub node_id: NodeId,
    /// A name for people.
    pub name: String,
    /// `in_progress` until the node reports, then `completed` or `failed`.
    pub status: BackupStatus,
    /// Where it is kept.
    pub storage: StorageKind,
    /// Size of the stored archive.
    pub size_bytes: u64,
    /// SHA-256 of the stored archive, hex.
    pub checksum: Option<String>,
    /// Locked backups are neither deleted nor rotated out.
    pub locked: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// When the backup was requested (UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Finished (completed or failed).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Compare-and-swap version.
    #[serde(default)]
    pub version: i64,
}

/// Which backups to keep after each new one; locked backups are always kept. Unset limits do
/// not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep at most this many completed backups.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Delete completed backups older than this many days.
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// Delete the oldest completed backups while all together exceed this size.
    #[serde(default)]
    pub max_total_bytes: Option<u64>,
}

/// What backups hold together (failed ones aside).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BackupUsage {
    /// Backups stored or being written.
    pub backups: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Refuse a new backup of a server that already keeps as many as its limits allow, or whose
/// backups already take the bytes it may use (`quota_exceeded`, saying which limit).
pub fn check_backup_room(limits: &crate::model::Limits, existing: &[Backup]) -> crate::Result<()> {
    let kept: Vec<&Backup> = existing.iter().filter(|b| b.status != BackupStatus::Failed).collect();
    if kept.len() >= limits.backups as usize {
        return Err(crate::Error::new(
            crate::ErrorKind::QuotaExceeded,
            format!("this server keeps at most {} backups: delete one first", limits.backups),
        ));
    }
    let bytes: u64 = kept.iter().map(|b| b.size_bytes).sum();
    let allowed_mb = limits.backup_mb.unwrap_or(limits.disk_mb);
    // No disk limit and no backup budget: only the count limits backups.
    if allowed_mb > 0 && bytes >= allowed_mb.saturating_mul(1 << 20) {
        return Err(crate::Error::new(
            crate::ErrorKind::QuotaExceeded,
            format!(
                "this server's backups already take {} MiB of the {allowed_mb} MiB allowed: delete one first",
                bytes >> 20
            ),
        ));
    }
    Ok(())
}

impl RetentionPolicy {
    /// The backups to delete, given a server's backups and the current time: the newest are
    /// kept first; a failed backup is always dropped once a newer one completed.
    pub fn expired<'a>(&self, backups: &'a [Backup], now: Timestamp) -> Vec<&'a Backup> {
        let mut completed: Vec<&Backup> =
            backups.iter().filter(|b| b.status == BackupStatus::Completed && !b.locked).collect();
        completed.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let locked_bytes: u64 = backups.iter().filter(|b| b.locked).map(|b| b.size_bytes).sum();
        let mut total = locked_bytes;
        let mut out = Vec::new();
        for (i, b) in completed.into_iter().enumerate() {
            let too_many = self.keep_last.is_some_and(|n| i >= n as usize);
            let too_old =
                self.max_age_days.is_some_and(|d| now.signed_duration_since(b.created_at).num_days() >= i64::from(d));
            let too_big = self.max_total_bytes.is_some_and(|max| total + b.size_bytes > max) && i > 0;
            if too_many || too_old || too_big {
                out.push(b);
            } else {
                total += b.size_bytes;
            }
        }
        out.extend(backups.iter().filter(|b| {
            b.status == BackupStatus::Failed
                && !b.locked
                && backups.iter().any(|n| n.status == BackupStatus::Completed && n.created_at > b.created_at)
        }));
        out
    }
}

/// Where a node stores backups, with the credentials it needs (never logged).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BackupStorage {
    /// A directory on the node; empty means `<node data>/backups`.
    Local {
        /// Relative to the node's data directory; empty means `backups`.
        #[serde(default)]
        directory: String,
    },
    /// An S3-compatible bucket.
    S3 {
        /// Endpoint URL (empty for AWS).
        #[serde(default)]
        endpoint: String,
        /// Bucket name (must exist; Catalyst does not create it).
        bucket: String,
        /// Region of the bucket (default `us-east-1`).
        #[serde(default = "default_region")]
        region: String,
        /// Key prefix.
        #[serde(default)]
        prefix: String,
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
    },
    /// A directory on an SFTP server.
    Sftp {
        /// Host name or IP address of the SFTP server.
        host: String,
        /// SSH port (default 22).
        #[serde(default = "default_ssh_port")]
        port: u16,
        /// User name to log in as.
        username: String,
        /// Password for `username` (never logged).
        password: String,
        /// Directory on the server.
        #[serde(default)]
        directory: String,
        /// The server's host key fingerprint (`SHA256:…`); empty accepts any key (only on a
        /// trusted network).
        #[serde(default)]
        host_key_fingerprint: String,
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_ssh_port() -> u16 {
    22
}

impl BackupStorage {
    /// The kind, as recorded on each backup.
    pub fn kind(&self) -> StorageKind {
        match self {
            Self::Local { .. } => StorageKind::Local,
            Self::S3 { .. } => StorageKind::S3,
            Self::Sftp { .. } => StorageKind::Sftp,
        }
    }
}

impl std::fmt::Debug for BackupStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { directory } => f.debug_struct("Local").field("directory", directory).finish(),
            Self::S3 { endpoint, bucket, prefix, .. } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("prefix", prefix)
                .finish_non_exhaustive(),
            Self::Sftp { host, port, username, directory, .. } => f
                .debug_struct("Sftp")
                .field("host", host)
                .field("port", port)
                .field("username", username)
                .field("directory", directory)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").expect("time").to_utc()
            + chrono::Duration::days(day)
    }

    fn backup(day: i64, size: u64, status: BackupStatus, locked: bool) -> Backup {
        Backup {
            id: BackupId::new(),
            server_id: ServerId::new(),
            node_id: NodeId::new(),
            name: format!("day {day}"),
            status,
            storage: StorageKind::Local,
            size_bytes: size,
            checksum: None,
            locked,
            error: None,
            created_at: at(day),
            completed_at: Some(at(day)),
            version: 0,
        }
    }

    fn names(expired: Vec<&Backup>) -> Vec<String> {
        let mut n: Vec<String> = expired.into_iter().map(|b| b.name.clone()).collect();
        n.sort();
        n
    }

    #[test]
    fn each_limit_keeps_the_newest_and_never_the_locked() {
        let backups = vec![
            backup(1, 100, BackupStatus::Completed, true),
            backup(2, 100, BackupStatus::Completed, false),
            backup(3, 100, BackupStatus::Failed, false),
            backup(4, 100, BackupStatus::Completed, false),
            backup(5, 100, BackupStatus::Completed, false),
            backup(6, 100, BackupStatus::InProgress, false),
        ];
        let now = at(10);
        assert_eq!(
            names(RetentionPolicy::default().expired(&backups, now)),
            vec!["day 3"],
            "a failed one before a newer success goes"
        );
        let keep_two = RetentionPolicy { keep_last: Some(2), ..Default::default() };
        assert_eq!(names(keep_two.expired(&backups, now)), vec!["day 2", "day 3"]);
        let week = RetentionPolicy { max_age_days: Some(7), ..Default::default() };
        assert_eq!(
            names(week.expired(&backups, now)),
            vec!["day 2", "day 3"],
            "older than 7 days, the locked one kept"
        );
        // The locked 100 bytes count; the newest always stays.
        let small = RetentionPolicy { max_total_bytes: Some(250), ..Default::default() };
        assert_eq!(names(small.expired(&backups, now)), vec!["day 2", "day 3", "day 4"]);
        let tiny = RetentionPolicy { max_total_bytes: Some(1), ..Default::default() };
        assert_eq!(
            names(tiny.expired(&backups, now)),
            vec!["day 2", "day 3", "day 4"],
            "the newest is kept even over the limit"
        );
    }
}
