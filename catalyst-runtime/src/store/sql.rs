//! What SQLite and PostgreSQL share: error mapping, the result helpers every port uses, row
//! types (`rows.rs`), and one macro that implements the store ports for a concrete `sqlx`
//! database. The SQL uses `$N` placeholders, which both dialects accept; only bulk log appends
//! differ and live in each adapter.
//!
//! Each port's SQL is a `macro_rules!` in `sql/<port>.rs`, expanded inside `impl_sql_store!`:
//! code generic over `sqlx::Database` would need an `Executor`/`Encode`/`Decode` bound for
//! every type on every function, so the macro is the seam. It holds only SQL text, binds and
//! calls to the helpers here; decoding (`rows.rs`) and error handling are plain code.

use catalyst_core::model::Paged;
use catalyst_core::{Error, ErrorKind, Result};

mod rows;

pub(crate) use rows::*;

/// Map a sqlx error: uniqueness → `conflict`, references → `not_found` on insert (the
/// referenced row is missing) or `conflict` on delete (the row is still referenced).
fn constraint_err(e: sqlx::Error, unique: &str, reference: (ErrorKind, &str)) -> Error {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            // Both dialects name the index or column in the message.
            sqlx::error::ErrorKind::UniqueViolation if db.message().contains("external_id") => {
                return Error::conflict("external_id is taken");
            }
            sqlx::error::ErrorKind::UniqueViolation => return Error::conflict(unique.to_string()),
            sqlx::error::ErrorKind::ForeignKeyViolation => return Error::new(reference.0, reference.1.to_string()),
            // SQLite reports ON DELETE RESTRICT with the generic constraint code.
            _ if db.message().contains("FOREIGN KEY constraint failed") => {
                return Error::new(reference.0, reference.1.to_string());
            }
            _ => {}
        }
    }
    db_err(e)
}

/// Any other database failure.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::unavailable("the database is unavailable").with_source(e)
        }
        sqlx::Error::Database(db) if db.message().contains("database is locked") => {
            Error::unavailable("the database is busy; retry").with_source(sqlx::Error::Database(db))
        }
        other => Error::internal("database error", other),
    }
}

/// Decode failures of stored JSON or enums are internal errors.
pub(crate) fn decode_err(what: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal(format!("stored {what} is unreadable"), e)
}

/// A failed statement, as the helpers below take it: a raw sqlx error (mapped by [`db_err`]),
/// or one already given its meaning by [`OnConstraint::on_constraint`].
pub(crate) trait DbFailure {
    /// The core error.
    fn into_error(self) -> Error;
}

impl DbFailure for sqlx::Error {
    fn into_error(self) -> Error {
        db_err(self)
    }
}

impl DbFailure for Error {
    fn into_error(self) -> Error {
        self
    }
}

/// Give a write's constraint violations their meaning (after realworld-axum-sqlx's
/// `ResultExt::on_constraint`).
pub(crate) trait OnConstraint<T> {
    /// A unique violation is `conflict(unique)`; a broken reference is `reference.0` with
    /// message `reference.1`; anything else as [`db_err`].
    fn on_constraint(self, unique: &str, reference: (ErrorKind, &str)) -> Result<T>;
}

impl<T> OnConstraint<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, unique: &str, reference: (ErrorKind, &str)) -> Result<T> {
        self.map_err(|e| constraint_err(e, unique, reference))
    }
}

/// A reference that cannot break on this write.
pub(crate) const NO_REFERENCE: (ErrorKind, &str) = (ErrorKind::Internal, "unexpected reference");

/// How many rows a write touched, in either dialect.
pub(crate) trait Affected {
    /// Rows inserted, updated or deleted.
    fn affected(&self) -> u64;
}

#[cfg(feature = "sqlite")]
impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

#[cfg(feature = "postgres")]
impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The row `what` of a `fetch_optional`, decoded; `not_found` if there is none.
pub(crate) fn one<R, M: TryFrom<R, Error = Error>>(
    row: std::result::Result<Option<R>, impl DbFailure>,
    what: &str,
) -> Result<M> {
    row.map_err(DbFailure::into_error)?.ok_or_else(|| Error::not_found(what))?.try_into()
}

/// The row of a `fetch_optional`, decoded, if there is one.
pub(crate) fn maybe<R, M: TryFrom<R, Error = Error>>(
    row: std::result::Result<Option<R>, impl DbFailure>,
) -> Result<Option<M>> {
    row.map_err(DbFailure::into_error)?.map(M::try_from).transpose()
}

/// Every row of a `fetch_all`, decoded.
pub(crate) fn all<R, M: TryFrom<R, Error = Error>>(
    rows: std::result::Result<Vec<R>, impl DbFailure>,
) -> Result<Vec<M>> {
    rows.map_err(DbFailure::into_error)?.into_iter().map(M::try_from).collect()
}

/// A page of rows, decoded.
pub(crate) fn decoded<R, M: TryFrom<R, Error = Error>>(page: Paged<R>) -> Result<Paged<M>> {
    Ok(Paged { items: page.items.into_iter().map(M::try_from).collect::<Result<_>>()?, total: page.total })
}

/// A `COUNT(*)`.
pub(crate) fn count(n: std::result::Result<i64, impl DbFailure>) -> Result<u64> {
    n.map(to_u64).map_err(DbFailure::into_error)
}

/// How many rows a write touched.
pub(crate) fn affected(done: std::result::Result<impl Affected, impl DbFailure>) -> Result<u64> {
    done.map(|d| d.affected()).map_err(DbFailure::into_error)
}

