//! The store for more than one machine: PostgreSQL, shared by any number of herald processes.
//!
//! Claims use `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without
//! waiting on each other, and a lease (not a held transaction) marks work in flight, so a
//! crashed process's deliveries come back when its lease runs out.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::{
    Accepted, Attempt, ClaimRow, Claimed, Delivery, DeliveryRow, DeliveryState, Endpoint, Error,
    ErrorKind, Event, EventRow, Millis, NewEndpoint, NewEvent, Outcome, Store, Tenant,
    claims_from_rows, classify, delivery_from_row, event_from_row, headers_from_json,
    headers_to_json, new_id, to_u32,
};

/// The prefix of the channel on which committed deliveries are announced to every herald
/// process; the schema's name completes it, so installations sharing a database stay apart.
const CHANNEL: &str = "herald_deliveries_";

/// herald's store in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

type EndpointRow = (
    String,
    String,
    String,
    String,
    Vec<String>,
    String,
    bool,
    Option<String>,
    Option<i64>,
    i64,
);

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<PostgresStore, Error> {
        Self::connect(options(url)?).await
    }

    /// Like [`open`](Self::open), inside the schema `schema` (created if missing), so that
    /// several herald installations, or tests, can share one database.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore, Error> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || schema.is_empty()
        {
            return Err(Error::new(
                ErrorKind::Database,
                format!("schema name `{schema}` must be letters, digits and `_`"),
            ));
        }
        let options = options(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        Self::connect(options.options([("search_path", schema)])).await
    }

    async fn connect(options: PgConnectOptions) -> Result<PostgresStore, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool, for callers that join herald's writes to their own transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn options(url: &str) -> Result<PgConnectOptions, Error> {
    PgConnectOptions::from_str(url).map_err(|e| {
        Error::new(
            ErrorKind::Database,
            format!("`{url}` is not a PostgreSQL URL: {e}"),
        )
    })
}

