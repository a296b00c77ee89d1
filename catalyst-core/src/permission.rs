//! Permissions, roles, per-server grants and the one `authorize` check.
//!
//! Services take a [`Grant`] for the operation they perform; a `Grant` can only be made by
//! [`authorize`], so an unchecked call does not compile.

use std::fmt;

use crate::id::{ServerId, UserId};
use crate::model::ActorRef;
use crate::{Error, Result};

macro_rules! permissions {
    ($($variant:ident = $name:literal, $server:literal;)*) => {
        /// One permission of the API contract.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission { $(#[doc = $name] $variant,)* }

        impl Permission {
            /// Every permission.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The contract's string, e.g. `server.start`.
            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// Can it be granted on one server (to its owner or a subuser)?
            pub fn is_server_scoped(self) -> bool {
                match self { $(Permission::$variant => $server,)* }
            }
        }
    };
}

permissions! {
    ServerCreate = "server.create", false;
    ServerRead = "server.read", true;
    ServerUpdate = "server.update", true;
    ServerDelete = "server.delete", true;
    ServerStart = "server.start", true;
    ServerStop = "server.stop", true;
    ServerRestart = "server.restart", true;
    ServerTransfer = "server.transfer", false;
    ServerSuspend = "server.suspend", false;
    FileRead = "file.read", true;
    FileWrite = "file.write", true;
    FileDelete = "file.delete", true;
    ConsoleRead = "console.read", true;
    ConsoleWrite = "console.write", true;
    BackupCreate = "backup.create", true;
    BackupRead = "backup.read", true;
    BackupRestore = "backup.restore", true;
    BackupDelete = "backup.delete", true;
    NodeCreate = "node.create", false;
    NodeRead = "node.read", false;
    NodeUpdate = "node.update", false;
    NodeDelete = "node.delete", false;
    TemplateCreate = "template.create", false;
    TemplateRead = "template.read", false;
    TemplateUpdate = "template.update", false;
    TemplateDelete = "template.delete", false;
    AlertCreate = "alert.create", false;
    AlertRead = "alert.read", true;
    AlertUpdate = "alert.update", false;
    AlertDelete = "alert.delete", false;
    AlertResolve = "alert.resolve", true;
    TaskCreate = "task.create", true;
    TaskRead = "task.read", true;
    TaskUpdate = "task.update", true;
    TaskDelete = "task.delete", true;
    TaskExecute = "task.execute", true;
    AdminRead = "admin.read", false;
    AdminStats = "admin.stats", false;
    AdminUsers = "admin.users", false;
    AdminAuditLogs = "admin.audit-logs", false;
    DatabaseCreate = "database.create", true;
    DatabaseRead = "database.read", true;
    DatabaseDelete = "database.delete", true;
    DatabaseRotate = "database.rotate", true;
    ApikeyCreate = "apikey.create", false;
    ApikeyRead = "apikey.read", false;
    ApikeyUpdate = "apikey.update", false;
    ApikeyDelete = "apikey.delete", false;
}

impl Permission {
    /// Parse one exact permission string.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::invalid(format!("unknown permission {s:?}")))
    }

    fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Permission::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Permission::ALL.iter().map(|p| p.as_str())))
            .description(Some("A permission of the API contract"))
            .into()
    }
}

impl utoipa::ToSchema for Permission {}

/// A set of permissions as a bit set: membership is one AND.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// No permissions.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission (`*`).
    pub fn all() -> Self {
        Permission::ALL.iter().copied().collect()
    }

    /// What the owner of a server may do on it: every server-scoped permission except
    /// deleting it (a billing decision, made with a global grant).
    pub fn owner() -> Self {
        Permission::ALL.iter().copied().filter(|p| p.is_server_scoped() && *p != Permission::ServerDelete).collect()
    }

    /// Expand patterns: `*`, `prefix.*`, or an exact permission. Unknown patterns are errors.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let mut set = PermissionSet::EMPTY;
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if pattern == "*" {
                return Ok(Self::all());
            }
            if let Some(prefix) = pattern.strip_suffix(".*") {
                let matched: PermissionSet =
                    Permission::ALL.iter().copied().filter(|p| p.as_str().split('.').next() == Some(prefix)).collect();
                if matched.is_empty() {
                    return Err(Error::invalid(format!("unknown permission group {pattern:?}")));
                }
                set = set.union(matched);
            } else {
                set.insert(Permission::parse(pattern)?);
            }
        }
        Ok(set)
    }

    /// Does the set hold `p`?
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Add `p`.
    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// Permissions in either set.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Permissions in both sets.
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Is every member of `self` in `other`?
    pub fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// Is it empty?
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Who is calling, with what they hold everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user_id: Option<UserId>,
    actor: ActorRef,
    global: PermissionSet,
    /// An API key's scopes: nothing outside them is allowed, whatever the user holds.
    ceiling: Option<PermissionSet>,
    session: Option<crate::id::SessionId>,
    ip: Option<std::net::IpAddr>,
    /// A console ticket's server: nothing global, and nothing on any other server.
    confined: Option<ServerId>,
}

