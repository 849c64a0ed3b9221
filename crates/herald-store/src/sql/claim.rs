//! Claiming: endpoint by endpoint, in turn, no more from each than the worker can start now.
//!
//! Endpoints with due work wait in line by `endpoint_queues.due_at`; a claim takes them from
//! the front, and an endpoint served puts itself at the back (`due_at = now`) while it has
//! more due, so the number of endpoints with due work, not the backlog of one, decides who goes
//! next. On PostgreSQL the claim locks the endpoints it serves (`SKIP LOCKED`: processes
//! claiming at once share the line without waiting on each other), which also makes its rate
//! limit and ordering decisions exclusive; on SQLite the one writer does.
//!
//! For each endpoint the claim applies, in order: its circuit breaker (open: its turn moves to
//! when the circuit closes; half open: one probe), its rate limit (a token bucket refilled at
//! `rate_limit` a second, holding at most a tenth of a second's worth, at least one), the
//! worker's capacity for it, and ordering keys (a delivery whose key has an earlier one still
//! pending, or one in flight, waits with no `next_attempt_at` until that one ends).

use std::collections::{BTreeMap, HashSet};

use super::endpoint_state::CIRCUIT_THRESHOLD;
use super::rows::{ClaimRow, SecretRow, claims};
use super::{Backend, Sql, batch, json_rows, query, sql};
use crate::{ClaimRequest, Claimed, Error, Millis, millis};

/// An endpoint at the front of the line.
#[derive(sqlx::FromRow)]
struct Turn {
    endpoint_id: String,
    enabled: bool,
    rate_limit: Option<i32>,
    tokens: f64,
    tokens_at: Millis,
    failures: i32,
    open_until: Option<Millis>,
}

/// A due delivery of the endpoint being served.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    ordering_key: Option<String>,
    seq: Option<i64>,
}

/// Where an ordering key stands: its lowest-numbered pending delivery, and whether one of
/// its deliveries is in flight.
#[derive(sqlx::FromRow)]
struct KeyHead {
    ordering_key: String,
    head: Option<i64>,
    in_flight: i64,
}

/// The endpoint's line after this claim.
struct Next {
    endpoint_id: String,
    due_at: Option<Millis>,
    tokens: f64,
    tokens_at: Millis,
    open_until: Option<Millis>,
}

