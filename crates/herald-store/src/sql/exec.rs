//! Running a query on either database from code written once.
//!
//! Code generic over sqlx's `Database` must name, in a `where` clause on every function and
//! `impl`, each capability it uses (every type it binds or reads, the executor), and Rust has
//! no way to state them once. So the generic code here does not call sqlx directly: it builds
//! a [`Query`] (text for both dialects, and values as [`Arg`]s) and runs it on a [`Target`].
//! Only the two implementations of [`Run`] (SQLite's and PostgreSQL's connection) meet sqlx,
//! with concrete types, so every other function needs nothing but `DB: Backend`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex, PoisonError};

use serde::de::DeserializeOwned;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Arguments, Database, Encode, FromRow, Pool, Sqlite, Type};

use super::{Backend, Sql};
use crate::{Error, ErrorKind};

/// A row type both databases can read: anything that derives `sqlx::FromRow` (read by column
/// name), and tuples (read by position). It also derives `serde::Deserialize`, for SQLite's
/// committing thread, which reads its rows without sqlx (`sqlite/writer.rs`).
#[cfg(feature = "postgres")]
pub trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + DeserializeOwned + Send + Unpin
{
}

#[cfg(feature = "postgres")]
impl<T> Row for T where
    T: for<'r> FromRow<'r, SqliteRow>
        + for<'r> FromRow<'r, PgRow>
        + DeserializeOwned
        + Send
        + Unpin
{
}

/// A row type SQLite can read (PostgreSQL is not compiled in).
#[cfg(not(feature = "postgres"))]
pub trait Row: for<'r> FromRow<'r, SqliteRow> + DeserializeOwned + Send + Unpin {}

#[cfg(not(feature = "postgres"))]
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + DeserializeOwned + Send + Unpin {}

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub enum Arg<'a> {
    /// Text, or SQL `NULL`.
    Text(Option<&'a str>),
    /// Text made for this query (a batch's JSON, say), or `NULL`.
    Owned(Option<String>),
    /// A 64-bit integer, or `NULL`.
    Int(Option<i64>),
    /// A boolean, or `NULL`.
    Bool(Option<bool>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(value: &'a Option<String>) -> Self {
        Arg::Text(value.as_deref())
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Arg::Owned(Some(value))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        Arg::Owned(value)
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl From<u32> for Arg<'_> {
    fn from(value: u32) -> Self {
        Arg::Int(Some(i64::from(value)))
    }
}

impl From<Option<u32>> for Arg<'_> {
    fn from(value: Option<u32>) -> Self {
        Arg::Int(value.map(i64::from))
    }
}

impl From<bool> for Arg<'_> {
    fn from(value: bool) -> Self {
        Arg::Bool(Some(value))
    }
}

impl From<Option<bool>> for Arg<'_> {
    fn from(value: Option<bool>) -> Self {
        Arg::Bool(value)
    }
}

/// A query and the values of its placeholders, ready to run on either database.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    sql: Sql,
    args: Vec<Arg<'a>>,
}

/// Starts a query: a literal that both dialects share, or a [`Sql`] written with
/// `sql!` fragments.
pub fn query<'a>(sql: impl Into<Sql>) -> Query<'a> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl From<&'static str> for Sql {
    fn from(text: &'static str) -> Sql {
        Sql {
            sqlite: text,
            postgres: text,
        }
    }
}

impl<'a> Query<'a> {
    /// Binds the next placeholder (`$1`, then `$2`…).
    pub fn bind(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Its text for SQLite.
    pub(crate) fn sqlite_text(&self) -> &'static str {
        self.sql.sqlite
    }

    /// The values bound to its placeholders, `$1` first.
    pub(crate) fn args(&self) -> &[Arg<'a>] {
        &self.args
    }

    /// Runs it; how many rows it changed.
    pub async fn execute<DB: Backend>(self, on: impl Target<DB>) -> Result<u64, Error> {
        on.execute(self).await
    }

    /// Runs it; every row.
    pub async fn fetch_all<DB: Backend, T: Row>(
        self,
        on: impl Target<DB>,
    ) -> Result<Vec<T>, Error> {
        on.fetch_all(self).await
    }

    /// Runs it; the first row, if any.
    pub async fn fetch_optional<DB: Backend, T: Row>(
        self,
        on: impl Target<DB>,
    ) -> Result<Option<T>, Error> {
        on.fetch_optional(self).await
    }