impl Principal {
    /// A user with the union of their roles' permissions.
    pub fn user(user_id: UserId, global: PermissionSet) -> Self {
        Self {
            user_id: Some(user_id),
            actor: ActorRef::User(user_id),
            global,
            ceiling: None,
            session: None,
            ip: None,
            confined: None,
        }
    }

    /// A user acting through an API key limited to `scopes`.
    pub fn api_key(user_id: UserId, key: crate::id::ApiKeyId, global: PermissionSet, scopes: PermissionSet) -> Self {
        Self {
            user_id: Some(user_id),
            actor: ActorRef::ApiKey(key),
            global,
            ceiling: Some(scopes),
            session: None,
            ip: None,
            confined: None,
        }
    }

    /// Catalyst itself (bootstrap, scheduler): holds everything.
    pub fn system() -> Self {
        Self {
            user_id: None,
            actor: ActorRef::System,
            global: PermissionSet::all(),
            ceiling: None,
            session: None,
            ip: None,
            confined: None,
        }
    }

    /// The same principal, bound to the login session it authenticated with.
    pub fn with_session(mut self, session: crate::id::SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// The same principal, limited to one server and to `scopes` there (a console ticket):
    /// it holds nothing globally, and on that server at most what it held before.
    pub fn confined_to(mut self, server: ServerId, scopes: PermissionSet) -> Self {
        self.ceiling = Some(self.ceiling.map_or(scopes, |c| c.intersect(scopes)));
        self.confined = Some(server);
        self
    }

    /// The one server a console ticket's principal is bound to.
    pub fn confined_server(&self) -> Option<ServerId> {
        self.confined
    }

    /// The same principal, calling from `ip` (recorded in audit entries).
    pub fn with_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Where the call came from, when known.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.ip
    }

    /// The login session, for logout.
    pub fn session(&self) -> Option<crate::id::SessionId> {
        self.session
    }

    /// The user behind the call, if any.
    pub fn user_id(&self) -> Option<UserId> {
        self.user_id
    }

    /// Who acts, for audit entries.
    pub fn actor(&self) -> ActorRef {
        self.actor
    }

    /// Global permissions, after any API key ceiling.
    pub fn global(&self) -> PermissionSet {
        if self.confined.is_some() {
            return PermissionSet::EMPTY;
        }
        match self.ceiling {
            Some(c) => self.global.intersect(c),
            None => self.global,
        }
    }

    /// Does the principal hold `p` everywhere?
    pub fn holds(&self, p: Permission) -> bool {
        self.global().contains(p)
    }

    fn allowed_by_ceiling(&self, p: Permission) -> bool {
        self.ceiling.is_none_or(|c| c.contains(p))
    }
}

/// What the caller holds on one server, looked up by the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAuthz {
    /// The server.
    pub server_id: ServerId,
    /// Its owner.
    pub owner_id: UserId,
    /// The caller's subuser grant on it, if any.
    pub subuser: Option<PermissionSet>,
}

/// Where a permission is exercised.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Not tied to one server (nodes, templates, admin).
    Global,
    /// On one server.
    Server(&'a ServerAuthz),
}

/// Proof that a check passed. Only [`authorize`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    permission: Permission,
    server: Option<ServerId>,
    actor: ActorRef,
    user_id: Option<UserId>,
    global: bool,
}

impl Grant {
    /// The permission checked.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The server it was checked on, if any.
    pub fn server(&self) -> Option<ServerId> {
        self.server
    }

    /// Who holds it.
    pub fn actor(&self) -> ActorRef {
        self.actor
    }

    /// The user behind it.
    pub fn user_id(&self) -> Option<UserId> {
        self.user_id
    }

    /// Was it granted by a global permission (an operator) rather than ownership or a subuser grant?
    pub fn is_global(&self) -> bool {
        self.global
    }
}

