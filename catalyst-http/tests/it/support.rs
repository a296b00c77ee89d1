//! What every HTTP test starts from: a control plane on SQLite with a node hub, and a way to
//! serve a router on loopback with peer addresses (which the rate limits key on).

use std::net::SocketAddr;
use std::sync::Arc;

use catalyst_runtime::Catalyst;
use catalyst_runtime::control::auth::AuthConfig;
use catalyst_runtime::link::NodeHub;
use catalyst_runtime::store::SqliteStore;

/// A control plane on a fresh SQLite file (kept alive by the returned directory).
pub async fn control_plane() -> (Catalyst, NodeHub, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = NodeHub::new();
    let catalyst = Catalyst::builder()
        .store(Arc::new(SqliteStore::open(&dir.path().join("c.db")).await.expect("sqlite")))
        .link(Arc::new(hub.clone()))
        .auth(AuthConfig::with_secret(vec![7u8; 32]).expect("secret"))
        .build()
        .await
        .expect("build");
    (catalyst, hub, dir)
}

/// Serve `app` on 127.0.0.1 with connect info; returns the address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        catalyst_http::serve(listener, app, std::future::pending()).await;
    });
    addr
}

/// The template most tests run: `./run`, stopped with `stop`, started once it prints `Done`.
pub fn game_template(name: &str) -> catalyst_runtime::control::NewTemplate {
    use catalyst_core::model::{DonePattern, StopAction};
    catalyst_runtime::control::NewTemplate {
        name: name.into(),
        description: String::new(),
        image: "img".into(),
        startup: "./run".into(),
        env: Default::default(),
        variables: vec![],
        install: None,
        stop: StopAction::Command("stop".into()),
        done_patterns: vec![DonePattern::Substring("Done".into())],
        config_files: vec![],
    }
}
