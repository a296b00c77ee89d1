//! The I/O half of [`catalyst_core::follow::Follow`], over the facade: the access check a
//! [`Step::Recheck`] asks for, the stored console lines of a [`Step::Replay`], and sending. The
//! gateway (a follow per subscription of a socket) and the embedded feed (one) both use it.

use catalyst_core::Result;
use catalyst_core::follow::{Access, End, Follow, Step};
use catalyst_core::id::ServerId;
use catalyst_core::model::{LogQuery, ServerLog};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::protocol::gateway::ServerFrame;

use crate::Catalyst;

/// What `who` may see of server `id` now; an error when they may not read it at all.
pub async fn access(c: &Catalyst, who: &Principal, id: ServerId) -> Result<Access> {
    let server = c.get_server(who, id).await?;
    let console = c.check_server_permission(who, id, Permission::ConsoleRead).await.is_ok();
    Ok(Access { state: server.state, console })
}

/// The stored console lines of server `id` that `query` selects, oldest first.
pub async fn history(c: &Catalyst, who: &Principal, id: ServerId, query: &LogQuery) -> Result<Vec<ServerLog>> {
    let mut lines = c.server_logs(who, id, query).await?;
    lines.reverse();
    Ok(lines)
}

/// Where a follow's frames go: a socket, a feed's channel.
pub trait Sink: Send {
    /// Send `frame`; `false` when the reader has left.
    fn send(&mut self, frame: ServerFrame) -> impl Future<Output = bool> + Send;
}

/// What carrying out a step came to.
#[derive(Debug)]
pub enum Outcome {
    /// The follow goes on.
    Going,
    /// The follow is over.
    Ended(End),
    /// A send failed: the reader left.
    Gone,
}

/// Carry out `step` of `follow` for `who`: check access and read console lines back through
/// `c` as it asks (a failed read sends nothing), and hand each frame to `sink`.
pub async fn carry_out(
    c: &Catalyst,
    who: &Principal,
    follow: &mut Follow,
    mut step: Step,
    sink: &mut impl Sink,
) -> Outcome {
    loop {
        step = match step {
            Step::Skip => return Outcome::Going,
            Step::Deliver(frame) => return if sink.send(frame).await { Outcome::Going } else { Outcome::Gone },
            Step::End(end) => return Outcome::Ended(end),
            Step::Recheck => {
                let checked = access(c, who, follow.server_id()).await;
                follow.on_access(who, checked)
            }
            Step::Replay(query) => {
                for line in history(c, who, follow.server_id(), &query).await.unwrap_or_default() {
                    if let Step::Deliver(frame) = follow.on_history(line)
                        && !sink.send(frame).await
                    {
                        return Outcome::Gone;
                    }
                }
                return Outcome::Going;
            }
        }
    }
}