/// Leases due deliveries as `request` allows, under `lease`, at `now`.
pub(crate) async fn claim<DB: Backend>(
    db: &mut DB::Connection,
    request: &ClaimRequest,
    lease: &str,
    now: Millis,
) -> Result<Vec<Claimed>, Error> {
    const FRONT: Sql = sql!(
        "SELECT q.endpoint_id, p.enabled, p.rate_limit, q.tokens, q.tokens_at, q.failures, \
           q.open_until \
         FROM endpoint_queues q JOIN endpoints p ON p.id = q.endpoint_id \
         WHERE q.due_at <= $1 \
           AND q.endpoint_id NOT IN (SELECT t.value FROM " [texts "$2"] " AS t) \
         ORDER BY q.due_at LIMIT $3" [lock_skip_of "q"]
    );
    let mut left = request.limit;
    if left == 0 {
        return Ok(Vec::new());
    }
    let full: Vec<&str> = request
        .remaining
        .iter()
        .filter(|(_, free)| **free == 0)
        .map(|(endpoint, _)| endpoint.as_str())
        .collect();
    let turns: Vec<Turn> = query(FRONT)
        .bind(now)
        .bind(json_rows(&full))
        .bind(left)
        .fetch_all(&mut *db)
        .await?;

    let mut taken: Vec<String> = Vec::new();
    let mut waiting: Vec<String> = Vec::new();
    let mut lines: Vec<Next> = Vec::new();
    for turn in turns {
        if !turn.enabled {
            // Disabled while deliveries were due (they raced the disabling): they end here.
            batch::end_pending::<DB>(db, &turn.endpoint_id, now).await?;
            continue;
        }
        if left == 0 {
            break; // the rest keep their place in line
        }
        let mut next = Next {
            endpoint_id: turn.endpoint_id.clone(),
            due_at: None,
            tokens: turn.tokens,
            tokens_at: turn.tokens_at,
            open_until: turn.open_until,
        };
        let mut can = request
            .remaining
            .get(&turn.endpoint_id)
            .copied()
            .unwrap_or(request.capacity)
            .min(left);
        if u32::try_from(turn.failures).unwrap_or(0) >= CIRCUIT_THRESHOLD {
            match turn.open_until {
                // Open: its turn comes when the circuit half-opens.
                Some(until) if until > now => {
                    next.due_at = Some(until);
                    lines.push(next);
                    continue;
                }
                // Half open: one probe, and no other until it is recorded or the lease ends.
                _ => {
                    can = can.min(1);
                    next.open_until = Some(now + millis(request.lease));
                }
            }
        }
        if let Some(rate) = turn.rate_limit.filter(|r| *r > 0) {
            let rate = f64::from(rate);
            let burst = (rate / 10.0).max(1.0);
            let elapsed = (now - turn.tokens_at).max(0) as f64 / 1000.0;
            next.tokens = (turn.tokens + elapsed * rate).min(burst);
            next.tokens_at = now;
            let whole = next.tokens.floor().max(0.0) as u32;
            if whole == 0 {
                // Its turn comes with its next token.
                let wait = ((1.0 - next.tokens) / rate * 1000.0).ceil().max(1.0) as Millis;
                next.due_at = Some(now + wait);
                lines.push(next);
                continue;
            }
            can = can.min(whole);
        }

        let fetch = can.saturating_mul(2).saturating_add(8);
        let candidates: Vec<Candidate> = query(
            "SELECT id, ordering_key, seq FROM deliveries \
             WHERE endpoint_id = $1 AND state = 'pending' AND next_attempt_at <= $2 \
               AND lease_owner IS NULL \
             ORDER BY next_attempt_at, id LIMIT $3",
        )
        .bind(&turn.endpoint_id)
        .bind(now)
        .bind(fetch)
        .fetch_all(&mut *db)
        .await?;
        let heads = key_heads::<DB>(db, &turn.endpoint_id, &candidates).await?;

        let mut here = 0u32;
        let mut looked = 0usize;
        let mut keys_taken: HashSet<&str> = HashSet::new();
        for candidate in &candidates {
            if here == can {
                break;
            }
            looked += 1;
            let Some(key) = candidate.ordering_key.as_deref() else {
                taken.push(candidate.id.clone());
                here += 1;
                continue;
            };
            let first = heads
                .get(key)
                .is_some_and(|h| h.in_flight == 0 && h.head == candidate.seq);
            if first && keys_taken.insert(key) {
                taken.push(candidate.id.clone());
                here += 1;
            } else {
                waiting.push(candidate.id.clone());
            }
        }
        left -= here;
        next.tokens -= f64::from(here);
        // Back of the line while it has more due; else its next delivery's time (retries in
        // flight set theirs when they are recorded).
        next.due_at = if looked < candidates.len() || candidates.len() as u64 == u64::from(fetch) {
            Some(now)
        } else {
            let (due,): (Option<Millis>,) = query(
                "SELECT min(next_attempt_at) FROM deliveries \
                 WHERE endpoint_id = $1 AND state = 'pending' AND lease_owner IS NULL \
                   AND next_attempt_at > $2",
            )
            .bind(&turn.endpoint_id)
            .bind(now)
            .fetch_one(&mut *db)
            .await?;
            due
        };
        lines.push(next);
    }

    apply::<DB>(
        db,
        &taken,
        &waiting,
        &lines,
        lease,
        now + millis(request.lease),
        now,
    )
    .await?;
    read::<DB>(db, &taken, lease, now).await
}

