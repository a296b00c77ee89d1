//! The client WebSocket gateway over a real socket: auth, subscriptions, live events, console
//! resume, commands and power actions, limits, and revocation reaching open sockets.

use std::time::Duration;

use catalyst_core::permission::Principal;
use catalyst_runtime::Catalyst;
use catalyst_runtime::control::GrantAccess;
use catalyst_runtime::testing::{OWNER_EMAIL, PASSWORD, TestWorld};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct World {
    catalyst: Catalyst,
    url: String,
    server: catalyst_core::id::ServerId,
    owner_token: String,
    sub: catalyst_core::model::User,
    sub_token: String,
    _world: TestWorld,
}

/// The owner's server, installed before any socket looks at it, and a subuser with no grant yet.
async fn world() -> World {
    let w = TestWorld::sqlite().await.with_server().build().await;
    let owner_token = w.login(OWNER_EMAIL, PASSWORD).await;
    let (sub, sub_token) = w.user("subuser").await;
    let addr = crate::support::serve(catalyst_http::router(w.catalyst.clone(), Some(w.hub.clone()))).await;
    World {
        catalyst: w.catalyst.clone(),
        url: format!("ws://{addr}/api/ws"),
        server: w.server(),
        owner_token,
        sub,
        sub_token,
        _world: w,
    }
}

async fn connect(url: &str, token: &str) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    let first = next(&mut ws).await;
    assert_eq!(first["type"], "auth_ok", "{first}");
    ws
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// The next JSON frame; `{"type":"closed","code":…}` when the server closes.
async fn next(ws: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("json"),
            Some(Ok(Message::Close(frame))) => {
                return json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))});
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return json!({"type": "closed", "code": null}),
        }
    }
}

