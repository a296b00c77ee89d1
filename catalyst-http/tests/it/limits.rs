//! Rate limits per client IP and CORS, over a real socket (limits key on the peer address).

async fn raw(addr: std::net::SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).to_string()
}

fn login(addr: std::net::SocketAddr) -> String {
    let body = r#"{"email":"nobody@example.test","password":"whatever-1"}"#;
    format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_ip_and_cors_follows_the_config() {
    let w = catalyst_runtime::testing::TestWorld::sqlite().await.build().await;
    let config = catalyst_http::HttpConfig {
        rate_limits: catalyst_http::limits::RateLimits { per_minute: 100, auth_per_minute: 3, health_per_minute: 100 },
        cors_origins: vec!["https://panel.example.test".into()],
        hsts: true,
        ..Default::default()
    };
    let addr = crate::support::serve(catalyst_http::router_with(w.catalyst, Some(w.hub), &config)).await;

    for _ in 0..3 {
        let res = raw(addr, login(addr)).await;
        assert!(res.starts_with("HTTP/1.1 401"), "{res}");
    }
    let res = raw(addr, login(addr)).await;
    assert!(res.starts_with("HTTP/1.1 429"), "{res}");
    assert!(res.to_ascii_lowercase().contains("retry-after:"), "{res}");
    assert!(res.contains("\"rate_limited\""), "{res}");
    // Other routes have their own budget.
    let health = raw(addr, format!("GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.to_ascii_lowercase().contains("strict-transport-security"), "{health}");

    let preflight = |origin: &str| {
        format!(
            "OPTIONS /api/servers HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n"
        )
    };
    let allowed = raw(addr, preflight("https://panel.example.test")).await.to_ascii_lowercase();
    assert!(allowed.contains("access-control-allow-origin: https://panel.example.test"), "{allowed}");
    let refused = raw(addr, preflight("https://evil.example.test")).await.to_ascii_lowercase();
    assert!(!refused.contains("access-control-allow-origin"), "{refused}");
}
