//! `/api/application` for billing modules, through the whole router (API key, RBAC, SQLite,
//! Pterodactyl's JSON), each against Catalyst's own route in the same run:
//! - `POST /api/application/servers` with `deploy` across 50 nodes × 1000 allocations (placement:
//!   capacity per node, a random free allocation) vs `POST /api/servers` naming the node and port;
//! - pages of 50 of 10 000 servers, `GET /api/application/servers?page=N` vs `GET /api/servers`.
//!
//! Goals (issue 16): create p99 under 50 ms, a page under 20 ms.
//!
//! Run: `cargo bench -p catalyst-http --bench application`

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalyst_core::model::{Limits, PoolEntry};
use catalyst_core::testing::conformance::fixtures;
use catalyst_runtime::testing::TestWorld;
use serde_json::{Value, json};
use tower::ServiceExt;

const NODES: usize = 50;
const POOL: u16 = 1000;
const CREATES: usize = 200;
const SERVERS: usize = 10_000;
const PAGES: usize = 100;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

async fn call(app: &axum::Router, key: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("response");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn timed(app: &axum::Router, key: &str, method: &str, path: &str, body: Option<Value>) -> Duration {
    let start = Instant::now();
    let (status, v) = call(app, key, method, path, body).await;
    let took = start.elapsed();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    took
}

fn report(what: &str, ours: &mut [Duration], base: &mut [Duration], goal: Duration) {
    let (p50, p99) = (percentile(ours, 0.5), percentile(ours, 0.99));
    let (b50, b99) = (percentile(base, 0.5), percentile(base, 0.99));
    println!("{what}");
    println!("  /api/application: p50 {p50:?}, p99 {p99:?} (goal p99 < {goal:?})");
    println!("  Catalyst's route:  p50 {b50:?}, p99 {b99:?}");
    println!("  ratio p99: {:.2} of the baseline's", p99.as_secs_f64() / b99.as_secs_f64());
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let w = TestWorld::sqlite().await.with_admin().build().await;
        let owner = w.admin.user_id().expect("the admin is a user");
        let store = w.store.as_ref();
        let loc = store.create_location(&fixtures::location("bench")).await.expect("loc");
        let template = store.create_template(&fixtures::template("bench")).await.expect("template");
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let mut node = fixtures::node(&format!("bench-{i}"), loc.id);
            node.memory_mb = 1 << 30;
            node.disk_mb = 1 << 40;
            let node = store.create_node(&node).await.expect("node");
            let pool: Vec<PoolEntry> = (0..POOL)
                .map(|p| PoolEntry { ip: "10.0.0.1".into(), port: 20_000 + p, alias: None, notes: None })
                .collect();
            store.add_allocations(node.id, &pool).await.expect("pool");
            nodes.push(node);
        }
        // 10 000 servers spread over the nodes, on ports outside the pools' range.
        for i in 0..SERVERS {
            let node = &nodes[i % NODES];
            let port = 1 + (i / NODES) as u16;
            let mut s = fixtures::server(&format!("s{i}"), owner, node.id, template.id, port);
            s.limits = Limits { memory_mb: 16, disk_mb: 16, ..Limits::default() };
            store.create_server(&s).await.expect("server");
        }
        let config = catalyst_http::HttpConfig {
            rate_limits: catalyst_http::limits::RateLimits::unlimited(),
            ..Default::default()
        };
        let app = catalyst_http::router_with(w.catalyst.clone(), Some(w.hub.clone()), &config);
        let admin = w.login(catalyst_runtime::testing::ADMIN_EMAIL, catalyst_runtime::testing::ADMIN_PASSWORD).await;
        let scopes = ["admin.users", "server.create", "server.read", "server.delete", "node.read", "template.read"];
        let (_, key) = call(&app, &admin, "POST", "/api/admin/api-keys", Some(json!({"name": "bench", "scopes": scopes}))).await;
        let key = key["key"].as_str().expect("key").to_string();
        let (_, me) = call(&app, &key, "GET", "/api/auth/me", None).await;
        let user_number = me["user"]["number"].as_u64().expect("number");

        // Creates, interleaved: deploy through the dialect vs a named node and port natively.
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for i in 0..CREATES {
            let deploy = json!({"name": format!("d{i}"), "user": user_number, "egg": template.number,
                                "limits": {"memory": 16, "swap": 0, "disk": 16, "io": 500, "cpu": 100},
                                "feature_limits": {"databases": 0, "allocations": 1, "backups": 1},
                                "deploy": {"locations": [loc.number], "dedicated_ip": false, "port_range": ["20000-20999"]},
                                "environment": {}, "nest": 1});
            ours.push(timed(&app, &key, "POST", "/api/application/servers", Some(deploy)).await);
            let node = &nodes[i % NODES];
            let native = json!({"name": format!("n{i}"), "owner_id": owner, "node_id": node.id, "template_id": template.id,
                                "limits": {"memory_mb": 16, "disk_mb": 16},
                                "allocations": [{"ip": "10.0.0.2", "port": 30_000 + i as u16}]});
            base.push(timed(&app, &key, "POST", "/api/servers", Some(native)).await);
        }
        println!("\n== create a server: {NODES} nodes x {POOL} allocations, {} servers, {CREATES} creates each ==", SERVERS);
        report("POST /api/application/servers with deploy vs POST /api/servers with node_id", &mut ours, &mut base, Duration::from_millis(50));

        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let total_pages = (SERVERS + 2 * CREATES).div_ceil(50);
        for i in 0..PAGES {
            let page = 1 + (i * 37) % total_pages;
            ours.push(timed(&app, &key, "GET", &format!("/api/application/servers?page={page}&per_page=50"), None).await);
            let offset = (page - 1) * 50;
            base.push(timed(&app, &key, "GET", &format!("/api/servers?offset={offset}&limit=50"), None).await);
        }
        println!("\n== a page of 50 of {} servers, {PAGES} pages each ==", SERVERS + 2 * CREATES);
        report("GET /api/application/servers?page=N vs GET /api/servers?offset=…", &mut ours, &mut base, Duration::from_millis(20));
    });
}
