//! Where a node keeps backup archives: a local directory, an S3-compatible bucket or an SFTP
//! server (the runtime's adapters), chosen by a [`crate::model::BackupStorage`].

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::Result;
use crate::id::{BackupId, ServerId};

/// Keeps backup archives as opaque byte objects under keys.
///
/// Keys are relative, `/`-separated paths of plain names (no empty, `.` or `..` segments);
/// an adapter puts them below its own root (a directory, a bucket prefix).
///
/// Guarantees:
/// - `put` stores the whole stream under the key, and the object becomes visible only once the
///   stream ended and every byte is stored: until then `get` of the key never sees the new
///   bytes (it finds the previous object, if any, or `not_found`).
/// - An `Err` item in the stream (or a failing write) aborts the put: it returns an error and
///   nothing is stored; a previous object under the key stays as it was.
/// - A completed `put` over an existing key replaces its object.
/// - `get` returns exactly the stored bytes; a missing key is `not_found`.
/// - `delete` removes the object; a missing key is `not_found`.
/// - Streams of any size work (uploads go in parts; nothing holds a whole archive in memory).
/// - A storage that cannot be reached or refuses the account is `unavailable`.
#[async_trait]
pub trait BackupTarget: Send + Sync + std::fmt::Debug {
    /// Store `chunks` under `key` (see the guarantees).
    async fn put(&self, key: &str, chunks: BoxStream<'_, Result<Bytes>>) -> Result<()>;
    /// The stored bytes, as a stream.
    async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>>;
    /// Delete; a missing object is `not_found`.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// The key of a backup's archive: `<server>/<backup>.tar.zst`.
pub fn backup_key(server: ServerId, backup: BackupId) -> String {
    format!("{server}/{backup}.tar.zst")
}