/// Check that `principal` may exercise `permission` in `scope`.
///
/// On a server the caller cannot even read, the error is `not_found`, exactly like a missing
/// server, so ids cannot be probed.
pub fn authorize(principal: &Principal, permission: Permission, scope: Scope<'_>) -> Result<Grant> {
    let grant = |global| Grant {
        permission,
        server: match scope {
            Scope::Server(s) => Some(s.server_id),
            Scope::Global => None,
        },
        actor: principal.actor,
        user_id: principal.user_id,
        global,
    };
    if let Some(only) = principal.confined {
        // A ticket: what its maker holds on its one server, within the ticket's scopes.
        return match scope {
            Scope::Server(s) if s.server_id == only => {
                if effective_server_permissions(principal, s).contains(permission) {
                    Ok(grant(false))
                } else {
                    Err(Error::denied(format!("missing permission {permission} on this server")))
                }
            }
            Scope::Server(_) => Err(Error::not_found("server")),
            Scope::Global => Err(Error::denied("this credential is for one server's console only")),
        };
    }
    if principal.holds(permission) {
        return Ok(grant(true));
    }
    let Scope::Server(server) = scope else {
        return Err(Error::denied(format!("missing permission {permission}")));
    };
    let local = server_permissions(principal, server);
    if local.contains(permission) && principal.allowed_by_ceiling(permission) {
        return Ok(grant(false));
    }
    let can_see = principal.holds(Permission::ServerRead)
        || (local.contains(Permission::ServerRead) && principal.allowed_by_ceiling(Permission::ServerRead));
    if can_see {
        Err(Error::denied(format!("missing permission {permission} on this server")))
    } else {
        Err(Error::not_found("server"))
    }
}

/// Everything `principal` may exercise on one server: its global permissions, ownership and
/// any subuser grant, all within an API key's ceiling. Nobody may grant more than this.
pub fn effective_server_permissions(principal: &Principal, server: &ServerAuthz) -> PermissionSet {
    if principal.confined.is_some_and(|only| only != server.server_id) {
        return PermissionSet::EMPTY;
    }
    let held = principal.global.union(server_permissions(principal, server));
    match principal.ceiling {
        Some(c) => held.intersect(c),
        None => held,
    }
}