/// For each ordering key among `candidates`: its head and whether it has one in flight.
async fn key_heads<DB: Backend>(
    db: &mut DB::Connection,
    endpoint_id: &str,
    candidates: &[Candidate],
) -> Result<BTreeMap<String, KeyHead>, Error> {
    const HEADS: Sql = sql!(
        "SELECT ordering_key, min(seq) AS head, \
           count(lease_owner) AS in_flight \
         FROM deliveries WHERE endpoint_id = $1 AND state = 'pending' \
           AND ordering_key IN (SELECT t.value FROM " [texts "$2"] " AS t) \
         GROUP BY ordering_key"
    );
    let mut keys: Vec<&str> = candidates
        .iter()
        .filter_map(|c| c.ordering_key.as_deref())
        .collect();
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    keys.sort_unstable();
    keys.dedup();
    let heads: Vec<KeyHead> = query(HEADS)
        .bind(endpoint_id)
        .bind(json_rows(&keys))
        .fetch_all(&mut *db)
        .await?;
    Ok(heads
        .into_iter()
        .map(|h| (h.ordering_key.clone(), h))
        .collect())
}

/// Writes the claim: leases, deliveries set to wait for their key, the endpoints' lines.
async fn apply<DB: Backend>(
    db: &mut DB::Connection,
    taken: &[String],
    waiting: &[String],
    lines: &[Next],
    lease: &str,
    lease_until: Millis,
    now: Millis,
) -> Result<(), Error> {
    const LEASE: Sql = sql!(
        "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
         WHERE id IN (SELECT t.value FROM " [texts "$4"] " AS t)"
    );
    const WAIT: Sql = sql!(
        "UPDATE deliveries SET next_attempt_at = NULL \
         WHERE id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    const LINES: Sql = sql!(
        "UPDATE endpoint_queues SET due_at = CAST(v.value->>1 AS BIGINT), \
           tokens = CAST(v.value->>2 AS DOUBLE PRECISION), \
           tokens_at = CAST(v.value->>3 AS BIGINT), open_until = CAST(v.value->>4 AS BIGINT) \
         FROM " [rows "$1"] " AS v WHERE endpoint_queues.endpoint_id = v.value->>0"
    );
    if !taken.is_empty() {
        query(LEASE)
            .bind(lease)
            .bind(lease_until)
            .bind(now)
            .bind(json_rows(&taken))
            .execute(&mut *db)
            .await?;
    }
    if !waiting.is_empty() {
        query(WAIT)
            .bind(json_rows(&waiting))
            .execute(&mut *db)
            .await?;
    }
    if !lines.is_empty() {
        let rows: Vec<_> = lines
            .iter()
            .map(|n| {
                (
                    &n.endpoint_id,
                    n.due_at,
                    n.tokens,
                    n.tokens_at,
                    n.open_until,
                )
            })
            .collect();
        query(LINES)
            .bind(json_rows(&rows))
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}

/// Everything needed to send the claimed deliveries, in the order they were claimed.
async fn read<DB: Backend>(
    db: &mut DB::Connection,
    taken: &[String],
    lease: &str,
    now: Millis,
) -> Result<Vec<Claimed>, Error> {
    const READ: Sql = sql!(
        "SELECT d.id AS delivery_id, d.attempts, e.id AS event_id, e.event_type, e.payload, \
           p.id AS endpoint_id, p.url, p.headers, d.ordering_key \
         FROM deliveries d JOIN events e ON e.id = d.event_id \
         JOIN endpoints p ON p.id = d.endpoint_id \
         WHERE d.id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    const SECRETS: Sql = sql!(
        "SELECT endpoint_id, secret FROM endpoint_secrets \
         WHERE endpoint_id IN (SELECT t.value FROM " [texts "$1"] " AS t) \
         AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC"
    );
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<ClaimRow> = query(READ)
        .bind(json_rows(&taken))
        .fetch_all(&mut *db)
        .await?;
    let order: BTreeMap<&str, usize> = taken
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    rows.sort_by_key(|row| order.get(row.delivery_id.as_str()).copied());
    let mut endpoints: Vec<&str> = rows.iter().map(|row| row.endpoint_id.as_str()).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let secrets: Vec<SecretRow> = query(SECRETS)
        .bind(json_rows(&endpoints))
        .bind(now)
        .fetch_all(&mut *db)
        .await?;
    claims(rows, secrets, lease)
}