fn endpoint_from_row(row: EndpointRow) -> Result<Endpoint, Error> {
    let (id, tenant_id, url, description, event_types, headers, enabled, reason, failing, created) =
        row;
    Ok(Endpoint {
        id,
        tenant_id,
        url,
        description,
        event_types,
        headers: headers_from_json(&headers)?,
        enabled,
        disabled_reason: reason,
        failing_since: failing,
        created_at: created,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_tenant(&self, id: &str, now: Millis) -> Result<Tenant, Error> {
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| classify(e, &format!("tenant `{id}`")))?;
        Ok(Tenant {
            id: id.into(),
            created_at: now,
        })
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, Error> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT id, created_at FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, created_at)| Tenant { id, created_at }))
    }

    async fn create_endpoint(&self, new: NewEndpoint, now: Millis) -> Result<Endpoint, Error> {
        let id = new_id("ep");
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, \
             enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.url)
        .bind(&new.description)
        .bind(&new.event_types)
        .bind(headers_to_json(&new.headers))
        .bind(new.enabled)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, &format!("tenant `{}`", new.tenant_id)))?;
        sqlx::query(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)",
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
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(endpoint_from_row).transpose()
    }

    async fn disable_endpoint(&self, id: &str, reason: &str, now: Millis) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE endpoints SET enabled = false, disabled_reason = $1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = $1 WHERE endpoint_id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn accept_event(&self, new: NewEvent, now: Millis) -> Result<Accepted, Error> {
        let mut tx = self.pool.begin().await?;
        let accepted = accept_event_in(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(accepted)
    }

    async fn event(&self, tenant_id: &str, id: &str) -> Result<Option<Event>, Error> {
        let row: Option<EventRow> = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
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
        let lease = format!("{worker}/{}", ulid::Ulid::generate());
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' \
               AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
               ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)",
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
            "SELECT d.id, d.attempts::bigint, e.id, e.event_type, e.payload, p.id, p.url, p.headers, \
                 p.failing_since FROM deliveries d JOIN events e ON e.id = d.event_id \
                 JOIN endpoints p ON p.id = d.endpoint_id WHERE d.lease_owner = $1 \
                 ORDER BY d.next_attempt_at",
        )
        .bind(&lease)
        .fetch_all(&mut *tx)
        .await?;
        let secrets: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.endpoint_id, s.secret FROM endpoint_secrets s WHERE s.endpoint_id IN \
             (SELECT endpoint_id FROM deliveries WHERE lease_owner = $1) \
             AND (s.expires_at IS NULL OR s.expires_at > $2) ORDER BY s.created_at DESC",
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
             response_excerpt, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id("att"))
        .bind(delivery_id)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status_code.map(i32::from))
        .bind(&attempt.response_excerpt)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, &format!("delivery `{delivery_id}`")))?;
        let updated = sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
             WHERE id = $4 AND lease_owner = $5 AND state = 'pending'",
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
                "UPDATE endpoints SET failing_since = CASE WHEN $1::bigint IS NULL THEN NULL \
                 ELSE coalesce(failing_since, $1) END \
                 WHERE id = (SELECT endpoint_id FROM deliveries WHERE id = $2)",
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
             WHERE state = 'pending' AND left(lease_owner, length($1) + 1) = $1 || '/'",
        )
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    async fn watch(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<(), Error> {
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&format!("{CHANNEL}{schema}")).await?;
        tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a lost connection; notifications sent while
                // it was away are covered by the worker's poll.
                match listener.recv().await {
                    Ok(_) => wake.notify_one(),
                    Err(error) => {
                        tracing::warn!(%error, "LISTEN connection failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, Error> {
        let row: Option<DeliveryRow> = sqlx::query_as(
            "SELECT id, event_id, endpoint_id, state, attempts::bigint, next_attempt_at \
             FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(delivery_from_row).transpose()
    }

    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>, Error> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, event_id, endpoint_id, state, attempts::bigint, next_attempt_at \
             FROM deliveries WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, Error> {
        let rows: Vec<(i64, i64, Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT started_at, duration_ms, status_code::bigint, response_excerpt, error \
             FROM attempts WHERE delivery_id = $1 ORDER BY started_at, id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
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
/// transactional outbox): they exist if and only if the caller commits. Begin it on
/// [`PostgresStore::pool`] (or any connection whose `search_path` reaches herald's tables).
pub async fn accept_event_in(
    tx: &mut sqlx::PgConnection,
    new: NewEvent,
    now: Millis,
) -> Result<Accepted, Error> {
    let id = new_id("evt");
    // ON CONFLICT makes a concurrent repeat of the same idempotency key wait for the first
    // insert and then return nothing, instead of failing.
    let inserted: Option<(String,)> = sqlx::query_as(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL \
         DO NOTHING RETURNING id",
    )
    .bind(&id)
    .bind(&new.tenant_id)
    .bind(&new.event_type)
    .bind(&new.payload)
    .bind(&new.idempotency_key)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| classify(e, &format!("tenant `{}`", new.tenant_id)))?;

    if inserted.is_none() {
        let earlier: EventRow = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(&new.tenant_id)
        .bind(&new.idempotency_key)
        .fetch_one(&mut *tx)
        .await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM deliveries WHERE event_id = $1")
                .bind(&earlier.0)
                .fetch_one(&mut *tx)
                .await?;
        return Ok(Accepted {
            event: event_from_row(earlier),
            created: false,
            deliveries: to_u32(count),
        });
    }

    let endpoints: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM endpoints WHERE tenant_id = $1 AND enabled \
         AND (cardinality(event_types) = 0 OR $2 = ANY(event_types))",
    )
    .bind(&new.tenant_id)
    .bind(&new.event_type)
    .fetch_all(&mut *tx)
    .await?;
    let delivery_ids: Vec<String> = endpoints.iter().map(|_| new_id("dlv")).collect();
    let endpoint_ids: Vec<String> = endpoints.into_iter().map(|(id,)| id).collect();
    sqlx::query(
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
         next_attempt_at, created_at, updated_at) \
         SELECT d, $3, p, 'pending', 0, $4, $4, $4 FROM unnest($1::text[], $2::text[]) AS t(d, p)",
    )
    .bind(&delivery_ids)
    .bind(&endpoint_ids)
    .bind(&id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if !endpoint_ids.is_empty() {
        // Delivered to listeners when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1 || current_schema(), '')")
            .bind(CHANNEL)
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
        deliveries: u32::try_from(endpoint_ids.len()).unwrap_or(u32::MAX),
    })
}
