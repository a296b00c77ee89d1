//! One error taxonomy for the whole project, mapped once at each edge (HTTP, Python, JS).

use std::fmt;

/// The kind of an error; each has a stable wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The object does not exist, or the caller may not know that it exists.
    NotFound,
    /// A uniqueness rule or a concurrent write (compare-and-swap) refused the change.
    Conflict,
    /// The lifecycle table refuses this event in this state.
    InvalidTransition,
    /// The caller is known but lacks the permission.
    PermissionDenied,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The input failed validation.
    InvalidInput,
    /// A dependency (a node, the database) cannot be reached right now.
    Unavailable,
    /// The caller exceeded a rate limit.
    RateLimited,
    /// A quota or capacity limit would be exceeded.
    QuotaExceeded,
    /// An operation did not finish in time.
    Timeout,
    /// A bug or an unexpected failure of an adapter.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive mapping tests at the edges.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidTransition,
        ErrorKind::PermissionDenied,
        ErrorKind::Unauthenticated,
        ErrorKind::InvalidInput,
        ErrorKind::Unavailable,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExceeded,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ];

    /// The stable code used on every wire (`{"error":{"code": …}}`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidTransition => "invalid_transition",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A typed error: a kind, a human message, and the adapter error that caused it, if any.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    retry_after: Option<std::time::Duration>,
}

/// Result with Catalyst's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message for humans.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None, retry_after: None }
    }

    /// When a retry may succeed (rate limits); transports pass it on (`Retry-After`).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// When a retry may succeed, if known.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Attach the underlying adapter error.
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable wire code of this error.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The message, without the code prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `not_found` naming the kind of object.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    /// `conflict` with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// `invalid_input` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// `permission_denied` with a message.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    /// `unauthenticated` with a message.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }

    /// `unavailable` with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// `internal` wrapping an adapter error.
    pub fn internal(message: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(ErrorKind::Internal, message).with_source(source)
    }

    /// `internal` for an answer or a state that cannot happen (a bug, or two versions that do
    /// not match), where there is no error to carry.
    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// `timeout`: something did not answer or finish in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// `rate_limited` (add [`Error::with_retry_after`] when the wait is known).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RateLimited, message)
    }

    /// `quota_exceeded`: a limit of the server, user or node is reached.
    pub fn quota_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::QuotaExceeded, message)
    }

    /// `invalid_transition`: the server's state does not allow the action.
    pub fn invalid_transition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidTransition, message)
    }
}

/// Turning an adapter's error into a Catalyst error of a chosen kind while keeping it as the
/// source (rather than flattening it into the message).
pub trait ResultExt<T> {
    /// The error becomes `kind` with `message`, and the original its source.
    fn or_kind(self, kind: ErrorKind, message: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> ResultExt<T> for std::result::Result<T, E> {
    fn or_kind(self, kind: ErrorKind, message: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::new(kind, message).with_source(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.code()));
        }
    }

    #[test]
    fn display_starts_with_code() {
        let e = Error::not_found("server");
        assert_eq!(e.to_string(), "not_found: server not found");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
