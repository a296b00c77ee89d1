//! Store throughput: servers created per second and console lines appended per second in
//! batches, on SQLite and PostgreSQL, each next to a baseline of raw sqlx inserts of the same
//! rows into a bare table (no keys, no conflict handling) in the same run.
//! Floors (issue #2): 50 000 lines/s on SQLite, 40 000 lines/s on PostgreSQL.
//!
//! Run: `CATALYST_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p catalyst-runtime --bench stores`

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU16, Ordering};

use catalyst_core::model::{LogStream, ServerLog};
use catalyst_core::ports::Store;
use catalyst_core::testing::conformance::fixtures;
use catalyst_runtime::store::{PostgresStore, SqliteStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 1000;

struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    server: catalyst_core::model::Server,
}

async fn subject(name: &'static str, store: Arc<dyn Store>) -> Subject {
    let owner = fixtures::user("bench");
    store.create_user(&owner).await.expect("user");
    let loc = fixtures::location("bench");
    store.create_location(&loc).await.expect("loc");
    let node = fixtures::node("bench", loc.id);
    store.create_node(&node).await.expect("node");
    let template = fixtures::template("bench");
    store.create_template(&template).await.expect("template");
    let server = fixtures::server("bench", owner.id, node.id, template.id, 1);
    store.create_server(&server).await.expect("server");
    Subject { name, store, server }
}

fn lines(server: &catalyst_core::model::Server, seq: &AtomicI64) -> Vec<ServerLog> {
    let start = seq.fetch_add(BATCH as i64, Ordering::Relaxed);
    (0..BATCH as i64)
        .map(|i| ServerLog {
            server_id: server.id,
            seq: start + i,
            stream: LogStream::Stdout,
            line: format!("[12:00:00 INFO]: Player{} joined the game (line {})", i % 20, start + i),
            at: fixtures::now(),
        })
        .collect()
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut subjects = vec![];
    let sqlite = rt.block_on(SqliteStore::open(&dir.path().join("bench.db"))).expect("sqlite");
    subjects.push(rt.block_on(subject("sqlite", Arc::new(sqlite))));
    let pg_url = std::env::var("CATALYST_TEST_POSTGRES_URL").ok();
    let schema = format!("catalyst_bench_{}", std::process::id());
    match &pg_url {
        Some(url) => {
            let pg = rt.block_on(PostgresStore::connect(url, Some(&schema))).expect("postgres");
            subjects.push(rt.block_on(subject("postgres", Arc::new(pg))));
        }
        None => eprintln!("!!! SKIPPED: PostgreSQL benchmarks (set CATALYST_TEST_POSTGRES_URL)"),
    }

    for s in &subjects {
        let mut group = c.benchmark_group(format!("{}/logs", s.name));
        group.throughput(Throughput::Elements(BATCH as u64));
        let seq = AtomicI64::new(1);
        group.bench_function("append_logs batch of 1000", |b| {
            b.to_async(&rt).iter(|| async {
                let batch = lines(&s.server, &seq);
                s.store.append_logs(&batch).await.expect("append")
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("{}/servers", s.name));
        group.throughput(Throughput::Elements(1));
        let port = AtomicU16::new(2);
        group.bench_function("create_server", |b| {
            b.to_async(&rt).iter(|| async {
                let mut srv = s.server.clone();
                srv.id = catalyst_core::id::ServerId::new();
                srv.allocations[0].port = port.fetch_add(1, Ordering::Relaxed).max(2);
                if srv.allocations[0].port == u16::MAX {
                    port.store(2, Ordering::Relaxed);
                }
                srv.allocations[0].ip = format!("10.{}.0.1", srv.allocations[0].port % 200);
                s.store.create_server(&srv).await.expect("create")
            })
        });
        group.finish();
    }

    // Baselines: the same rows through raw sqlx into bare tables.
    let raw = rt
        .block_on(sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("raw.db").display())))
        .expect("raw sqlite");
    rt.block_on(sqlx::query("PRAGMA journal_mode=WAL").execute(&raw)).expect("wal");
    rt.block_on(
        sqlx::query("CREATE TABLE raw_logs (server_id BLOB, seq INTEGER, stream TEXT, line TEXT, at TEXT)")
            .execute(&raw),
    )
    .expect("table");
    let mut group = c.benchmark_group("sqlite/logs");
    group.throughput(Throughput::Elements(BATCH as u64));
    let seq = AtomicI64::new(1);
    let server = subjects[0].server.clone();
    group.bench_function("baseline raw sqlx multi-row insert", |b| {
        b.to_async(&rt).iter(|| async {
            let batch = lines(&server, &seq);
            let mut tx = raw.begin().await.expect("tx");
            let mut qb =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO raw_logs (server_id, seq, stream, line, at) ");
            qb.push_values(&batch, |mut b, l| {
                b.push_bind(l.server_id.0)
                    .push_bind(l.seq)
                    .push_bind(l.stream.as_str())
                    .push_bind(&l.line)
                    .push_bind(l.at);
            });
            qb.build().execute(&mut *tx).await.expect("insert");
            tx.commit().await.expect("commit");
        })
    });
    group.finish();

    if let Some(url) = &pg_url {
        let pool = rt.block_on(sqlx::PgPool::connect(url)).expect("raw pg");
        rt.block_on(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {schema}.raw_logs (server_id uuid, seq int8, stream text, line text, at timestamptz)"
            )))
            .execute(&pool),
        )
        .expect("table");
        let mut group = c.benchmark_group("postgres/logs");
        group.throughput(Throughput::Elements(BATCH as u64));
        let seq = AtomicI64::new(1);
        group.bench_function("baseline raw COPY", |b| {
            b.to_async(&rt).iter(|| async {
                let batch = lines(&server, &seq);
                let mut text = String::with_capacity(batch.len() * 96);
                for l in &batch {
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\n",
                        l.server_id.0,
                        l.seq,
                        l.stream.as_str(),
                        l.line,
                        l.at.to_rfc3339()
                    ));
                }
                let mut conn = pool.acquire().await.expect("conn");
                let mut copy = conn.copy_in_raw(&format!("COPY {schema}.raw_logs FROM STDIN")).await.expect("copy");
                copy.send(text.as_bytes()).await.expect("send");
                copy.finish().await.expect("finish");
            })
        });
        group.finish();
        rt.block_on(PostgresStore::drop_schema(url, &schema)).expect("drop schema");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = stores
}
criterion_main!(benches);
