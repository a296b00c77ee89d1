//! The remote feed of [`Client::events`](super::Client): the WebSocket gateway (`/api/ws`)
//! spoken as a client. Frames become the same [`DomainEvent`]s the embedded feed yields, and
//! close codes the same errors.

use catalyst_core::events::DomainEvent;
use catalyst_core::id::ServerId;
use catalyst_core::protocol::gateway::{ClientFrame, ServerFrame, UnsubscribeReason};
use catalyst_core::{Error, ErrorKind, Result};
use catalyst_runtime::api::{Cursor, FEED_BUFFER, Subscription};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::gateway::close;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long connecting, authenticating and subscribing may take.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Subscribe to server `id` on the gateway of the catalyst-server at `base` (`http(s)://…`).
pub(super) async fn open(base: &str, credential: &str, id: ServerId, since: Option<i64>) -> Result<Subscription> {
    let url = format!("ws{}/api/ws", base.strip_prefix("http").unwrap_or(base));
    let opening = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| Error::unavailable(format!("catalyst-server: {e}")))?;
        send(&mut ws, ClientFrame::Auth { token: credential.to_string() }).await?;
        until(&mut ws, |f| matches!(f, ServerFrame::AuthOk)).await?;
        send(&mut ws, ClientFrame::Subscribe { server_id: id, since }).await?;
        until(&mut ws, |f| matches!(f, ServerFrame::Subscribed { .. })).await?;
        Ok::<_, Error>(ws)
    };
    let ws = tokio::time::timeout(OPEN_TIMEOUT, opening)
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, "the catalyst-server did not answer the subscription"))??;
    let (tx, rx) = tokio::sync::mpsc::channel(FEED_BUFFER);
    let feed = tokio::spawn(follow(ws, tx, credential.to_string(), id, since));
    Ok(Subscription::new(rx, feed.abort_handle()))
}

async fn send(ws: &mut Socket, frame: ClientFrame) -> Result<()> {
    ws.send(Message::Text(frame.to_json().into()))
        .await
        .map_err(|e| Error::unavailable(format!("catalyst-server: {e}")))
}

/// Read up to the frame `wanted` picks; an error frame or a close ends it.
async fn until(ws: &mut Socket, wanted: fn(&ServerFrame) -> bool) -> Result<()> {
    loop {
        match next_frame(ws).await? {
            Some(frame) if wanted(&frame) => return Ok(()),
            Some(ServerFrame::Error { code, message }) => return Err(Error::new(code, message)),
            Some(_) => {}
            None => return Err(Error::unavailable("the catalyst-server closed the connection")),
        }
    }
}

/// The next frame this client knows (a newer server's other frames are skipped); `None` when
/// the socket ended without a close frame.
async fn next_frame(ws: &mut Socket) -> Result<Option<ServerFrame>> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Ok(frame) = serde_json::from_str(&text) {
                    return Ok(Some(frame));
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Error::unavailable(format!("catalyst-server: {e}"))),
            None => return Ok(None),
        }
    }
}

/// The error a close frame stands for.
fn closed(frame: Option<CloseFrame>) -> Error {
    let Some(frame) = frame else { return Error::unavailable("the catalyst-server closed the connection") };
    let reason = frame.reason.to_string();
    match u16::from(frame.code) {
        close::UNAUTHENTICATED => Error::unauthenticated(reason),
        close::SUSPENDED => Error::denied(reason),
        close::REFUSED => Error::new(ErrorKind::RateLimited, reason),
        _ => Error::unavailable(format!("the catalyst-server closed the connection: {reason}")),
    }
}

/// Turn frames into events until the server is deleted, the socket ends or the reader leaves.
async fn follow(
    mut ws: Socket,
    tx: tokio::sync::mpsc::Sender<Result<DomainEvent>>,
    credential: String,
    id: ServerId,
    since: Option<i64>,
) {
    let mut cursor = Cursor::after(since);
    loop {
        let frame = match next_frame(&mut ws).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let event = match frame {
            ServerFrame::AuthOk | ServerFrame::Subscribed { .. } | ServerFrame::Ok { .. } => continue,
            // An API key authenticates again as it is; an access token lives out its time.
            ServerFrame::TokenExpiring => {
                let _ = send(&mut ws, ClientFrame::Auth { token: credential.clone() }).await;
                continue;
            }
            // Events were dropped for us: the gateway replays the console after the cursor.
            ServerFrame::Lagged { .. } => {
                if let Some(seq) = cursor.seq() {
                    let _ = send(&mut ws, ClientFrame::Subscribe { server_id: id, since: Some(seq) }).await;
                }
                continue;
            }
            ServerFrame::Error { code, message } => {
                let _ = tx.send(Err(Error::new(code, message))).await;
                return;
            }
            ServerFrame::Unsubscribed { reason, .. } if reason != Some(UnsubscribeReason::Deleted) => {
                let _ = tx.send(Err(Error::denied("access to the server was revoked"))).await;
                return;
            }
            // Without a cursor only live lines count, not the gateway's recent history.
            ServerFrame::ServerLog { history: true, .. } if since.is_none() => continue,
            frame => match frame.into_event() {
                Some(event) => event,
                None => continue,
            },
        };
        if let DomainEvent::ServerLog(line) = &event
            && !cursor.admit(line)
        {
            continue;
        }
        let deleted = matches!(event, DomainEvent::ServerDeleted { .. });
        if tx.send(Ok(event)).await.is_err() || deleted {
            return;
        }
    }
}
