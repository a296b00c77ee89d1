//! What HTTP tests share beyond `catalyst_runtime::testing`: a way to serve a router on
//! loopback with peer addresses (which the rate limits key on).

use std::net::SocketAddr;

/// Serve `app` on 127.0.0.1 with connect info; returns the address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        catalyst_http::serve(listener, app, std::future::pending()).await;
    });
    addr
}
