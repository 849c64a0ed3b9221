//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single connection, so they never contend for SQLite's one write lock
//! (no `SQLITE_BUSY` under load) and a claim is exclusive without row locks; reads use a pool
//! of their own. `synchronous = FULL`: an event is on disk before it is reported accepted.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{
    Accepted, Attempt, ClaimRow, Claimed, Delivery, DeliveryRow, DeliveryState, Endpoint, Error,
    ErrorKind, Event, EventRow, Millis, NewEndpoint, NewEvent, Outcome, Store, Tenant,
    claims_from_rows, classify, delivery_from_row, event_from_row, headers_from_json,
    headers_to_json, new_id, to_u32,
};

/// herald's store in a SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
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
        Ok(SqliteStore { writer, reader })
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
        let mut tx = self.writer.begin().await?;
        let accepted = accept_event_in(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(accepted)
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
        // A token per claim, so finishing checks this very lease, not just the worker's name.
        let lease = format!("{worker}/{}", ulid::Ulid::generate());
        let mut tx = self.writer.begin().await?;
        let claimed = sqlx::query(
            "UPDATE deliveries SET lease_owner = ?1, lease_expires_at = ?2, updated_at = ?3 \
             WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' \
               AND next_attempt_at <= ?3 AND (lease_expires_at IS NULL OR lease_expires_at <= ?3) \
               ORDER BY next_attempt_at LIMIT ?4)",
        )
        .bind(&lease)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT d.id, d.attempts, e.id, e.event_type, e.payload, p.id, p.url, p.headers, \
             p.failing_since FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN endpoints p ON p.id = d.endpoint_id WHERE d.lease_owner = ? \
             ORDER BY d.next_attempt_at",
        )
        .bind(&lease)
        .fetch_all(&mut *tx)
        .await?;
        let secrets: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.endpoint_id, s.secret FROM endpoint_secrets s WHERE s.endpoint_id IN \
             (SELECT endpoint_id FROM deliveries WHERE lease_owner = ?) \
             AND (s.expires_at IS NULL OR s.expires_at > ?) ORDER BY s.created_at DESC",
        )
        .bind(&lease)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        claims_from_rows(rows, secrets, &lease)
    }

    async fn finish_attempt(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Result<bool, Error> {
        let (state, next) = match outcome {
            Outcome::Succeeded => (DeliveryState::Succeeded, None),
            Outcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            Outcome::Dead => (DeliveryState::Dead, None),
        };
        let now = attempt.started_at + attempt.duration_ms;
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
             response_excerpt, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new_id("att"))
        .bind(delivery_id)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.response_excerpt)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, &format!("delivery `{delivery_id}`")))?;
        let updated = sqlx::query(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = ? \
             WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(next)
        .bind(now)
        .bind(delivery_id)
        .bind(lease)
        .execute(&mut *tx)
        .await?;
        let held = updated.rows_affected() == 1;
        if held {
            let failing_since = match outcome {
                Outcome::Succeeded => None,
                Outcome::RetryAt(_) | Outcome::Dead => Some(attempt.started_at),
            };
            sqlx::query(
                "UPDATE endpoints SET failing_since = CASE WHEN ?1 IS NULL THEN NULL \
                 ELSE coalesce(failing_since, ?1) END \
                 WHERE id = (SELECT endpoint_id FROM deliveries WHERE id = ?2)",
            )
            .bind(failing_since)
            .bind(delivery_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(held)
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

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, Error> {
        let row: Option<DeliveryRow> = sqlx::query_as(
            "SELECT id, event_id, endpoint_id, state, attempts, next_attempt_at \
             FROM deliveries WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(delivery_from_row).transpose()
    }

    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>, Error> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, event_id, endpoint_id, state, attempts, next_attempt_at \
             FROM deliveries WHERE event_id = ? ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, Error> {
        let rows: Vec<(i64, i64, Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT started_at, duration_ms, status_code, response_excerpt, error \
             FROM attempts WHERE delivery_id = ? ORDER BY started_at, id",
        )
        .bind(delivery_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(started_at, duration_ms, status, excerpt, error)| Attempt {
                    started_at,
                    duration_ms,
                    status_code: status.and_then(|s| u16::try_from(s).ok()),
                    response_excerpt: excerpt,
                    error,
                },
            )
            .collect())
    }
}

/// Stores an event and its deliveries inside the caller's transaction on this database (the
/// transactional outbox): they exist if and only if the caller commits.
///
/// Use the store's own [`SqliteStore::pool`] for that transaction, so it holds the one write
/// lock SQLite has from the start; the worker picks the deliveries up at its next poll after
/// the commit.
pub async fn accept_event_in(
    tx: &mut sqlx::SqliteConnection,
    new: NewEvent,
    now: Millis,
) -> Result<Accepted, Error> {
    if let Some(key) = &new.idempotency_key {
        let earlier: Option<EventRow> = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = ? AND idempotency_key = ?",
        )
        .bind(&new.tenant_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(earlier) = earlier {
            let (count,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM deliveries WHERE event_id = ?")
                    .bind(&earlier.0)
                    .fetch_one(&mut *tx)
                    .await?;
            return Ok(Accepted {
                event: event_from_row(earlier),
                created: false,
                deliveries: to_u32(count),
            });
        }
    }

    let id = new_id("evt");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&new.tenant_id)
    .bind(&new.event_type)
    .bind(&new.payload)
    .bind(&new.idempotency_key)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, &format!("tenant `{}`", new.tenant_id)))?;

    let endpoints: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM endpoints WHERE tenant_id = ? AND enabled = 1 AND \
         (event_types = '[]' OR EXISTS \
           (SELECT 1 FROM json_each(endpoints.event_types) WHERE value = ?))",
    )
    .bind(&new.tenant_id)
    .bind(&new.event_type)
    .fetch_all(&mut *tx)
    .await?;
    for (endpoint_id,) in &endpoints {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
        )
        .bind(new_id("dlv"))
        .bind(&id)
        .bind(endpoint_id)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(Accepted {
        event: Event {
            id,
            tenant_id: new.tenant_id,
            event_type: new.event_type,
            payload: new.payload,
            idempotency_key: new.idempotency_key,
            created_at: now,
        },
        created: true,
        deliveries: u32::try_from(endpoints.len()).unwrap_or(u32::MAX),
    })
}