    /// Runs it; the first row, which must exist.
    pub async fn fetch_one<DB: Backend, T: Row>(self, on: impl Target<DB>) -> Result<T, Error> {
        on.fetch_optional(self)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Database, "the query returned no row"))
    }

    /// The values as `DB`'s arguments: the one place the types herald binds meet sqlx's
    /// encoders, called only where `DB` is a concrete database.
    fn arguments<DB: Database>(&self) -> Result<DB::Arguments, Error>
    where
        for<'q> &'q str: Encode<'q, DB> + Type<DB>,
        for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
    {
        let mut arguments = DB::Arguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(text) => arguments.add(*text),
                Arg::Owned(text) => arguments.add(text.as_deref()),
                Arg::Int(int) => arguments.add(*int),
                Arg::Bool(flag) => arguments.add(*flag),
            }
            .map_err(|e| Error::new(ErrorKind::Database, format!("cannot bind a value: {e}")))?;
        }
        Ok(arguments)
    }
}

/// Runs `writes` (in order), and returns `last` for the caller to run after them: on a database
/// that can ([`Backend::TOGETHER`]), nothing runs yet and `last` comes back holding the writes,
/// so that all of them take one round trip; elsewhere the writes run here, one by one.
///
/// `last` must not need to see what the writes did: on PostgreSQL they become data-modifying
/// `WITH` queries of `last`, which run on the same snapshot as it.
pub(crate) async fn after<'q, DB: Backend>(
    db: &mut impl Run<DB>,
    writes: Vec<Query<'q>>,
    last: Query<'q>,
) -> Result<Query<'q>, Error> {
    if writes.is_empty() {
        return Ok(last);
    }
    if DB::TOGETHER {
        return Ok(together(writes, last));
    }
    for write in writes {
        db.execute(write).await?;
    }
    Ok(last)
}

/// `writes` and `last` as one PostgreSQL statement: each write a `WITH` query of `last`, the
/// placeholders of each statement numbered after the ones before it. The text is made once per
/// list of statements and kept, as a prepared statement's text must live as long as the pool.
fn together<'q>(writes: Vec<Query<'q>>, last: Query<'q>) -> Query<'q> {
    // Each statement's text, and how many values it binds.
    type Parts = Vec<(&'static str, usize)>;
    static MADE: LazyLock<Mutex<HashMap<Parts, &'static str>>> = LazyLock::new(Mutex::default);
    let parts: Parts = writes
        .iter()
        .chain([&last])
        .map(|q| (q.sql.postgres, q.args.len()))
        .collect();
    let text = *MADE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(parts)
        .or_insert_with_key(|parts| Box::leak(joined(parts).into_boxed_str()));
    let args = writes
        .into_iter()
        .chain([last])
        .flat_map(|q| q.args)
        .collect();
    Query {
        sql: Sql {
            sqlite: text,
            postgres: text,
        },
        args,
    }
}

/// The text of [`together`]: each part (a statement's text, and how many values it binds) but
/// the last as a `WITH` query of the last (whose own `WITH` list, if it has one, follows
/// theirs), each part's `$k` moved up by the number of values bound before it.
fn joined(parts: &[(&str, usize)]) -> String {
    let mut offset = 0;
    let renumbered: Vec<String> = parts
        .iter()
        .map(|(part, count)| {
            let text = renumber(part, offset);
            offset += count;
            text
        })
        .collect();
    let Some((last, writes)) = renumbered.split_last() else {
        return String::new();
    };
    if writes.is_empty() {
        return last.clone();
    }
    let withs: Vec<String> = writes
        .iter()
        .enumerate()
        .map(|(i, write)| format!("herald_write_{i} AS ({write})"))
        .collect();
    match last.strip_prefix("WITH ") {
        Some(rest) => format!("WITH {}, {rest}", withs.join(", ")),
        None => format!("WITH {} {last}", withs.join(", ")),
    }
}

/// `text` with each placeholder `$k` outside string literals made `$(k + offset)`.
fn renumber(text: &str, offset: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\'' {
            quoted = !quoted;
        } else if c == '$' && !quoted {
            let mut digits = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            match digits.parse::<usize>() {
                Ok(k) => out.push_str(&(k + offset).to_string()),
                Err(_) => out.push_str(&digits),
            }
        }
    }
    out
}

