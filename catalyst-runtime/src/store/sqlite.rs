//! SQLite: the embedded default. One file in WAL mode.

use std::path::Path;
use std::str::FromStr;

use catalyst_core::model::ServerLog;
use catalyst_core::{Error, ErrorKind, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{OnConstraint, db_err};

/// SQLite's limit on bound parameters per statement.
const MAX_PARAMS: usize = 32_766;
const LOG_COLUMNS: usize = 5;

/// Every store port on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and run migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        Self::with_options(options, 4).await
    }

    /// Open from a `sqlite:` URL (e.g. `sqlite://catalyst.db`); `sqlite::memory:` keeps one connection.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        // An in-memory database exists per connection: keep exactly one.
        let connections = if url.contains(":memory:") || url.contains("mode=memory") { 1 } else { 4 };
        let options = if connections == 1 { options } else { options.journal_mode(SqliteJournalMode::Wal) };
        Self::with_options(options, connections).await
    }

    async fn with_options(options: SqliteConnectOptions, connections: u32) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable("cannot open the SQLite database").with_source(e))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| Error::internal("SQLite migration failed", e))?;
        Ok(Self { pool })
    }

    /// Write transactions take the write lock up front (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads first cannot upgrade once another writer committed, and would
    /// fail at once instead of waiting for the busy timeout.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
    }

    /// Multi-row INSERTs in chunks under the parameter limit, one transaction.
    async fn append_logs_impl(&self, lines: &[ServerLog]) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let mut added = 0;
        for chunk in lines.chunks(MAX_PARAMS / LOG_COLUMNS) {
            let mut qb =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO server_logs (server_id, seq, stream, line, at) ");
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(l.server_id.0)
                    .push_bind(l.seq)
                    .push_bind(l.stream.as_str())
                    .push_bind(&l.line)
                    .push_bind(l.at);
            });
            qb.push(" ON CONFLICT (server_id, seq) DO NOTHING");
            let done =
                qb.build().execute(&mut *tx).await.on_constraint("", (ErrorKind::NotFound, "server not found"))?;
            added += done.rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        Ok(added)
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite);

#[async_trait::async_trait]
impl catalyst_core::ports::StoreLifecycle for SqliteStore {
    async fn close(&self) {
        self.pool.close().await;
    }
}