/// A write whose count does not matter (an insert: failures are errors).
pub(crate) fn written(done: std::result::Result<impl Affected, impl DbFailure>) -> Result<()> {
    affected(done).map(drop)
}

/// A write of one row by id (a delete, a plain update): `not_found` if it found none.
pub(crate) fn found(done: std::result::Result<impl Affected, impl DbFailure>, what: &str) -> Result<()> {
    if affected(done)? == 0 { Err(Error::not_found(what)) } else { Ok(()) }
}

/// The conflict of a compare-and-swap update that lost.
pub(crate) fn stale(what: &str) -> Error {
    Error::conflict(format!("the {what} was modified concurrently; reload and retry"))
}

/// ` AND <sql><value>` when an optional filter is set (`sql` ends with its operator).
pub(crate) fn filter<'t, DB, T>(qb: &mut sqlx::QueryBuilder<DB>, sql: &str, value: Option<T>)
where
    DB: sqlx::Database,
    T: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(v) = value {
        qb.push(" AND ").push(sql).push_bind(v);
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A severity as its wire name, and back.
pub(crate) fn severity_str(s: catalyst_core::model::Severity) -> &'static str {
    use catalyst_core::model::Severity;
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

pub(crate) fn severity_from(s: &str) -> catalyst_core::Result<catalyst_core::model::Severity> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| decode_err("severity", e))
}

/// A unit enum's serde name (`"in_progress"`), for TEXT columns.
pub(crate) fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A unit enum from its serde name.
pub(crate) fn enum_from<T: serde::de::DeserializeOwned>(column: &str, s: &str) -> catalyst_core::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| decode_err(column, e))
}

/// Escape `%`, `_` and `\` for a `LIKE … ESCAPE '\'` prefix match.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[macro_use]
mod users;
#[macro_use]
mod nodes;
#[macro_use]
mod servers;
#[macro_use]
mod logs;
#[macro_use]
mod api_keys;
#[macro_use]
mod tasks;
#[macro_use]
mod metrics;
#[macro_use]
mod alerts;
#[macro_use]
mod backups;
#[macro_use]
mod allocations;

/// Implements every store port except [`catalyst_core::ports::LogStore::append_logs`]
/// (dialect-specific bulk path, provided by the adapter as `append_logs_impl`).
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        mod sql_impl {
            use async_trait::async_trait;
            use catalyst_core::id::*;
            use catalyst_core::model::*;
            use catalyst_core::ports::*;
            use catalyst_core::{Error, ErrorKind, Result};
            use sqlx::types::Json;
            use uuid::Uuid;

            use super::super::sql::*;
            use super::*;

            type Db = $db;
            type DbRow = <Db as sqlx::Database>::Row;
            type Builder = sqlx::QueryBuilder<Db>;

            async fn exists<'e>(db: impl sqlx::Executor<'e, Database = Db>, table: &str, id: Uuid) -> Result<bool> {
                let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db).await;
                Ok(row.map_err(db_err)?.is_some())
            }

            /// The row a compare-and-swap `UPDATE … WHERE id = … AND version = … RETURNING *`
            /// stored; none means the row is missing (`not_found`) or stale (`conflict`).
            async fn cas<'e, R>(
                db: impl sqlx::Executor<'e, Database = Db>,
                row: std::result::Result<Option<R>, impl DbFailure>,
                table: &str,
                id: Uuid,
                what: &str,
            ) -> Result<R> {
                match row.map_err(DbFailure::into_error)? {
                    Some(r) => Ok(r),
                    None if exists(db, table, id).await? => Err(stale(what)),
                    None => Err(Error::not_found(what)),
                }
            }

            /// One page of `SELECT * FROM <table> WHERE TRUE <narrow> ORDER BY <order>`, and
            /// how many rows `narrow` keeps in all.
            async fn select_page<R>(
                pool: &sqlx::Pool<Db>,
                table: &str,
                narrow: impl Fn(&mut Builder),
                order: &str,
                page: Page,
            ) -> Result<Paged<R>>
            where
                R: for<'r> sqlx::FromRow<'r, DbRow> + Send + Unpin,
            {
                let mut rows = Builder::new(format!("SELECT * FROM {table} WHERE TRUE"));
                narrow(&mut rows);
                rows.push(format!(" ORDER BY {order} LIMIT "))
                    .push_bind(i64::from(page.effective_limit()))
                    .push(" OFFSET ")
                    .push_bind(to_i64(page.offset));
                let items = rows.build_query_as::<R>().fetch_all(pool).await.map_err(db_err)?;
                let mut total = Builder::new(format!("SELECT COUNT(*) FROM {table} WHERE TRUE"));
                narrow(&mut total);
                Ok(Paged { items, total: count(total.build_query_scalar::<i64>().fetch_one(pool).await)? })
            }

            /// The number the database gave the row `id` of `table` on insert (SQLite's
            /// trigger sets it after the insert, where `RETURNING` does not see it).
            async fn number_of<'e>(db: impl sqlx::Executor<'e, Database = Db>, table: &str, id: Uuid) -> Result<u64> {
                let sql = format!("SELECT number FROM {table} WHERE id = $1");
                count(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(db).await)
            }

            /// A filter that keeps every row.
            fn everything(_: &mut Builder) {}

            sql_users!($store);
            sql_nodes!($store);
            sql_servers!($store);
            sql_logs!($store);
            sql_api_keys!($store);
            sql_tasks!($store);
            sql_metrics!($store);
            sql_alerts!($store);
            sql_backups!($store);
            sql_allocations!($store);
        }
    };
}
