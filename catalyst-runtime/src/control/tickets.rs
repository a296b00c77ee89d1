//! Console tickets: short-lived credentials for one server's console, made to be handed to a
//! browser or a script (what Pterodactyl's websocket credentials are). A ticket remembers the
//! credential it was made from and authenticates it again on every use, so revoking that key
//! or ending that session ends the ticket too. Tickets live in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use catalyst_core::id::ServerId;
use catalyst_core::model::Timestamp;
use catalyst_core::permission::{Permission, PermissionSet, Principal};
use catalyst_core::{Error, ErrorKind, Result};

use super::Catalyst;
use super::auth::sha256_hex;

/// What every ticket starts with.
pub const TICKET_PREFIX: &str = "catalyst-ticket.";
/// How long a ticket works.
pub const TICKET_TTL: Duration = Duration::from_secs(600);
/// Tickets held at once; expired ones are dropped first.
const MAX_TICKETS: usize = 100_000;

/// What a ticket allows on its server, within what its maker holds there.
fn ticket_scopes() -> PermissionSet {
    [
        Permission::ServerRead,
        Permission::ConsoleRead,
        Permission::ConsoleWrite,
        Permission::ServerStart,
        Permission::ServerStop,
        Permission::ServerRestart,
    ]
    .into_iter()
    .collect()
}

#[derive(Debug, Clone)]
struct Ticket {
    credential: String,
    server: ServerId,
    expires: Timestamp,
}

/// Live tickets by the hash of their secret.
#[derive(Debug, Default)]
pub(super) struct Tickets(Mutex<HashMap<String, Ticket>>);

impl Tickets {
    fn get(&self, raw: &str, now: Timestamp) -> Option<Ticket> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&sha256_hex(raw)).filter(|t| t.expires > now).cloned()
    }
}

impl Catalyst {
    /// A ticket for one server's console, made from `credential` (an access token or an API
    /// key, which must hold `console.read` on the server): for ten minutes the gateway accepts
    /// it with that credential's grants on that server only, limited to the console and power
    /// actions. Returns the ticket and its lifetime in seconds.
    pub async fn console_ticket(
        &self,
        credential: &str,
        client_ip: Option<std::net::IpAddr>,
        server: ServerId,
    ) -> Result<(String, u64)> {
        if credential.starts_with(TICKET_PREFIX) {
            return Err(Error::denied("a ticket cannot make tickets"));
        }
        let who = self.authenticate(credential, client_ip).await?;
        self.check_server_permission(&who, server, Permission::ConsoleRead).await?;
        let ticket = format!("{TICKET_PREFIX}{}", super::api_keys::random_hex(32));
        let now = self.now();
        let expires = now + chrono::Duration::from_std(TICKET_TTL).unwrap_or_default();
        let mut map = self.inner.tickets.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TICKETS {
            map.retain(|_, t| t.expires > now);
        }
        if map.len() >= MAX_TICKETS {
            return Err(Error::new(ErrorKind::RateLimited, "too many console tickets are open; retry shortly"));
        }
        map.insert(sha256_hex(&ticket), Ticket { credential: credential.to_string(), server, expires });
        Ok((ticket, TICKET_TTL.as_secs()))
    }

    /// The principal of a ticket: its maker's, confined to the ticket's server and scopes.
    pub(super) async fn authenticate_ticket(
        &self,
        raw: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let ticket = self
            .inner
            .tickets
            .get(raw, self.now())
            .ok_or_else(|| Error::unauthenticated("the ticket is invalid or has expired"))?;
        let maker = self.authenticate_credential(&ticket.credential, client_ip).await?;
        Ok(maker.confined_to(ticket.server, ticket_scopes()))
    }

    /// Seconds a ticket has left, if it is one that works.
    pub(super) fn ticket_seconds_left(&self, raw: &str) -> Option<u64> {
        let now = self.now();
        let ticket = self.inner.tickets.get(raw, now)?;
        u64::try_from((ticket.expires - now).num_seconds()).ok()
    }
}
