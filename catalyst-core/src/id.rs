//! Typed identifiers: a `ServerId` can never be passed where a `NodeId` is expected.

use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(format!("{s:?} is not a valid {}", stringify!($name))))
            }
        }
    )*};
}

typed_id!(
    /// Identifies a user.
    UserId,
    /// Identifies a role.
    RoleId,
    /// Identifies a location.
    LocationId,
    /// Identifies a node.
    NodeId,
    /// Identifies a template.
    TemplateId,
    /// Identifies a server.
    ServerId,
    /// Identifies a backup.
    BackupId,
    /// Identifies a scheduled task.
    TaskId,
    /// Identifies an alert.
    AlertId,
    /// Identifies an alert rule.
    AlertRuleId,
    /// Identifies a webhook delivery.
    DeliveryId,
    /// Identifies an audit entry.
    AuditId,
    /// Identifies an API key.
    ApiKeyId,
    /// Identifies a login session (a refresh token family).
    SessionId,
);

impl ServerId {
    /// The first four bytes, which Pterodactyl's 8-character `identifier` names a server by.
    pub fn prefix(&self) -> [u8; 4] {
        let b = self.0.as_bytes();
        [b[0], b[1], b[2], b[3]]
    }

    /// Pterodactyl's `identifier`: [`ServerId::prefix`] in hex (the UUID's first 8 digits).
    pub fn identifier(&self) -> String {
        format!("{:08x}", u32::from_be_bytes(self.prefix()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let id = ServerId::new();
        assert_eq!(id.to_string().parse::<ServerId>().ok(), Some(id));
        let err = "nope".parse::<ServerId>().err().map(|e| e.kind());
        assert_eq!(err, Some(crate::ErrorKind::InvalidInput));
        assert_eq!(id.identifier(), id.to_string()[..8], "the identifier is the UUID's first 8 digits");
    }
}
