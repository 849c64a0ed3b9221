//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single connection, so they never contend for SQLite's one write lock
//! (no `SQLITE_BUSY` under load) and a claim is exclusive without row locks; reads use a pool
//! of their own. `synchronous = FULL`: an event is on disk before it is reported accepted.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::batch;
use crate::group::{Apply, Committer, Write, Written};
use crate::log::{ReplayRow, StatsRow, replay_columns, replay_from_row, stats_from_row};
use crate::{
    Accepted, Attempt, Claimed, Delivery, DeliveryRow, Endpoint, EndpointPatch, EndpointSecret,
    Error, ErrorKind, Event, EventRow, Millis, NewEndpoint, NewEvent, NewToken, Outcome,
    QueueFigures, Store, Tenant, Token, TokenRow, classify, delivery_from_row, event_from_row,
    headers_from_json, headers_to_json, new_id, token_from_row,
};
use crate::{
    AttemptRow, AttemptStats, DeliveryFilter, DeliveryState, EventFilter, Replay, ReplayState,
    attempt_columns, attempt_from_row, delivery_columns, disabled_endpoint,
};

/// herald's store in a SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    committer: Committer,
}

/// Applies batches of writes on the writer connection.
struct Writes(SqlitePool);

#[async_trait]
impl Apply for Writes {
    async fn apply(&self, writes: &[Write]) -> Result<Vec<Written>, Error> {
        let mut tx = self.0.begin().await?;
        let written = batch::apply(&mut *tx, writes).await?;
        tx.commit().await?;
        Ok(written)
    }
}

type EndpointRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    Option<i64>,
    i64,
);

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, e.g. `sqlite://herald.db`, and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, Error> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Database,
                    format!("`{url}` is not a SQLite URL: {e}"),
                )
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            committer: Committer::start(Writes(writer.clone())),
            writer,
            reader,
        })
    }

    /// The pool that writes; begin a transaction on it to join herald's writes to your own
    /// (see [`accept_event_in`]).
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// A private in-memory database, for tests and examples.
    pub async fn open_in_memory() -> Result<SqliteStore, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            committer: Committer::start(Writes(pool.clone())),
            writer: pool.clone(),
            reader: pool,
        })
    }
}

