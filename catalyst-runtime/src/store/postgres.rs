//! PostgreSQL: the production store, shared by several control-plane instances.

use std::str::FromStr;

use catalyst_core::model::ServerLog;
use catalyst_core::{Error, ErrorKind, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::{OnConstraint, db_err};

/// Every store port on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connect to `url` and run migrations. With `schema`, every table lives in that schema
    /// (created if missing), which lets tests and tenants share one database.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| Error::invalid(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
                return Err(Error::invalid("schema names are letters, digits and '_'"));
            }
            let bootstrap = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(|e| Error::unavailable("cannot reach PostgreSQL").with_source(e))?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
                .execute(&bootstrap)
                .await
                .map_err(db_err)?;
            bootstrap.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable("cannot reach PostgreSQL").with_source(e))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| Error::internal("PostgreSQL migration failed", e))?;
        Ok(Self { pool })
    }

    /// Drop a schema created by [`PostgresStore::connect`] (test clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid("schema names are letters, digits and '_'"));
        }
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await.map_err(db_err)?;
        let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        // A store still writing in the schema can deadlock with the drop; PostgreSQL aborts one
        // side, and the drop goes through on a second try.
        let mut tries = 0;
        let dropped = loop {
            tries += 1;
            match sqlx::query(sqlx::AssertSqlSafe(drop.clone())).execute(&pool).await {
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") && tries < 5 => continue,
                other => break other,
            }
        };
        pool.close().await;
        dropped.map(|_| ()).map_err(db_err)
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    /// One statement over arrays (`UNNEST`): no parameter limit, one round trip, idempotent.
    async fn append_logs_impl(&self, lines: &[ServerLog]) -> Result<u64> {
        let mut servers = Vec::with_capacity(lines.len());
        let mut seqs = Vec::with_capacity(lines.len());
        let mut streams = Vec::with_capacity(lines.len());
        let mut texts = Vec::with_capacity(lines.len());
        let mut ats = Vec::with_capacity(lines.len());
        for l in lines {
            servers.push(l.server_id.0);
            seqs.push(l.seq);
            streams.push(l.stream.as_str());
            texts.push(l.line.as_str());
            ats.push(l.at);
        }
        let done = sqlx::query(
            "INSERT INTO server_logs (server_id, seq, stream, line, at) \
             SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[]) \
             ON CONFLICT (server_id, seq) DO NOTHING",
        )
        .bind(servers)
        .bind(seqs)
        .bind(streams)
        .bind(texts)
        .bind(ats)
        .execute(&self.pool)
        .await
        .on_constraint("", (ErrorKind::NotFound, "server not found"))?;
        Ok(done.rows_affected())
    }
}

impl_sql_store!(PostgresStore, sqlx::Postgres);

#[async_trait::async_trait]
impl catalyst_core::ports::StoreLifecycle for PostgresStore {
    async fn close(&self) {
        self.pool.close().await;
    }
}
