//! The batches group commit sends to SQLite: how many rows go in one statement
//! on this database (the [`Dialect`] behind [`crate::batch`]).

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use sqlx::SqliteConnection;

use crate::batch::{Advance, AttemptInsert, DeliveryInsert, Dialect, EventInsert, Streak};
use crate::{
    ClaimRow, Claimed, Error, EventRow, Millis, claims_from_rows, classify, deliveries_of,
    headers_to_json, tenants_of,
};

/// Many rows per statement: each batch is bound as one JSON array and read back with
/// `json_each`, so the statement's text (and its prepared form) is the same for any size.
#[async_trait]
impl Dialect for SqliteConnection {
    async fn insert_events(
        &mut self,
        events: &[EventInsert<'_>],
    ) -> Result<HashSet<String>, Error> {
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                let new = e.new;
                (
                    &e.id,
                    &new.tenant_id,
                    &new.event_type,
                    &new.payload,
                    &new.idempotency_key,
                    e.now,
                )
            })
            .collect();
        // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
        let inserted: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 \
             FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(json(&rows))
        .fetch_all(&mut *self)
        .await
        .map_err(|e| classify(e, &tenants_of(events)))?;
        Ok(inserted.into_iter().map(|(id,)| id).collect())
    }

    async fn subscribed(
        &mut self,
        tenant_id: &str,
        event_type: &str,
    ) -> Result<Vec<String>, Error> {
        let endpoints: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM endpoints WHERE tenant_id = ? AND enabled = 1 AND \
             (event_types = '[]' OR EXISTS \
               (SELECT 1 FROM json_each(endpoints.event_types) WHERE value = ?))",
        )
        .bind(tenant_id)
        .bind(event_type)
        .fetch_all(&mut *self)
        .await?;
        Ok(endpoints.into_iter().map(|(id,)| id).collect())
    }

    async fn insert_deliveries(&mut self, deliveries: &[DeliveryInsert]) -> Result<(), Error> {
        let rows: Vec<_> = deliveries
            .iter()
            .map(|d| (&d.id, &d.event_id, &d.endpoint_id, d.now))
            .collect();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT value->>0, value->>1, value->>2, 'pending', 0, value->>3, value->>3, value->>3 \
             FROM json_each(?)",
        )
        .bind(json(&rows))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn announce(&mut self) -> Result<(), Error> {
        // One process per SQLite file: the in-process signal is enough.
        Ok(())
    }

    async fn earlier(&mut self, tenant_id: &str, key: &str) -> Result<(EventRow, i64), Error> {
        let event: EventRow = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = ? AND idempotency_key = ?",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries WHERE event_id = ?")
            .bind(&event.0)
            .fetch_one(&mut *self)
            .await?;
        Ok((event, count))
    }

    async fn insert_attempts(&mut self, attempts: &[AttemptInsert<'_>]) -> Result<(), Error> {
        let rows: Vec<_> = attempts
            .iter()
            .map(|a| {
                let t = a.attempt;
                (
                    &a.id,
                    a.delivery_id,
                    t.started_at,
                    t.duration_ms,
                    t.status_code,
                    &t.response_excerpt,
                    &t.error,
                    headers_to_json(&t.request_headers),
                    headers_to_json(&t.response_headers),
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
             response_excerpt, error, request_headers, response_headers) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
             value->>7, value->>8 FROM json_each(?)",
        )
        .bind(json(&rows))
        .execute(&mut *self)
        .await
        .map_err(|e| classify(e, &deliveries_of(attempts)))?;
        Ok(())
    }

    async fn advance(&mut self, rows: &[Advance<'_>]) -> Result<Vec<(String, String)>, Error> {
        let rows: Vec<_> = rows
            .iter()
            .map(|a| (a.delivery_id, a.state, a.next, a.now, a.lease))
            .collect();
        let held = sqlx::query_as(
            "UPDATE deliveries SET state = v.value->>1, attempts = attempts + 1, \
             next_attempt_at = v.value->>2, lease_owner = NULL, lease_expires_at = NULL, \
             updated_at = v.value->>3 FROM json_each(?) AS v \
             WHERE deliveries.id = v.value->>0 AND deliveries.lease_owner = v.value->>4 \
             AND deliveries.state = 'pending' RETURNING id, endpoint_id",
        )
        .bind(json(&rows))
        .fetch_all(&mut *self)
        .await?;
        Ok(held)
    }

    async fn record_streaks(&mut self, streaks: &[Streak]) -> Result<(), Error> {
        let rows: Vec<_> = streaks
            .iter()
            .map(|s| (&s.endpoint_id, s.reset, s.since))
            .collect();
        // Written only when it changes: most attempts leave the endpoint as it was.
        sqlx::query(
            "UPDATE endpoints SET failing_since = v.value->>2 FROM json_each(?) AS v \
             WHERE endpoints.id = v.value->>0 AND CASE WHEN v.value->>1 \
               THEN endpoints.failing_since IS NOT v.value->>2 \
               ELSE endpoints.failing_since IS NULL END",
        )
        .bind(json(&rows))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn claim(
        &mut self,
        lease: &str,
        limit: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        // The one writer connection makes this exclusive. The due index holds the lease
        // expiry too, so deliveries in flight are stepped over without reading their rows.
        let claimed: Vec<(i64,)> = sqlx::query_as(
            "UPDATE deliveries SET lease_owner = ?1, lease_expires_at = ?2, updated_at = ?3 \
             WHERE rowid IN (SELECT rowid FROM deliveries WHERE state = 'pending' \
               AND next_attempt_at <= ?3 AND (lease_expires_at IS NULL OR lease_expires_at <= ?3) \
               ORDER BY next_attempt_at LIMIT ?4) \
             RETURNING rowid",
        )
        .bind(lease)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *self)
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let rowids = json(&claimed.iter().map(|(rowid,)| rowid).collect::<Vec<_>>());
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT d.id, d.attempts, e.id, e.event_type, e.payload, p.id, p.url, p.headers, \
             p.failing_since FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.rowid IN (SELECT value FROM json_each(?)) ORDER BY d.next_attempt_at",
        )
        .bind(&rowids)
        .fetch_all(&mut *self)
        .await?;
        let endpoints: BTreeSet<&str> = rows.iter().map(|row| row.5.as_str()).collect();
        let secrets: Vec<(String, String)> = sqlx::query_as(
            "SELECT endpoint_id, secret FROM endpoint_secrets \
             WHERE endpoint_id IN (SELECT value FROM json_each(?1)) \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY created_at DESC",
        )
        .bind(json(&endpoints))
        .bind(now)
        .fetch_all(&mut *self)
        .await?;
        claims_from_rows(rows, secrets, lease)
    }
}

fn json(rows: &impl serde::Serialize) -> String {
    // Tuples of strings and numbers always serialize.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
}