/// A database connection that runs [`Query`]s: SQLite's and PostgreSQL's.
pub trait Run<DB>: Send {
    /// Runs `query`; how many rows it changed.
    fn execute(&mut self, query: Query<'_>) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Runs `query`; every row.
    fn fetch_all<T: Row>(
        &mut self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Vec<T>, Error>> + Send;

    /// Runs `query`; the first row, if any.
    fn fetch_optional<T: Row>(
        &mut self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Option<T>, Error>> + Send;
}

/// Implements [`Run`] for a database's connection, picking its dialect's text.
macro_rules! run_on {
    ($db:ty, $connection:ty, $dialect:ident) => {
        impl Run<$db> for $connection {
            async fn execute(&mut self, query: Query<'_>) -> Result<u64, Error> {
                let arguments = query.arguments::<$db>()?;
                let done = sqlx::query_with(query.sql.$dialect, arguments)
                    .execute(self)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn fetch_all<T: Row>(&mut self, query: Query<'_>) -> Result<Vec<T>, Error> {
                let arguments = query.arguments::<$db>()?;
                Ok(sqlx::query_as_with(query.sql.$dialect, arguments)
                    .fetch_all(self)
                    .await?)
            }

            async fn fetch_optional<T: Row>(
                &mut self,
                query: Query<'_>,
            ) -> Result<Option<T>, Error> {
                let arguments = query.arguments::<$db>()?;
                Ok(sqlx::query_as_with(query.sql.$dialect, arguments)
                    .fetch_optional(self)
                    .await?)
            }
        }
    };
}

run_on!(Sqlite, SqliteConnection, sqlite);
#[cfg(feature = "postgres")]
run_on!(Postgres, PgConnection, postgres);

/// Where a query runs: a connection (or a transaction, through `&mut *tx`), or a pool, which
/// lends a connection for the one query.
pub trait Target<DB: Backend>: Send {
    /// Runs `query`; how many rows it changed.
    fn execute(self, query: Query<'_>) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Runs `query`; every row.
    fn fetch_all<T: Row>(
        self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Vec<T>, Error>> + Send;

    /// Runs `query`; the first row, if any.
    fn fetch_optional<T: Row>(
        self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Option<T>, Error>> + Send;
}

impl<DB: Backend, C: Run<DB>> Target<DB> for &mut C {
    async fn execute(self, query: Query<'_>) -> Result<u64, Error> {
        Run::execute(self, query).await
    }

    async fn fetch_all<T: Row>(self, query: Query<'_>) -> Result<Vec<T>, Error> {
        Run::fetch_all(self, query).await
    }

    async fn fetch_optional<T: Row>(self, query: Query<'_>) -> Result<Option<T>, Error> {
        Run::fetch_optional(self, query).await
    }
}

impl<DB: Backend> Target<DB> for &Pool<DB> {
    async fn execute(self, query: Query<'_>) -> Result<u64, Error> {
        Run::execute(&mut *self.acquire().await?, query).await
    }

    async fn fetch_all<T: Row>(self, query: Query<'_>) -> Result<Vec<T>, Error> {
        Run::fetch_all(&mut *self.acquire().await?, query).await
    }

    async fn fetch_optional<T: Row>(self, query: Query<'_>) -> Result<Option<T>, Error> {
        Run::fetch_optional(&mut *self.acquire().await?, query).await
    }
}

#[cfg(test)]
mod tests {
    use super::{joined, renumber};

    #[test]
    fn placeholders_move_up_past_the_values_bound_before_them() {
        assert_eq!(
            renumber("SELECT $1, $2 WHERE a = '$1' AND b = $10", 3),
            "SELECT $4, $5 WHERE a = '$1' AND b = $13"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }

    #[test]
    fn writes_become_with_queries_of_the_last_statement() {
        let text = joined(&[
            ("INSERT INTO a SELECT $1", 1),
            ("INSERT INTO b SELECT $1, $2", 2),
            ("SELECT x FROM c WHERE y = $1", 1),
        ]);
        assert_eq!(
            text,
            "WITH herald_write_0 AS (INSERT INTO a SELECT $1), \
             herald_write_1 AS (INSERT INTO b SELECT $2, $3) SELECT x FROM c WHERE y = $4"
        );
    }

    #[test]
    fn a_statement_alone_is_itself() {
        assert_eq!(joined(&[("SELECT $1", 1)]), "SELECT $1");
    }

    #[test]
    fn a_last_statement_with_its_own_with_list_continues_it() {
        let text = joined(&[
            ("INSERT INTO a SELECT $1", 1),
            ("WITH o AS (SELECT $1) SELECT * FROM o", 1),
        ]);
        assert_eq!(
            text,
            "WITH herald_write_0 AS (INSERT INTO a SELECT $1), o AS (SELECT $2) SELECT * FROM o"
        );
    }
}
