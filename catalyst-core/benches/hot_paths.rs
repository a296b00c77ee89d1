//! Pure hot paths: a lifecycle transition, an authorization check, a template render.
//! Floors (issue #2): transition < 1 µs, authorize < 1 µs.
//!
//! Run: `cargo bench -p catalyst-core --bench hot_paths`

use std::hint::black_box;

use catalyst_core::id::{ServerId, UserId};
use catalyst_core::lifecycle::{Event, ServerState, apply};
use catalyst_core::permission::{Permission, PermissionSet, Principal, Scope, ServerAuthz, authorize};
use catalyst_core::render::{RenderContext, render};
use criterion::{Criterion, criterion_group, criterion_main};

fn hot_paths(c: &mut Criterion) {
    c.bench_function("lifecycle::apply running+restart", |b| {
        b.iter(|| apply(black_box(ServerState::Running), black_box(Event::Restart)))
    });
    c.bench_function("lifecycle::apply refused", |b| {
        b.iter(|| apply(black_box(ServerState::Suspended), black_box(Event::Start)))
    });

    let owner = UserId::new();
    let subuser = UserId::new();
    let authz = ServerAuthz {
        server_id: ServerId::new(),
        owner_id: owner,
        subuser: Some(PermissionSet::from_patterns(&["server.read", "console.*"]).unwrap_or_default()),
    };
    let owner_p = Principal::user(owner, PermissionSet::EMPTY);
    let sub_p = Principal::user(subuser, PermissionSet::EMPTY);
    c.bench_function("permission::authorize owner", |b| {
        b.iter(|| authorize(black_box(&owner_p), black_box(Permission::ServerStart), Scope::Server(black_box(&authz))))
    });
    c.bench_function("permission::authorize subuser denied", |b| {
        b.iter(|| authorize(black_box(&sub_p), black_box(Permission::ServerStop), Scope::Server(black_box(&authz))))
    });

    let ctx = RenderContext::new()
        .with("SERVER_MEMORY", "4096")
        .with("SERVER_PORT", "25565")
        .with("SERVER_JAR", "paper-1.21.jar")
        .with("MOTD", "A Catalyst server");
    let startup =
        "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JAR}} --port {{SERVER_PORT}} --motd \"{{MOTD}}\" nogui";
    c.bench_function("render::render startup (4 vars)", |b| b.iter(|| render(black_box(startup), black_box(&ctx))));
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
