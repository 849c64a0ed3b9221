//! The batches group commit sends to PostgreSQL: how many rows go in one statement
//! on this database (the [`Dialect`] behind [`crate::batch`]).

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::batch::{Advance, AttemptInsert, DeliveryInsert, Dialect, EventInsert, Streak};
use crate::{
    ClaimRow, Claimed, Error, EventRow, Millis, claims_from_rows, classify, deliveries_of,
    headers_to_json, tenants_of,
};

use super::CHANNEL;

/// Many rows per statement: each column is bound as an array and `unnest` turns them back
/// into rows.
#[async_trait]
impl Dialect for PgConnection {
    async fn insert_events(
        &mut self,
        events: &[EventInsert<'_>],
    ) -> Result<HashSet<String>, Error> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let tenants: Vec<&str> = events.iter().map(|e| e.new.tenant_id.as_str()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.new.event_type.as_str()).collect();
        let payloads: Vec<&str> = events.iter().map(|e| e.new.payload.as_str()).collect();
        let keys: Vec<Option<&str>> = events
            .iter()
            .map(|e| e.new.idempotency_key.as_deref())
            .collect();
        let nows: Vec<i64> = events.iter().map(|e| e.now).collect();
        // ON CONFLICT makes a concurrent repeat of an idempotency key (from another process)
        // wait for the first insert and then skip, instead of failing.
        let inserted: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
               $6::bigint[]) \
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL \
             DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .bind(&tenants)
        .bind(&types)
        .bind(&payloads)
        .bind(&keys)
        .bind(&nows)
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
            "SELECT id FROM endpoints WHERE tenant_id = $1 AND enabled \
             AND (cardinality(event_types) = 0 OR $2 = ANY(event_types))",
        )
        .bind(tenant_id)
        .bind(event_type)
        .fetch_all(&mut *self)
        .await?;
        Ok(endpoints.into_iter().map(|(id,)| id).collect())
    }

    async fn insert_deliveries(&mut self, deliveries: &[DeliveryInsert]) -> Result<(), Error> {
        let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        let events: Vec<&str> = deliveries.iter().map(|d| d.event_id.as_str()).collect();
        let endpoints: Vec<&str> = deliveries.iter().map(|d| d.endpoint_id.as_str()).collect();
        let nows: Vec<i64> = deliveries.iter().map(|d| d.now).collect();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT d, e, p, 'pending', 0, t, t, t \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS v(d, e, p, t)",
        )
        .bind(&ids)
        .bind(&events)
        .bind(&endpoints)
        .bind(&nows)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn announce(&mut self) -> Result<(), Error> {
        // Delivered to listeners when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1 || current_schema(), '')")
            .bind(CHANNEL)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn earlier(&mut self, tenant_id: &str, key: &str) -> Result<(EventRow, i64), Error> {
        let event: EventRow = sqlx::query_as(
            "SELECT id, tenant_id, event_type, payload, idempotency_key, created_at \
             FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM deliveries WHERE event_id = $1")
                .bind(&event.0)
                .fetch_one(&mut *self)
                .await?;
        Ok((event, count))
    }

    async fn insert_attempts(&mut self, attempts: &[AttemptInsert<'_>]) -> Result<(), Error> {
        let ids: Vec<&str> = attempts.iter().map(|a| a.id.as_str()).collect();
        let deliveries: Vec<&str> = attempts.iter().map(|a| a.delivery_id).collect();
        let started: Vec<i64> = attempts.iter().map(|a| a.attempt.started_at).collect();
        let durations: Vec<i64> = attempts.iter().map(|a| a.attempt.duration_ms).collect();
        let statuses: Vec<Option<i32>> = attempts
            .iter()
            .map(|a| a.attempt.status_code.map(i32::from))
            .collect();
        let excerpts: Vec<Option<&str>> = attempts
            .iter()
            .map(|a| a.attempt.response_excerpt.as_deref())
            .collect();
        let errors: Vec<Option<&str>> = attempts
            .iter()
            .map(|a| a.attempt.error.as_deref())
            .collect();
        let sent: Vec<String> = attempts
            .iter()
            .map(|a| headers_to_json(&a.attempt.request_headers))
            .collect();
        let received: Vec<String> = attempts
            .iter()
            .map(|a| headers_to_json(&a.attempt.response_headers))
            .collect();
        sqlx::query(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
             response_excerpt, error, request_headers, response_headers) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
               $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])",
        )
        .bind(&ids)
        .bind(&deliveries)
        .bind(&started)
        .bind(&durations)
        .bind(&statuses)
        .bind(&excerpts)
        .bind(&errors)
        .bind(&sent)
        .bind(&received)
        .execute(&mut *self)
        .await
        .map_err(|e| classify(e, &deliveries_of(attempts)))?;
        Ok(())
    }

    async fn advance(&mut self, rows: &[Advance<'_>]) -> Result<Vec<(String, String)>, Error> {
        let ids: Vec<&str> = rows.iter().map(|a| a.delivery_id).collect();
        let states: Vec<&str> = rows.iter().map(|a| a.state).collect();
        let nexts: Vec<Option<i64>> = rows.iter().map(|a| a.next).collect();
        let nows: Vec<i64> = rows.iter().map(|a| a.now).collect();
        let leases: Vec<&str> = rows.iter().map(|a| a.lease).collect();
        let held = sqlx::query_as(
            "UPDATE deliveries d SET state = v.state, attempts = d.attempts + 1, \
             next_attempt_at = v.next, lease_owner = NULL, lease_expires_at = NULL, \
             updated_at = v.now \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
               AS v(id, state, next, now, lease) \
             WHERE d.id = v.id AND d.lease_owner = v.lease AND d.state = 'pending' \
             RETURNING d.id, d.endpoint_id",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&nexts)
        .bind(&nows)
        .bind(&leases)
        .fetch_all(&mut *self)
        .await?;
        Ok(held)
    }

    async fn record_streaks(&mut self, streaks: &[Streak]) -> Result<(), Error> {
        let ids: Vec<&str> = streaks.iter().map(|s| s.endpoint_id.as_str()).collect();
        let resets: Vec<bool> = streaks.iter().map(|s| s.reset).collect();
        let since: Vec<Option<i64>> = streaks.iter().map(|s| s.since).collect();
        // Written only when it changes, so a healthy endpoint's row is not locked by every
        // batch (and two processes' batches do not queue on it).
        sqlx::query(
            "UPDATE endpoints p SET failing_since = v.since \
             FROM unnest($1::text[], $2::bool[], $3::bigint[]) AS v(id, reset, since) \
             WHERE p.id = v.id AND CASE WHEN v.reset \
               THEN p.failing_since IS DISTINCT FROM v.since \
               ELSE p.failing_since IS NULL END",
        )
        .bind(&ids)
        .bind(&resets)
        .bind(&since)
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
        // SKIP LOCKED: another process's claim in progress is passed over, not waited for.
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "WITH claimed AS ( \
               UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
               WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= $3 \
                 AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
                 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
               RETURNING id, attempts, event_id, endpoint_id, next_attempt_at) \
             SELECT c.id, c.attempts::bigint, e.id, e.event_type, e.payload, p.id, p.url, \
               p.headers, p.failing_since \
             FROM claimed c JOIN events e ON e.id = c.event_id \
             JOIN endpoints p ON p.id = c.endpoint_id ORDER BY c.next_attempt_at",
        )
        .bind(lease)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *self)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints: Vec<&str> = rows
            .iter()
            .map(|row| row.5.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let secrets: Vec<(String, String)> = sqlx::query_as(
            "SELECT endpoint_id, secret FROM endpoint_secrets WHERE endpoint_id = ANY($1) \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC",
        )
        .bind(&endpoints)
        .bind(now)
        .fetch_all(&mut *self)
        .await?;
        claims_from_rows(rows, secrets, lease)
    }
}