/// What a principal holds on one server through ownership or a subuser grant.
pub fn server_permissions(principal: &Principal, server: &ServerAuthz) -> PermissionSet {
    let mut set = server.subuser.unwrap_or_default();
    if principal.user_id == Some(server.owner_id) {
        set = set.union(PermissionSet::owner());
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz(owner: UserId, subuser: Option<PermissionSet>) -> ServerAuthz {
        ServerAuthz { server_id: ServerId::new(), owner_id: owner, subuser }
    }

    #[test]
    fn permission_strings_round_trip_and_fit_the_bitset() {
        assert!(Permission::ALL.len() <= 64);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).ok(), Some(*p));
        }
        assert!(Permission::parse("server.fly").is_err());
    }

    #[test]
    fn patterns_expand() {
        let s = PermissionSet::from_patterns(&["server.*", "file.read"]).expect("valid");
        assert!(s.contains(Permission::ServerTransfer));
        assert!(s.contains(Permission::FileRead));
        assert!(!s.contains(Permission::FileWrite));
        assert_eq!(PermissionSet::from_patterns(&["*"]).ok(), Some(PermissionSet::all()));
        assert!(PermissionSet::from_patterns(&["nope.*"]).is_err());
        let admin = PermissionSet::from_patterns(&["admin.*"]).expect("valid");
        assert!(admin.contains(Permission::AdminAuditLogs));
    }

    #[test]
    fn table_of_decisions() {
        let owner = UserId::new();
        let sub = UserId::new();
        let stranger = UserId::new();
        let operator = Principal::user(UserId::new(), PermissionSet::from_patterns(&["server.*"]).expect("valid"));
        let sub_perms = PermissionSet::from_patterns(&["server.read", "console.read"]).expect("valid");
        let s_owner = authz(owner, None);
        let s_sub = authz(owner, Some(sub_perms));
        use crate::ErrorKind::*;
        let cases: Vec<(Principal, Permission, Scope<'_>, Option<crate::ErrorKind>)> = vec![
            (Principal::user(owner, PermissionSet::EMPTY), Permission::ServerStart, Scope::Server(&s_owner), None),
            (
                Principal::user(owner, PermissionSet::EMPTY),
                Permission::ServerDelete,
                Scope::Server(&s_owner),
                Some(PermissionDenied),
            ),
            (
                Principal::user(owner, PermissionSet::EMPTY),
                Permission::ServerTransfer,
                Scope::Server(&s_owner),
                Some(PermissionDenied),
            ),
            (Principal::user(sub, PermissionSet::EMPTY), Permission::ConsoleRead, Scope::Server(&s_sub), None),
            (
                Principal::user(sub, PermissionSet::EMPTY),
                Permission::ServerStop,
                Scope::Server(&s_sub),
                Some(PermissionDenied),
            ),
            (
                Principal::user(stranger, PermissionSet::EMPTY),
                Permission::ServerRead,
                Scope::Server(&s_owner),
                Some(NotFound),
            ),
            (
                Principal::user(stranger, PermissionSet::EMPTY),
                Permission::ServerStop,
                Scope::Server(&s_owner),
                Some(NotFound),
            ),
            (operator.clone(), Permission::ServerTransfer, Scope::Server(&s_owner), None),
            (operator, Permission::NodeCreate, Scope::Global, Some(PermissionDenied)),
            (Principal::system(), Permission::AdminUsers, Scope::Global, None),
        ];
        for (who, perm, scope, want) in cases {
            let got = authorize(&who, perm, scope).err().map(|e| e.kind());
            assert_eq!(got, want, "{perm} for {:?}", who.actor());
        }
    }

    #[test]
    fn what_may_be_granted_stays_within_the_key_ceiling() {
        let owner = UserId::new();
        let s = authz(owner, None);
        let update = PermissionSet::from_patterns(&["server.update"]).expect("valid");
        let admin_key = Principal::api_key(UserId::new(), crate::id::ApiKeyId::new(), PermissionSet::all(), update);
        assert_eq!(effective_server_permissions(&admin_key, &s), update);
        let owner_key = Principal::api_key(owner, crate::id::ApiKeyId::new(), PermissionSet::EMPTY, update);
        assert_eq!(effective_server_permissions(&owner_key, &s), update);
        let sub = authz(owner, Some(PermissionSet::from_patterns(&["file.read", "server.update"]).expect("valid")));
        let subuser = Principal::user(UserId::new(), PermissionSet::EMPTY);
        assert!(!effective_server_permissions(&subuser, &sub).contains(Permission::FileWrite));
        assert!(
            effective_server_permissions(&Principal::user(owner, PermissionSet::EMPTY), &s)
                .contains(Permission::FileWrite)
        );
    }

    #[test]
    fn a_console_ticket_reaches_one_server_and_nothing_global() {
        let owner = UserId::new();
        let (mine, other) = (authz(owner, None), authz(owner, None));
        let scopes: PermissionSet = [Permission::ServerRead, Permission::ConsoleWrite].into_iter().collect();
        let ticket = Principal::user(owner, PermissionSet::all()).confined_to(mine.server_id, scopes);
        let grant = authorize(&ticket, Permission::ConsoleWrite, Scope::Server(&mine)).expect("its server");
        assert!(!grant.is_global());
        let kind = |r: Result<Grant>| r.err().map(|e| e.kind());
        assert_eq!(
            kind(authorize(&ticket, Permission::ServerRead, Scope::Server(&other))),
            Some(crate::ErrorKind::NotFound)
        );
        assert!(authorize(&ticket, Permission::FileRead, Scope::Server(&mine)).is_err(), "outside its scopes");
        assert!(authorize(&ticket, Permission::NodeRead, Scope::Global).is_err());
        assert!(!ticket.holds(Permission::ServerRead), "nothing global, even for an admin's ticket");
        assert_eq!(effective_server_permissions(&ticket, &other), PermissionSet::EMPTY);
        let key = Principal::api_key(owner, crate::id::ApiKeyId::new(), PermissionSet::EMPTY, PermissionSet::EMPTY);
        let narrow = key.confined_to(mine.server_id, scopes);
        assert!(authorize(&narrow, Permission::ServerRead, Scope::Server(&mine)).is_err(), "never more than the key");
    }

    #[test]
    fn api_key_ceiling_limits_even_owners_and_admins() {
        let owner = UserId::new();
        let key = crate::id::ApiKeyId::new();
        let scopes = PermissionSet::from_patterns(&["server.read"]).expect("valid");
        let p = Principal::api_key(owner, key, PermissionSet::all(), scopes);
        let s = authz(owner, None);
        assert!(authorize(&p, Permission::ServerRead, Scope::Server(&s)).is_ok());
        let err = authorize(&p, Permission::ServerStart, Scope::Server(&s)).err().map(|e| e.kind());
        assert_eq!(err, Some(crate::ErrorKind::PermissionDenied));
        assert!(authorize(&p, Permission::NodeCreate, Scope::Global).is_err());
    }

    #[test]
    fn grant_carries_scope() {
        let owner = UserId::new();
        let s = authz(owner, None);
        let g = authorize(&Principal::user(owner, PermissionSet::EMPTY), Permission::FileRead, Scope::Server(&s))
            .expect("owner");
        assert_eq!(g.server(), Some(s.server_id));
        assert!(!g.is_global());
    }
}
