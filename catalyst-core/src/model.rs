//! Domain models. Plain data with serde; rules live in [`crate::lifecycle`],
//! [`crate::permission`], [`crate::render`] and [`crate::validate`].

mod backup;
mod files;
mod new_template;
mod ops;
mod pool;
mod server;
mod template;
mod user;

pub use backup::*;
pub use files::*;
pub use new_template::*;
pub use ops::*;
pub use pool::*;
pub use server::*;
pub use template::*;
pub use user::*;

/// A page request: `offset` rows skipped, at most `limit` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Rows to skip.
    #[serde(default)]
    pub offset: u64,
    /// Rows to return, at most [`Page::MAX_LIMIT`].
    #[serde(default = "Page::default_limit")]
    pub limit: u32,
}

impl Page {
    /// The largest page a store will return.
    pub const MAX_LIMIT: u32 = 500;

    fn default_limit() -> u32 {
        50
    }

    /// A page of `limit` rows after `offset`.
    pub fn new(offset: u64, limit: u32) -> Self {
        Self { offset, limit }
    }

    /// The limit clamped to `1..=MAX_LIMIT`.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self { offset: 0, limit: Self::default_limit() }
    }
}

/// One page of results plus the total count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows match in all.
    pub total: u64,
}

/// Wall-clock instants are UTC everywhere.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Bytes as base64 in JSON (file chunks on the node link).
pub mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    /// Serialize as a base64 string.
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Deserialize from a base64 string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}