fn endpoint_from_row(row: EndpointRow) -> Result<Endpoint, Error> {
    let (id, tenant_id, url, description, types, headers, enabled, reason, failing, created) = row;
    Ok(Endpoint {
        id,
        tenant_id,
        url,
        description,
        event_types: serde_json::from_str(&types)
            .map_err(|e| Error::new(ErrorKind::Corrupt, format!("stored event types: {e}")))?,
        headers: headers_from_json(&headers)?,
        enabled,
        disabled_reason: reason,
        failing_since: failing,
        created_at: created,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, id: &str, now: Millis) -> Result<Tenant, Error> {
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES (?, ?)")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(|e| classify(e, &format!("tenant `{id}`")))?;
        Ok(Tenant {
            id: id.into(),
            created_at: now,
        })
    }

    async fn server_key(&self, name: &str, candidate: &str) -> Result<String, Error> {
        sqlx::query("INSERT INTO server_keys (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.writer)
            .await?;
        let (value,): (String,) = sqlx::query_as("SELECT value FROM server_keys WHERE name = ?1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?;
        Ok(value)
    }

    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<Tenant>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, created_at FROM tenants WHERE (?1 IS NULL OR id > ?1) \
             ORDER BY id LIMIT ?2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at)| Tenant { id, created_at })
            .collect())
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, Error> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT id, created_at FROM tenants WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|(id, created_at)| Tenant { id, created_at }))
    }

    async fn create_endpoint(&self, new: NewEndpoint, now: Millis) -> Result<Endpoint, Error> {
        let id = new_id("ep");
        let types = serde_json::to_string(&new.event_types).unwrap_or_else(|_| "[]".into());
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, \
             enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.url)
        .bind(&new.description)
        .bind(&types)
        .bind(headers_to_json(&new.headers))
        .bind(new.enabled)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, &format!("tenant `{}`", new.tenant_id)))?;
        sqlx::query(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.secret)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Endpoint {
            id,
            tenant_id: new.tenant_id,
            url: new.url,
            description: new.description,
            event_types: new.event_types,
            headers: new.headers,
            enabled: new.enabled,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
        })
    }

    async fn endpoint(&self, tenant_id: &str, id: &str) -> Result<Option<Endpoint>, Error> {
        let row: Option<EndpointRow> = sqlx::query_as(
            "SELECT id, tenant_id, url, description, event_types, headers, enabled, \
             disabled_reason, failing_since, created_at FROM endpoints \
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(endpoint_from_row).transpose()
    }

    async fn endpoints(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Endpoint>, Error> {
        let rows: Vec<EndpointRow> = sqlx::query_as(
            "SELECT id, tenant_id, url, description, event_types, headers, enabled, \
             disabled_reason, failing_since, created_at FROM endpoints \
             WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(endpoint_from_row).collect()
    }

    async fn update_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        patch: EndpointPatch,
        now: Millis,
    ) -> Result<Option<Endpoint>, Error> {
        let mut tx = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE endpoints SET url = coalesce(?1, url), \
             description = coalesce(?2, description), \
             event_types = coalesce(?3, event_types), headers = coalesce(?4, headers), \
             enabled = coalesce(?5, enabled), \
             disabled_reason = CASE WHEN ?5 IS NULL THEN disabled_reason \
               WHEN ?5 THEN NULL ELSE 'disabled through the API' END, \
             failing_since = CASE WHEN ?5 THEN NULL ELSE failing_since END, \
             updated_at = ?6 WHERE tenant_id = ?7 AND id = ?8",
        )
        .bind(&patch.url)
        .bind(&patch.description)
        .bind(
            patch
                .event_types
                .as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into())),
        )
        .bind(patch.headers.as_ref().map(headers_to_json))
        .bind(patch.enabled)
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        if patch.enabled == Some(false) {
            sqlx::query(
                "UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_owner = NULL, \
                 lease_expires_at = NULL, updated_at = ?1 \
                 WHERE endpoint_id = ?2 AND state = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let row: EndpointRow = sqlx::query_as(
            "SELECT id, tenant_id, url, description, event_types, headers, enabled, \
             disabled_reason, failing_since, created_at FROM endpoints WHERE id = ?1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        endpoint_from_row(row).map(Some)
    }

    async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, Error> {
        // Its secrets, deliveries and their attempts go with it (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM endpoints WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn secrets(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Vec<EndpointSecret>>, Error> {
        if self.endpoint(tenant_id, id).await?.is_none() {
            return Ok(None);
        }
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT secret, created_at, expires_at FROM endpoint_secrets \
             WHERE endpoint_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) \
             ORDER BY expires_at IS NULL DESC, created_at DESC",
        )
        .bind(id)
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|(secret, created_at, expires_at)| EndpointSecret {
                    secret,
                    created_at,
                    expires_at,
                })
                .collect(),
        ))
    }

    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
        now: Millis,
    ) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM endpoints WHERE tenant_id = ?1 AND id = ?2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(false);
        }
        // A secret already due to expire sooner keeps its earlier end.
        sqlx::query(
            "UPDATE endpoint_secrets SET expires_at = ?1 WHERE endpoint_id = ?2 \
             AND (expires_at IS NULL OR expires_at > ?1)",
        )
        .bind(old_until)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?1, ?2, ?3)",
        )
        .bind(id)
        .bind(secret)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn disable_endpoint(&self, id: &str, reason: &str, now: Millis) -> Result<(), Error> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = ? WHERE endpoint_id = ? AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn accept_event(&self, new: NewEvent, now: Millis) -> Result<Accepted, Error> {
        self.committer.accept(new, now).await
    }

    async fn event(&self, tenant_id: &str, id: &str) -> Result<Option<Event>, Error> {
        let row: Option<EventRow> = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(event_from_row))
    }

    async fn claim_due(
        &self,
        worker: &str,
        limit: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        self.committer.claim(worker, limit, lease_until, now).await
    }

    async fn finish_attempt(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Result<bool, Error> {
        self.committer
            .finish(delivery_id, lease, attempt, outcome)
            .await
    }

    async fn purge(&self, before: Millis, limit: u32) -> Result<u64, Error> {
        let purged = sqlx::query(
            "DELETE FROM events WHERE id IN (SELECT e.id FROM events e \
             WHERE e.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d \
               WHERE d.event_id = e.id AND d.state = 'pending') \
             ORDER BY e.created_at LIMIT ?2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(purged.rows_affected())
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn queue_figures(&self, now: Millis) -> Result<QueueFigures, Error> {
        let (pending, due, oldest_due_at): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(CASE WHEN waiting THEN 1 ELSE 0 END), \
             MIN(CASE WHEN waiting THEN next_attempt_at END) \
             FROM (SELECT next_attempt_at, next_attempt_at <= ?1 \
               AND (lease_expires_at IS NULL OR lease_expires_at <= ?1) AS waiting \
               FROM deliveries WHERE state = 'pending') AS pending",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        let failing: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, id, failing_since FROM endpoints \
             WHERE failing_since IS NOT NULL ORDER BY failing_since LIMIT 1000",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(QueueFigures {
            pending: u64::try_from(pending).unwrap_or(0),
            due: due.and_then(|d| u64::try_from(d).ok()).unwrap_or(0),
            oldest_due_at,
            failing,
        })
    }

    async fn release(&self, worker: &str) -> Result<u64, Error> {
        let released = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND substr(lease_owner, 1, length(?1) + 1) = ?1 || '/'",
        )
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(released.rows_affected())
    }

    async fn create_token(&self, new: NewToken, now: Millis) -> Result<Token, Error> {
        let id = new_id("tok");
        sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, prefix, hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.hash)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            classify(
                e,
                &format!("tenant `{}`", new.tenant_id.as_deref().unwrap_or("")),
            )
        })?;
        Ok(Token {
            id,
            tenant_id: new.tenant_id,
            name: new.name,
            prefix: new.prefix,
            created_at: now,
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, Error> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM tokens \
             WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(token_from_row))
    }

    async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<Token>, Error> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM tokens \
             WHERE tenant_id IS NOT DISTINCT FROM ? ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(token_from_row).collect())
    }

    async fn revoke_token(
        &self,
        tenant_id: Option<&str>,
        id: &str,
        now: Millis,
    ) -> Result<bool, Error> {
        let revoked = sqlx::query(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? \
             AND tenant_id IS NOT DISTINCT FROM ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        Ok(revoked.rows_affected() == 1)
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, Error> {
        let row: Option<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d.attempts"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(delivery_from_row).transpose()
    }

    async fn accept_event_for(
        &self,
        new: NewEvent,
        endpoint_id: &str,
        now: Millis,
    ) -> Result<Option<(Event, String)>, Error> {
        let mut tx = self.writer.begin().await?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM endpoints WHERE tenant_id = ?1 AND id = ?2")
                .bind(&new.tenant_id)
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(None);
        }
        let event = Event {
            id: new_id("evt"),
            tenant_id: new.tenant_id,
            event_type: new.event_type,
            payload: new.payload,
            idempotency_key: None,
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        )
        .bind(&event.id)
        .bind(&event.tenant_id)
        .bind(&event.event_type)
        .bind(&event.payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let delivery = new_id("dlv");
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4)",
        )
        .bind(&delivery)
        .bind(&event.id)
        .bind(endpoint_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;

        tx.commit().await?;
        Ok(Some((event, delivery)))
    }

    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>, Error> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d.attempts"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.event_id = ? \
             ORDER BY d.id"
        ))
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, Error> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT ",
            attempt_columns!("status_code"),
            " FROM attempts WHERE delivery_id = ? ORDER BY started_at, id"
        ))
        .bind(delivery_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(attempt_from_row).collect()
    }

    async fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2) \
             AND (?3 IS NULL OR event_type = ?3) AND (?4 IS NULL OR created_at >= ?4) \
             AND (?5 IS NULL OR created_at < ?5) ORDER BY id DESC LIMIT ?6",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(&filter.event_type)
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(event_from_row).collect())
    }

    async fn deliveries(
        &self,
        tenant_id: &str,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, Error> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d.attempts"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE e.tenant_id = ?1 AND (?2 IS NULL OR d.id < ?2) \
             AND (?3 IS NULL OR d.endpoint_id = ?3) AND (?4 IS NULL OR d.event_id = ?4) \
             AND (?5 IS NULL OR e.event_type = ?5) AND (?6 IS NULL OR d.state = ?6) \
             AND (?7 IS NULL OR d.created_at >= ?7) AND (?8 IS NULL OR d.created_at < ?8) \
             ORDER BY d.id DESC LIMIT ?9"
        ))
        .bind(tenant_id)
        .bind(before)
        .bind(&filter.endpoint_id)
        .bind(&filter.event_id)
        .bind(&filter.event_type)
        .bind(filter.state.map(DeliveryState::as_str))
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn retry_delivery(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Delivery>, Error> {
        let mut tx = self.writer.begin().await?;
        let found: Option<(bool,)> = sqlx::query_as(
            "SELECT p.enabled FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.id = ?1 AND p.tenant_id = ?2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        match found {
            None => return Ok(None),
            Some((false,)) => return Err(disabled_endpoint()),
            Some((true,)) => {}
        }
        // A delivery in flight keeps its lease: the retry follows that attempt.
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, updated_at = ?1 \
             WHERE id = ?2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.delivery(id).await
    }

    async fn attempt_stats(
        &self,
        tenant_id: &str,
        endpoint_id: Option<&str>,
        since: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<AttemptStats>, Error> {
        let rows: Vec<StatsRow> = sqlx::query_as(
            "SELECT a.started_at / ?1 AS bucket, \
             sum(a.status_code BETWEEN 200 AND 299), \
             sum(a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299), \
             avg(a.duration_ms), max(a.duration_ms) \
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE p.tenant_id = ?2 AND (?3 IS NULL OR p.id = ?3) AND a.started_at >= ?4 \
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(bucket_ms.max(1))
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| stats_from_row(row, bucket_ms.max(1)))
            .collect())
    }

    async fn create_replay(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        since: Millis,
        now: Millis,
    ) -> Result<Option<Replay>, Error> {
        let mut tx = self.writer.begin().await?;
        let Some((types,)): Option<(String,)> =
            sqlx::query_as("SELECT event_types FROM endpoints WHERE tenant_id = ?1 AND id = ?2")
                .bind(tenant_id)
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let (total,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM events WHERE tenant_id = ?1 AND created_at >= ?2 \
             AND created_at <= ?3 AND (?4 = '[]' OR event_type IN (SELECT value FROM json_each(?4)))",
        )
        .bind(tenant_id)
        .bind(since)
        .bind(now)
        .bind(&types)
        .fetch_one(&mut *tx)
        .await?;
        let id = new_id("rpl");
        sqlx::query(
            "INSERT INTO replays (id, tenant_id, endpoint_id, since, until, total, done, cursor, \
             state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7, ?5, ?5)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .bind(now)
        .bind(total)
        .bind(if total == 0 {
            ReplayState::Finished.as_str()
        } else {
            ReplayState::Running.as_str()
        })
        .execute(&mut *tx)
        .await?;
        let row: ReplayRow = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE id = ?"
        ))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        replay_from_row(row).map(Some)
    }

    async fn replay_step(&self, id: &str, batch: u32, now: Millis) -> Result<Replay, Error> {
        let mut tx = self.writer.begin().await?;
        let (tenant_id, endpoint_id, since, until, cursor, types): (
            String,
            String,
            i64,
            i64,
            Option<String>,
            String,
        ) = sqlx::query_as(
            "SELECT r.tenant_id, r.endpoint_id, r.since, r.until, r.cursor, p.event_types \
             FROM replays r JOIN endpoints p ON p.id = r.endpoint_id WHERE r.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no replay `{id}`")))?;
        let events: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM events WHERE tenant_id = ?1 AND created_at >= ?2 \
             AND created_at <= ?3 AND (?4 IS NULL OR id > ?4) \
             AND (?5 = '[]' OR event_type IN (SELECT value FROM json_each(?5))) \
             ORDER BY id LIMIT ?6",
        )
        .bind(&tenant_id)
        .bind(since)
        .bind(until)
        .bind(&cursor)
        .bind(&types)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        let rows: Vec<(String, &str)> = events
            .iter()
            .map(|(event_id,)| (new_id("dlv"), event_id.as_str()))
            .collect();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT value->>0, value->>1, ?1, 'pending', 0, ?2, ?2, ?2 FROM json_each(?3)",
        )
        .bind(&endpoint_id)
        .bind(now)
        .bind(serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        let finished = events.len() < batch as usize;
        sqlx::query(
            "UPDATE replays SET done = done + ?1, cursor = coalesce(?2, cursor), \
             state = ?3, updated_at = ?4 WHERE id = ?5",
        )
        .bind(i64::try_from(events.len()).unwrap_or(i64::MAX))
        .bind(events.last().map(|(event_id,)| event_id))
        .bind(if finished {
            ReplayState::Finished.as_str()
        } else {
            ReplayState::Running.as_str()
        })
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let row: ReplayRow = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        replay_from_row(row)
    }

    async fn replay(&self, tenant_id: &str, id: &str) -> Result<Option<Replay>, Error> {
        let row: Option<ReplayRow> = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(replay_from_row).transpose()
    }

    async fn running_replays(&self) -> Result<Vec<Replay>, Error> {
        let rows: Vec<ReplayRow> = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE state = 'running' ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(replay_from_row).collect()
    }
}

/// Stores an event and its deliveries inside the caller's transaction on this database (the
/// transactional outbox): they exist if and only if the caller commits.
///
/// Use the store's own [`SqliteStore::pool`] for that transaction, so it holds the one write
/// lock SQLite has from the start; the worker picks the deliveries up at its next poll after
/// the commit.
pub async fn accept_event_in(
    tx: &mut SqliteConnection,
    new: NewEvent,
    now: Millis,
) -> Result<Accepted, Error> {
    batch::accept_all(tx, &[(&new, now)])
        .await?
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::Database, "the event has no result"))
}

mod dialect;