/// Frames until one satisfies `pred`.
async fn until(ws: &mut Socket, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let v = next(ws).await;
        if pred(&v) {
            return v;
        }
        assert_ne!(v["type"], "closed", "closed while waiting for {what}");
    }
    panic!("never saw {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_state_commands_and_resume() {
    let w = world().await;
    let mut ws = connect(&w.url, &w.owner_token).await;
    send(&mut ws, json!({"type": "subscribe", "server_id": w.server})).await;
    let subscribed = until(&mut ws, "subscribed", |v| v["type"] == "subscribed").await;
    assert_eq!(subscribed["state"], "stopped");
    send(&mut ws, json!({"type": "power", "server_id": w.server, "action": "start"})).await;
    until(&mut ws, "running", |v| v["type"] == "server_state_update" && v["to"] == "running").await;
    send(&mut ws, json!({"type": "command", "server_id": w.server, "command": "hello socket"})).await;
    let echo = until(&mut ws, "the echo", |v| v["type"] == "server_log" && v["line"] == "> hello socket").await;
    let seq = echo["seq"].as_i64().expect("seq");

    // A second socket resumes from just before the echo: history first, marked as such.
    tokio::time::sleep(Duration::from_millis(400)).await; // the log writer flushes every 200 ms
    let mut late = connect(&w.url, &w.owner_token).await;
    send(&mut late, json!({"type": "subscribe", "server_id": w.server, "since": seq - 1})).await;
    until(&mut late, "subscribed", |v| v["type"] == "subscribed").await;
    let replay = until(&mut late, "the replayed echo", |v| v["type"] == "server_log").await;
    assert_eq!((replay["seq"].as_i64(), replay["history"].as_bool()), (Some(seq), Some(true)));

    // Bad frames get typed errors; unknown servers look missing.
    send(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(until(&mut ws, "an error", |v| v["type"] == "error").await["code"], "invalid_input");
    send(&mut ws, json!({"type": "subscribe", "server_id": catalyst_core::id::ServerId::new()})).await;
    assert_eq!(until(&mut ws, "an error", |v| v["type"] == "error").await["code"], "not_found");
    // Actions are rate limited.
    for _ in 0..15 {
        send(&mut ws, json!({"type": "command", "server_id": w.server, "command": "x"})).await;
    }
    until(&mut ws, "rate limiting", |v| v["code"] == "rate_limited").await;
    // Oversized frames end the socket.
    let _ = ws.send(Message::Text("x".repeat(10_000).into())).await;
    until(&mut ws, "the close", |v| v["type"] == "closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_revocation_reach_open_sockets() {
    let w = world().await;
    // No auth, bad auth.
    let (mut ws, _) = tokio_tungstenite::connect_async(w.url.as_str()).await.expect("connect");
    send(&mut ws, json!({"type": "subscribe", "server_id": w.server})).await;
    assert_eq!(next(&mut ws).await["code"], 4401);
    let (mut ws, _) = tokio_tungstenite::connect_async(w.url.as_str()).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": "nope"})).await;
    assert_eq!(next(&mut ws).await["code"], 4401);

    // A subuser follows the server until the owner revokes the grant.
    let owner = w.catalyst.authenticate(&w.owner_token, None).await.expect("owner");
    let grant = GrantAccess {
        user_id: w.sub.id,
        permissions: vec![
            catalyst_core::permission::Permission::ServerRead,
            catalyst_core::permission::Permission::ConsoleRead,
        ],
    };
    w.catalyst.grant_access(&owner, w.server, grant).await.expect("grant");
    let mut sub = connect(&w.url, &w.sub_token).await;
    send(&mut sub, json!({"type": "subscribe", "server_id": w.server})).await;
    until(&mut sub, "subscribed", |v| v["type"] == "subscribed").await;
    send(&mut sub, json!({"type": "power", "server_id": w.server, "action": "start"})).await;
    assert_eq!(until(&mut sub, "refusal", |v| v["type"] == "error").await["code"], "permission_denied");
    w.catalyst.revoke_access(&owner, w.server, w.sub.id).await.expect("revoke");
    let gone = until(&mut sub, "the forced unsubscribe", |v| v["type"] == "unsubscribed").await;
    assert_eq!(gone["reason"], "access revoked");

    // Suspension closes the owner's socket (4409); logout closes it too (4401).
    let mut ows = connect(&w.url, &w.owner_token).await;
    send(&mut ows, json!({"type": "subscribe", "server_id": w.server})).await;
    until(&mut ows, "subscribed", |v| v["type"] == "subscribed").await;
    w.catalyst.suspend_server(&Principal::system(), w.server).await.expect("suspend");
    assert_eq!(until(&mut ows, "the suspension close", |v| v["type"] == "closed").await["code"], 4409);
    let mut ows = connect(&w.url, &w.owner_token).await;
    w.catalyst.logout(&owner).await.expect("logout");
    assert_eq!(until(&mut ows, "the logout close", |v| v["type"] == "closed").await["code"], 4401);
}

/// A client that stops reading during a busy console falls behind the bus and misses the
/// revocation itself: on lag the gateway checks the session again, so the socket still closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_socket_still_hears_its_revocation() {
    use catalyst_core::events::DomainEvent;
    use catalyst_core::model::{LogStream, ServerLog};
    use catalyst_core::ports::EventSink;
    let w = world().await;
    let mut ws = connect(&w.url, &w.owner_token).await;
    send(&mut ws, json!({"type": "subscribe", "server_id": w.server})).await;
    until(&mut ws, "subscribed", |v| v["type"] == "subscribed").await;
    let line = |seq: i64, text: String| {
        DomainEvent::ServerLog(ServerLog {
            server_id: w.server,
            seq,
            stream: LogStream::Stdout,
            line: text,
            at: chrono::Utc::now(),
        })
    };
    // Fill the socket's buffers while the client reads nothing, so the gateway stops reading
    // the bus; then the revocation, then more than the bus keeps.
    let bus = w.catalyst.events();
    for seq in 0..3000 {
        bus.publish(line(seq, "x".repeat(8192)));
    }
    let owner = w.catalyst.authenticate(&w.owner_token, None).await.expect("owner");
    w.catalyst.logout(&owner).await.expect("logout");
    for seq in 3000..13_000 {
        bus.publish(line(seq, "late".into()));
    }
    bus.publish(line(13_000, "last".into()));
    let mut frames = 0;
    let end = loop {
        let v = next(&mut ws).await;
        frames += 1;
        if v["type"] == "closed" || v["line"] == "last" || frames > 20_000 {
            break v;
        }
    };
    assert_eq!(end["code"], 4401, "still streaming after logout: {end} after {frames} frames");
}

/// A console ticket (what `/api/client/servers/{id}/websocket` hands out) opens the gateway for
/// its one server: console and power there, nothing elsewhere; it ends when its maker's session does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_ticket_opens_one_servers_console() {
    let w = world().await;
    let (ticket, ttl) = w.catalyst.console_ticket(&w.owner_token, None, w.server).await.expect("ticket");
    assert!(ttl > 0 && ttl <= 600, "{ttl}");
    let mut ws = connect(&w.url, &ticket).await;
    send(&mut ws, json!({"type": "subscribe", "server_id": w.server})).await;
    until(&mut ws, "subscribed", |v| v["type"] == "subscribed").await;
    send(&mut ws, json!({"type": "power", "server_id": w.server, "action": "start"})).await;
    until(&mut ws, "running", |v| v["type"] == "server_state_update" && v["to"] == "running").await;
    send(&mut ws, json!({"type": "command", "server_id": w.server, "command": "via ticket"})).await;
    until(&mut ws, "the echo", |v| v["type"] == "server_log" && v["line"] == "> via ticket").await;
    send(&mut ws, json!({"type": "subscribe", "server_id": catalyst_core::id::ServerId::new()})).await;
    assert_eq!(until(&mut ws, "an error", |v| v["type"] == "error").await["code"], "not_found");
    assert!(w.catalyst.console_ticket(&ticket, None, w.server).await.is_err(), "a ticket makes no tickets");
    assert!(w.catalyst.console_ticket(&w.sub_token, None, w.server).await.is_err(), "no console.read, no ticket");

    // Logging out ends the session the ticket came from: the socket closes.
    let owner = w.catalyst.authenticate(&w.owner_token, None).await.expect("owner");
    w.catalyst.logout(&owner).await.expect("logout");
    until(&mut ws, "the close", |v| v["type"] == "closed").await;
    assert!(w.catalyst.authenticate(&ticket, None).await.is_err());
}
