//! One scenario against both modes of `CatalystApi`: the control plane in this process
//! (`Embedded`) and a catalyst-server over HTTP (`client::Client`). They must agree on results
//! and on error codes.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::ErrorKind;
use catalyst_core::clock::SystemClock;
use catalyst_core::events::DomainEvent;
use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{BackupStatus, Deploy, LogQuery, NewAllocations, Page};
use catalyst_core::testing::FakeRuntime;
use catalyst_http::client::Client;
use catalyst_runtime::api::{CatalystApi, Embedded, Subscription};
use catalyst_runtime::control::{AllocationPatch, NewLocation, NewNode, NewServer, NewTemplate, NewUser, ServerPatch};
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};
use catalyst_runtime::testing;

use crate::api::Api;

async fn until_state(api: &dyn CatalystApi, id: ServerId, state: ServerState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.get_server(id).await.expect("server").state != state {
        assert!(tokio::time::Instant::now() < deadline, "never {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The scenario; returns the error kinds it provoked, in order.
async fn scenario(api: &dyn CatalystApi, link: &NodeHub, dir: &std::path::Path, tag: &str) -> Vec<ErrorKind> {
    let me = api.me().await.expect("me");
    assert_eq!(me.user.email, "admin@example.test");
    let location =
        api.create_location(NewLocation { name: tag.into(), description: String::new() }).await.expect("location");
    assert!(api.list_locations().await.expect("locations").iter().any(|l| l.id == location.id));
    let node = NewNode {
        name: tag.into(),
        location_id: location.id,
        fqdn: format!("{tag}.example.test"),
        memory_mb: 8192,
        disk_mb: 100_000,
        overallocate_percent: 0,
    };
    let node = api.create_node(node).await.expect("node");
    assert_eq!(api.get_node(node.id).await.expect("get node").name, tag);
    assert!(api.list_nodes(Page::new(0, 100)).await.expect("nodes").items.iter().any(|n| n.id == node.id));
    let daemon =
        NodeDaemon::new(node.id, Arc::new(FakeRuntime::new()), Arc::new(SystemClock), DaemonConfig::new(dir.join(tag)));
    link.add_node(daemon);
    let template = NewTemplate { name: format!("{tag}-game"), ..testing::game_template() };
    let template = api.create_template(template).await.expect("template");
    assert_eq!(api.get_template(template.id).await.expect("get template").name, template.name);
    assert!(api.list_templates(Page::new(0, 100)).await.expect("templates").items.iter().any(|t| t.id == template.id));
    let customer = NewUser {
        email: format!("{tag}@customers.test"),
        username: format!("{tag}-customer"),
        password: "customer-password".into(),
        external_id: Some(format!("billing-{tag}")),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
    };
    let customer = api.create_user(customer).await.expect("customer");
    assert!(customer.number > 0 && customer.external_id == Some(format!("billing-{tag}")));

    // The node's pool, and a server placed by Catalyst from it.
    let pool = NewAllocations { ip: "0.0.0.0".into(), ports: vec!["25565-25566".into()], alias: None, notes: None };
    assert_eq!(api.add_allocations(node.id, pool).await.expect("pool"), 2);
    let deploy = Deploy { locations: vec![location.id], dedicated_ip: false, port_range: vec!["25565-25566".into()] };
    let server = NewServer {
        name: tag.into(),
        node_id: None,
        allocations: vec![],
        deploy: Some(deploy),
        ..testing::new_server(customer.id, node.id, template.id)
    };
    let created = api.create_server(server).await.expect("server");
    let id = created.id;
    assert_eq!((created.node_id, created.owner_id), (node.id, customer.id), "placed on the only node there");
    let pool = api.list_allocations(node.id, Page::new(0, 10)).await.expect("pool").items;
    let held: Vec<_> = pool.iter().filter(|a| a.server_id == Some(id)).collect();
    assert_eq!(held.len(), 1, "the server holds one of the two: {pool:?}");
    assert_eq!(created.allocations[0].port, held[0].port);
    let free = pool.iter().find(|a| a.server_id.is_none()).expect("one free");
    let named = AllocationPatch { alias: Some("play.example.test".into()), notes: None };
    let named = api.update_allocation(node.id, held[0].number, named).await.expect("alias");
    assert_eq!(named.alias.as_deref(), Some("play.example.test"));
    api.delete_allocation(node.id, free.number).await.expect("delete a free allocation");
    let held_number = held[0].number;
    until_state(api, id, ServerState::Stopped).await;
    let mut events = api.events(id, None).await.expect("events");
    api.start_server(id).await.expect("start");
    until_state(api, id, ServerState::Running).await;
    // The feed saw the start: state updates up to running, and the console.
    let (mut running, mut lines) = (false, 0);
    while !running || lines == 0 {
        match next(&mut events).await {
            DomainEvent::ServerStateUpdate { server_id, to, .. } => {
                assert_eq!(server_id, id);
                running |= to == ServerState::Running;
            }
            DomainEvent::ServerLog(line) => {
                assert_eq!(line.server_id, id);
                lines += 1;
            }
            _ => {}
        }
    }
    // Resuming from a sequence number replays the stored console, oldest first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let stored = api.server_logs(id, LogQuery::default()).await.expect("logs");
        if !stored.is_empty() {
            break stored;
        }
        assert!(tokio::time::Instant::now() < deadline, "no line was ever stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let oldest = stored.last().expect("a stored line");
    let mut console = api.events(id, Some(oldest.seq - 1)).await.expect("console").console();
    let replayed = tokio::time::timeout(Duration::from_secs(10), console.next()).await.expect("in time");
    assert_eq!(&replayed.expect("a line").expect("no error"), oldest);
    // Closing ends a feed at once, what it buffered included…
    console.closer().close();
    assert!(console.next().await.is_none());
    // …and a pending `next()` too.
    let mut live = api.events(id, None).await.expect("events");
    let closer = live.closer();
    let pending = tokio::spawn(async move { live.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    closer.close();
    assert!(tokio::time::timeout(Duration::from_secs(10), pending).await.expect("in time").expect("join"));
    api.send_command(id, "say hello").await.expect("command");
    api.server_logs(id, LogQuery::default()).await.expect("logs");
    let renamed = api.update_server(id, ServerPatch { name: Some(format!("{tag}-renamed")), ..Default::default() });
    assert_eq!(renamed.await.expect("update").name, format!("{tag}-renamed"));
    api.stop_server(id).await.expect("stop");
    until_state(api, id, ServerState::Stopped).await;
    // A restart of a stopped server starts it.
    api.restart_server(id).await.expect("restart");
    until_state(api, id, ServerState::Running).await;
    api.kill_server(id).await.expect("kill");
    until_state(api, id, ServerState::Stopped).await;
    api.suspend_server(id).await.expect("suspend");
    until_state(api, id, ServerState::Suspended).await;
    api.unsuspend_server(id).await.expect("unsuspend");
    until_state(api, id, ServerState::Stopped).await;
    assert!(api.list_servers(Page::new(0, 100)).await.expect("servers").items.iter().any(|s| s.id == id));

    let backup = api.create_backup(id, Some("sdk".into())).await.expect("backup");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.list_backups(id).await.expect("backups")[0].status != BackupStatus::Completed {
        assert!(tokio::time::Instant::now() < deadline, "the backup never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.delete_backup(id, backup.id).await.expect("delete backup");

    let mut errors = Vec::new();
    errors.push(api.get_server(ServerId::new()).await.expect_err("missing").kind());
    errors.push(
        api.create_location(NewLocation { name: String::new(), description: String::new() })
            .await
            .expect_err("empty")
            .kind(),
    );
    errors.push(api.send_command(id, "two\nlines").await.expect_err("two lines").kind());
    errors.push(api.kill_server(id).await.expect_err("not running").kind());
    errors.push(api.events(ServerId::new(), None).await.expect_err("missing").kind());
    errors.push(api.delete_allocation(node.id, held_number).await.expect_err("held").kind());
    api.delete_server(id).await.expect("delete");
    errors.push(api.get_server(id).await.expect_err("deleted").kind());
    // The feed ends with the deletion.
    while !matches!(next(&mut events).await, DomainEvent::ServerDeleted { .. }) {}
    let end = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("in time");
    assert!(end.is_none(), "the feed goes on after the deletion: {end:?}");
    errors
}

async fn next(feed: &mut Subscription) -> DomainEvent {
    let item = tokio::time::timeout(Duration::from_secs(10), feed.next()).await.expect("an event in time");
    item.expect("the feed is open").expect("no error")
}

#[tokio::test]
async fn embedded_and_remote_modes_agree() {
    let api = Api::new().await;
    let admin = api.catalyst.authenticate(&api.admin, None).await.expect("principal");
    let embedded = Embedded::new(api.catalyst.clone(), admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(catalyst_http::serve(listener, api.router.clone(), std::future::pending()));
    let remote = Client::login(&url, "admin@example.test", "admin-password").await.expect("login");

    let here = scenario(&embedded, &api.link, api.dir.path(), "embedded").await;
    let there = scenario(&remote, &api.link, api.dir.path(), "remote").await;
    assert_eq!(here, there, "the two modes disagree on errors");
    assert_eq!(
        here,
        vec![
            ErrorKind::NotFound,
            ErrorKind::InvalidInput,
            ErrorKind::InvalidInput,
            ErrorKind::InvalidTransition,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::NotFound
        ]
    );
    let refused = Client::login(&url, "admin@example.test", "wrong").await.expect_err("wrong password");
    assert_eq!(refused.kind(), ErrorKind::Unauthenticated);
    let offline = Client::new("http://127.0.0.1:1", "token").expect("client").me().await.expect_err("no server");
    assert_eq!(offline.kind(), ErrorKind::Unavailable);
}
