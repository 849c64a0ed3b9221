//! The store for more than one machine: PostgreSQL, shared by any number of herald processes.
//!
//! Claims use `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without
//! waiting on each other, and a lease (not a held transaction) marks work in flight, so a
//! crashed process's deliveries come back when its lease runs out.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::batch::{self, Dialect};
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
    attempt_columns, attempt_from_row, delivery_columns, disabled_endpoint, lease_token,
};

/// The prefix of the channel on which committed deliveries are announced to every herald
/// process; the schema's name completes it, so installations sharing a database stay apart.
const CHANNEL: &str = "herald_deliveries_";

/// herald's store in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    committer: Committer,
}

/// Applies batches of writes on one pooled connection.
struct Writes(PgPool);

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
        Ok(PostgresStore {
            committer: Committer::start(Writes(pool.clone())),
            pool,
        })
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

    async fn server_key(&self, name: &str, candidate: &str) -> Result<String, Error> {
        sqlx::query("INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let (value,): (String,) = sqlx::query_as("SELECT value FROM server_keys WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<Tenant>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, created_at FROM tenants WHERE ($1::text IS NULL OR id > $1) \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at)| Tenant { id, created_at })
            .collect())
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

    async fn endpoints(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Endpoint>, Error> {
        let rows: Vec<EndpointRow> = sqlx::query_as(
            "SELECT id, tenant_id, url, description, event_types, headers, enabled, \
             disabled_reason, failing_since, created_at FROM endpoints \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE endpoints SET url = coalesce($1, url), \
             description = coalesce($2, description), \
             event_types = coalesce($3, event_types), headers = coalesce($4, headers), \
             enabled = coalesce($5, enabled), \
             disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason \
               WHEN $5 THEN NULL ELSE 'disabled through the API' END, \
             failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END, \
             updated_at = $6 WHERE tenant_id = $7 AND id = $8",
        )
        .bind(&patch.url)
        .bind(&patch.description)
        .bind(patch.event_types.as_ref())
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
                 lease_expires_at = NULL, updated_at = $1 \
                 WHERE endpoint_id = $2 AND state = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let row: EndpointRow = sqlx::query_as(
            "SELECT id, tenant_id, url, description, event_types, headers, enabled, \
             disabled_reason, failing_since, created_at FROM endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        endpoint_from_row(row).map(Some)
    }

    async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, Error> {
        // Its secrets, deliveries and their attempts go with it (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
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
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY expires_at IS NULL DESC, created_at DESC",
        )
        .bind(id)
        .bind(now)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(false);
        }
        // A secret already due to expire sooner keeps its earlier end.
        sqlx::query(
            "UPDATE endpoint_secrets SET expires_at = $1 WHERE endpoint_id = $2 \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(old_until)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)",
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
        self.committer.accept(new, now).await
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
        // Not queued behind the committer's batches: PostgreSQL runs them side by side, and a
        // claim is on every delivery's path from accepted to sent.
        let lease = lease_token(worker);
        let mut tx = self.pool.begin().await?;
        // A lease lost in a server crash only makes its deliveries due again, so a claim
        // need not wait for the disk.
        sqlx::query("SET LOCAL synchronous_commit TO OFF")
            .execute(&mut *tx)
            .await?;
        let claimed = tx.claim(&lease, limit, lease_until, now).await?;
        tx.commit().await?;
        Ok(claimed)
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
             WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d \
               WHERE d.event_id = e.id AND d.state = 'pending') \
             ORDER BY e.created_at LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(purged.rows_affected())
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn queue_figures(&self, now: Millis) -> Result<QueueFigures, Error> {
        let (pending, due, oldest_due_at): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(CASE WHEN waiting THEN 1 ELSE 0 END), \
             MIN(CASE WHEN waiting THEN next_attempt_at END) \
             FROM (SELECT next_attempt_at, next_attempt_at <= $1 \
               AND (lease_expires_at IS NULL OR lease_expires_at <= $1) AS waiting \
               FROM deliveries WHERE state = 'pending') AS pending",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let failing: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, id, failing_since FROM endpoints \
             WHERE failing_since IS NOT NULL ORDER BY failing_since LIMIT 1000",
        )
        .fetch_all(&self.pool)
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

    async fn create_token(&self, new: NewToken, now: Millis) -> Result<Token, Error> {
        let id = new_id("tok");
        sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, prefix, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.hash)
        .bind(now)
        .execute(&self.pool)
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
             WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(token_from_row))
    }

    async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<Token>, Error> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM tokens \
             WHERE tenant_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
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
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 \
             AND tenant_id IS NOT DISTINCT FROM $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(revoked.rows_affected() == 1)
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, Error> {
        let row: Option<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d.attempts::bigint"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(delivery_from_row).transpose()
    }

    async fn accept_event_for(
        &self,
        new: NewEvent,
        endpoint_id: &str,
        now: Millis,
    ) -> Result<Option<(Event, String)>, Error> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM endpoints WHERE tenant_id = $1 AND id = $2")
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
             VALUES ($1, $2, $3, $4, NULL, $5)",
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
             VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
        )
        .bind(&delivery)
        .bind(&event.id)
        .bind(endpoint_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Dialect::announce(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((event, delivery)))
    }

    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>, Error> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d.attempts::bigint"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.event_id = $1 \
             ORDER BY d.id"
        ))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, Error> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT ",
            attempt_columns!("status_code::bigint"),
            " FROM attempts WHERE delivery_id = $1 ORDER BY started_at, id"
        ))
        .bind(delivery_id)
        .fetch_all(&self.pool)
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
             FROM events WHERE tenant_id = $1 AND ($2::text IS NULL OR id < $2) \
             AND ($3::text IS NULL OR event_type = $3) \
             AND ($4::bigint IS NULL OR created_at >= $4) \
             AND ($5::bigint IS NULL OR created_at < $5) ORDER BY id DESC LIMIT $6",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(&filter.event_type)
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
            delivery_columns!("d.attempts::bigint"),
            " FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE e.tenant_id = $1 AND ($2::text IS NULL OR d.id < $2) \
             AND ($3::text IS NULL OR d.endpoint_id = $3) \
             AND ($4::text IS NULL OR d.event_id = $4) \
             AND ($5::text IS NULL OR e.event_type = $5) \
             AND ($6::text IS NULL OR d.state = $6) \
             AND ($7::bigint IS NULL OR d.created_at >= $7) \
             AND ($8::bigint IS NULL OR d.created_at < $8) \
             ORDER BY d.id DESC LIMIT $9"
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
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn retry_delivery(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Delivery>, Error> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(bool,)> = sqlx::query_as(
            "SELECT p.enabled FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.id = $1 AND p.tenant_id = $2 FOR UPDATE OF d",
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
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Dialect::announce(&mut *tx).await?;
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
            "SELECT a.started_at / $1 AS bucket, \
             count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299), \
             count(*) FILTER (WHERE a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299), \
             avg(a.duration_ms)::float8, max(a.duration_ms) \
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE p.tenant_id = $2 AND ($3::text IS NULL OR p.id = $3) AND a.started_at >= $4 \
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(bucket_ms.max(1))
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let Some((types,)): Option<(Vec<String>,)> =
            sqlx::query_as("SELECT event_types FROM endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let (total,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND created_at >= $2 \
             AND created_at <= $3 AND (cardinality($4::text[]) = 0 OR event_type = ANY($4))",
        )
        .bind(tenant_id)
        .bind(since)
        .bind(now)
        .bind(&types)
        .fetch_one(&mut *tx)
        .await?;
        let row: ReplayRow = sqlx::query_as(concat!(
            "INSERT INTO replays (id, tenant_id, endpoint_id, since, until, total, done, cursor, \
             state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, $5, $5) \
             RETURNING ",
            replay_columns!()
        ))
        .bind(new_id("rpl"))
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
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        replay_from_row(row).map(Some)
    }

    async fn replay_step(&self, id: &str, batch: u32, now: Millis) -> Result<Replay, Error> {
        let mut tx = self.pool.begin().await?;
        // The row lock keeps two processes resuming the same replay from doubling its work.
        let (tenant_id, endpoint_id, since, until, cursor, types): (
            String,
            String,
            i64,
            i64,
            Option<String>,
            Vec<String>,
        ) = sqlx::query_as(
            "SELECT r.tenant_id, r.endpoint_id, r.since, r.until, r.cursor, p.event_types \
             FROM replays r JOIN endpoints p ON p.id = r.endpoint_id WHERE r.id = $1 \
             FOR UPDATE OF r",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no replay `{id}`")))?;
        let events: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM events WHERE tenant_id = $1 AND created_at >= $2 \
             AND created_at <= $3 AND ($4::text IS NULL OR id > $4) \
             AND (cardinality($5::text[]) = 0 OR event_type = ANY($5)) \
             ORDER BY id LIMIT $6",
        )
        .bind(&tenant_id)
        .bind(since)
        .bind(until)
        .bind(&cursor)
        .bind(&types)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<String> = events.iter().map(|_| new_id("dlv")).collect();
        let event_ids: Vec<&str> = events.iter().map(|(e,)| e.as_str()).collect();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT d, e, $3, 'pending', 0, $4, $4, $4 \
             FROM unnest($1::text[], $2::text[]) AS v(d, e)",
        )
        .bind(&ids)
        .bind(&event_ids)
        .bind(&endpoint_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let finished = events.len() < batch as usize;
        let row: ReplayRow = sqlx::query_as(concat!(
            "UPDATE replays SET done = done + $1, cursor = coalesce($2, cursor), \
             state = $3, updated_at = $4 WHERE id = $5 RETURNING ",
            replay_columns!()
        ))
        .bind(i64::try_from(events.len()).unwrap_or(i64::MAX))
        .bind(event_ids.last())
        .bind(if finished {
            ReplayState::Finished.as_str()
        } else {
            ReplayState::Running.as_str()
        })
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if !events.is_empty() {
            Dialect::announce(&mut *tx).await?;
        }
        tx.commit().await?;
        replay_from_row(row)
    }

    async fn replay(&self, tenant_id: &str, id: &str) -> Result<Option<Replay>, Error> {
        let row: Option<ReplayRow> = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(replay_from_row).transpose()
    }

    async fn running_replays(&self) -> Result<Vec<Replay>, Error> {
        let rows: Vec<ReplayRow> = sqlx::query_as(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE state = 'running' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(replay_from_row).collect()
    }
}

/// Stores an event and its deliveries inside the caller's transaction on this database (the
/// transactional outbox): they exist if and only if the caller commits. Begin it on
/// [`PostgresStore::pool`] (or any connection whose `search_path` reaches herald's tables).
pub async fn accept_event_in(
    tx: &mut PgConnection,
    new: NewEvent,
    now: Millis,
) -> Result<Accepted, Error> {
    batch::accept_all(tx, &[(&new, now)])
        .await?
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::Database, "the event has no result"))
}

mod dialect;
