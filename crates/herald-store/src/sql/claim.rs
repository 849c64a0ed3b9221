//! Claiming: endpoint by endpoint, in turn, no more from each than the worker can start now.
//!
//! Endpoints with due work wait in line by `endpoint_queues.due_at`; a claim takes them from
//! the front, and an endpoint served puts itself at the back (`due_at = now`) while it has
//! more due, so the number of endpoints with due work, not the backlog of one, decides who goes
//! next. On PostgreSQL the claim locks the endpoints it serves (`SKIP LOCKED`: processes
//! claiming at once share the line without waiting on each other), which also makes its rate
//! limit and ordering decisions exclusive; on SQLite the one writer does.
//!
//! On PostgreSQL each endpoint is served by one worker: of the serving workers (registered,
//! not stopping, and seen in the last 5 s: each beats `workers.seen_at` every second), the
//! one it hashes highest with (rendezvous hashing, `[owned_by]` in the queries), and other
//! workers' claims pass it over. Two processes taking turns at one busy
//! endpoint's queue row, or each serving every endpoint with half-sized claims and commits,
//! cost more than either serving alone; with many endpoints each worker gets about its share,
//! and a worker joining or leaving moves only the endpoints it gains or had. One that stops
//! says so first ([`crate::Registration::retire`]); one that is gone keeps its endpoints until
//! a reaper (any process, every second) finds its session closed, and one alive but stalled
//! (stopped, wedged) until its heartbeat is 5 s old. Their leased deliveries pass when the
//! session is found closed, or for a stalled worker when the leases run out, since it may
//! still be sending them. A registered worker that does not serve (stopping, or back from a
//! stall before its next heartbeat) takes no endpoint; a claimer that is not a registered
//! worker (a tool, a test) takes any.
//!
//! For each endpoint the claim applies, in order: its circuit breaker (open: its turn moves to
//! when the circuit closes; half open: one probe), its rate limit (a token bucket refilled at
//! `rate_limit` a second, holding at most a tenth of a second's worth, at least one), the
//! worker's capacity for it, and ordering keys (a delivery whose key has an earlier one still
//! pending, or one in flight, waits with no `next_attempt_at` until that one ends).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::endpoint_state::CIRCUIT_THRESHOLD;
use super::exec::after;
use super::rows::{ClaimRow, SendRow, claims};
use super::{Backend, DeliveryKey, Query, Run, Sql, json_rows, query, sql, turns};
use crate::{Claim, ClaimRequest, Claimed, Error, Millis, millis};

/// An endpoint at the front of the line.
#[derive(sqlx::FromRow, serde::Deserialize)]
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
#[derive(sqlx::FromRow, serde::Deserialize)]
struct Candidate {
    id: String,
    endpoint_id: String,
    ordering_key: Option<String>,
    seq: Option<i64>,
    next_attempt_at: Millis,
}

impl Candidate {
    fn key(&self) -> DeliveryKey {
        (self.endpoint_id.clone(), self.id.clone())
    }
}

/// Where an ordering key stands: its lowest-numbered pending delivery, and whether one of
/// its deliveries is in flight.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct KeyHead {
    endpoint_id: String,
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
    /// Half open: until when its probe holds the circuit, once a delivery goes as the probe.
    probe_until: Option<Millis>,
}

/// What a claim leased, before what sending it needs is read ([`read`]).
#[derive(Debug)]
pub(crate) struct Leased {
    /// The lease token the deliveries are held under.
    pub(crate) lease: String,
    /// The deliveries leased, in the order they were claimed.
    pub(crate) ids: Vec<DeliveryKey>,
    /// See [`Claim::next_turn`].
    pub(crate) next_turn: Option<Millis>,
    /// What they send, when it was read in the claim's own transaction.
    pub(crate) read: Option<Vec<Claimed>>,
}

/// Claims in a batch of the one writer's (SQLite) read what they send after the commit, on a
/// reader, so the writer is not kept doing it; those of at most this many deliveries read it in
/// the writer's transaction, where a few rows cost less than the reader's hop adds to their
/// latency.
pub(crate) const READ_IN_WRITER: usize = 16;

/// Leases due deliveries as `request` allows, under `lease`, at `now`, and reads everything
/// needed to send them and when the next turn of an endpoint the worker will still have room
/// for comes, all in one transaction.
pub(crate) async fn claim<DB: Backend>(
    db: &mut impl Run<DB>,
    request: &ClaimRequest,
    lease: &str,
    now: Millis,
) -> Result<Claim, Error> {
    let leased = lease_due::<DB>(db, request, lease, now).await?;
    Ok(Claim {
        deliveries: read::<DB>(db, &leased.ids, lease, now).await?,
        next_turn: leased.next_turn,
    })
}

/// Leases due deliveries as `request` allows, under `lease`, at `now`, and reads when the
/// next turn of an endpoint the worker will still have room for comes; what sending them
/// needs is left to [`read`], which may run after the commit, on another connection (the
/// deliveries and what they send do not change while they are leased).
pub(crate) async fn lease_due<DB: Backend>(
    db: &mut impl Run<DB>,
    request: &ClaimRequest,
    lease: &str,
    now: Millis,
) -> Result<Leased, Error> {
    const FRONT: Sql = sql!(
        "SELECT q.endpoint_id, p.enabled, p.rate_limit, q.tokens, q.tokens_at, q.failures, \
           q.open_until \
         FROM endpoint_queues q JOIN endpoints p ON p.id = q.endpoint_id \
         WHERE q.due_at <= $1 \
           AND q.endpoint_id NOT IN (SELECT t.value FROM " [texts "$2"] " AS t)" [owned_by "q" "$4"]
         " ORDER BY q.due_at LIMIT $3" [lock_skip_of "q"]
    );
    let left = request.limit;
    if left == 0 {
        return Ok(Leased {
            lease: lease.to_owned(),
            ids: Vec::new(),
            next_turn: None,
            read: None,
        });
    }
    // Before any queue row is locked, so a claim never holds one while it waits for another.
    turns::fold::<DB>(db).await?;
    let mut full: Vec<&str> = request
        .remaining
        .iter()
        .filter(|(_, free)| **free == 0)
        .map(|(endpoint, _)| endpoint.as_str())
        .collect();
    let turns: Vec<Turn> = query(FRONT)
        .bind(now)
        .bind(json_rows(&full))
        .bind(left)
        .bind(&request.worker)
        .fetch_all(&mut *db)
        .await?;
    // Endpoints this claim fills up wait for a slot, not for their turn.
    let mut filled: Vec<String> = Vec::new();

    // Each endpoint's share: its circuit, rate limit and the worker's room decide how many
    // it can take now; the claim's own limit is shared out below, in line order.
    let mut served: Vec<(Next, u32)> = Vec::new();
    let mut lines: Vec<Next> = Vec::new();
    for turn in turns {
        if !turn.enabled {
            // Disabled while deliveries were due (they raced the disabling): skipped here.
            turns::skip_pending::<DB>(db, &turn.endpoint_id, now).await?;
            continue;
        }
        match share(&turn, request, left, now) {
            (next, 0) => lines.push(next),
            (next, can) => served.push((next, can)),
        }
    }
    let fair = fair_shares(
        &served.iter().map(|(_, can)| *can).collect::<Vec<_>>(),
        left,
    );
    for ((_, can), fair) in served.iter_mut().zip(fair) {
        *can = fair;
    }
    served.retain(|(_, can)| *can > 0);

    // Every served endpoint's due deliveries in one statement, as many as each can take, and
    // where their keys stand in another. One that must wait for its ordering key is set aside
    // (it is no longer due) and its endpoint stays at the front for the next claim: reading
    // spare rows in case of that cost every claim more than the next claim costs.
    let wanted: Vec<(&str, u32)> = served
        .iter()
        .map(|(next, can)| (next.endpoint_id.as_str(), *can))
        .collect();
    let candidates = candidates::<DB>(db, &wanted, now).await?;
    let heads = key_heads::<DB>(db, &candidates).await?;

    let mut taken: Vec<DeliveryKey> = Vec::new();
    let mut waiting: Vec<DeliveryKey> = Vec::new();
    let mut ran_out: Vec<usize> = Vec::new();
    // The shares add up to no more than the claim's room.
    for (mut next, can) in served {
        let mine = candidates
            .get(next.endpoint_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut here = 0u32;
        let mut keys_taken: HashSet<&str> = HashSet::new();
        for candidate in mine {
            if here == can {
                break;
            }
            let Some(key) = candidate.ordering_key.as_deref() else {
                taken.push(candidate.key());
                here += 1;
                continue;
            };
            let first = heads
                .get(&(next.endpoint_id.clone(), key.to_owned()))
                .is_some_and(|h| h.in_flight == 0 && h.head == candidate.seq);
            if first && keys_taken.insert(key) {
                taken.push(candidate.key());
                here += 1;
            } else {
                waiting.push(candidate.key());
            }
        }
        next.tokens -= f64::from(here);
        // A probe that found nothing it could send (its due deliveries wait for their keys)
        // leaves the circuit half open: the next claim probes again.
        if here > 0 {
            next.open_until = next.probe_until.or(next.open_until);
        }
        if here >= request.room(&next.endpoint_id) {
            filled.push(next.endpoint_id.clone());
        }
        // Back of the line while it may have more due (it had all it could take); else at its
        // next delivery's time (retries in flight set theirs when they are recorded), read
        // below for all such at once.
        if mine.len() as u64 == u64::from(can) {
            next.due_at = Some(now);
        } else {
            ran_out.push(lines.len());
        }
        lines.push(next);
    }
    let later: Vec<&str> = ran_out
        .iter()
        .map(|i| lines[*i].endpoint_id.as_str())
        .collect();
    let due = next_due::<DB>(db, &later, now).await?;
    for i in ran_out {
        lines[i].due_at = due.get(&lines[i].endpoint_id).copied().flatten();
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
    full.extend(filled.iter().map(String::as_str));
    let next_turn = next_turn::<DB>(db, &full, &request.worker).await?;
    Ok(Leased {
        lease: lease.to_owned(),
        ids: taken,
        next_turn,
        read: None,
    })
}

/// When the next endpoint's turn comes ([`next_turn`]): the line's front through its index
/// (`due_at IS NOT NULL` is the index's predicate), stopping at the first endpoint not left
/// out and not another worker's. A `min` over the queue rows read every one, idle endpoints'
/// too, in every claim.
///
/// Wake-ups count only for the endpoints the worker serves. The claim folded those it could,
/// but not those another worker's claim holds while it folds them, nor those committed since;
/// under load there are always some, and counting other workers' had a worker that serves
/// none of them claim again at once, for nothing, over and over.
const NEXT_TURN: Sql = sql!(
    "SELECT min(due_at) FROM (SELECT * FROM (SELECT q.due_at FROM endpoint_queues q \
       WHERE q.due_at IS NOT NULL \
         AND q.endpoint_id NOT IN (SELECT t.value FROM " [texts "$1"] " AS t)" [owned_by "q" "$2"]
       " ORDER BY q.due_at LIMIT 1) AS front \
     UNION ALL SELECT min(q.due_at) FROM endpoint_wakeups q WHERE true" [owned_by "q" "$2"]
     ") AS due"
);

/// When the next turn of an endpoint `worker` serves comes, leaving out those in `skip`: the
/// earliest in line, or asked for by a wake-up not yet folded in (the next claim folds it).
pub(crate) async fn next_turn<DB: Backend>(
    db: &mut impl Run<DB>,
    skip: &[impl serde::Serialize + Sync],
    worker: &str,
) -> Result<Option<Millis>, Error> {
    let (due,): (Option<Millis>,) = query(NEXT_TURN)
        .bind(json_rows(&skip))
        .bind(worker)
        .fetch_one(&mut *db)
        .await?;
    Ok(due)
}

/// `turn`'s line after this claim, and how many deliveries it may take now: no more than the
/// worker has room for, none while its circuit is open, one while half open, and no more
/// than its rate limit's whole tokens.
fn share(turn: &Turn, request: &ClaimRequest, left: u32, now: Millis) -> (Next, u32) {
    let mut next = Next {
        endpoint_id: turn.endpoint_id.clone(),
        due_at: None,
        tokens: turn.tokens,
        tokens_at: turn.tokens_at,
        open_until: turn.open_until,
        probe_until: None,
    };
    let mut can = request.room(&turn.endpoint_id).min(left);
    if u32::try_from(turn.failures).unwrap_or(0) >= CIRCUIT_THRESHOLD {
        match turn.open_until {
            // Open: its turn comes when the circuit half-opens.
            Some(until) if until > now => {
                next.due_at = Some(until);
                return (next, 0);
            }
            // Half open: one probe, and no other until it is recorded or the lease ends.
            _ => {
                can = can.min(1);
                next.probe_until = Some(now + millis(request.lease));
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
            return (next, 0);
        }
        can = can.min(whole);
    }
    (next, can)
}

/// Shares `total` among endpoints that could take `wants` each, max-min fairly: each gets
/// what it wants or an equal share of what the smaller wants leave, whichever is less; what
/// does not divide evenly goes to the first in line.
fn fair_shares(wants: &[u32], total: u32) -> Vec<u32> {
    let wanted: u64 = wants.iter().map(|w| u64::from(*w)).sum();
    if wanted <= u64::from(total) {
        return wants.to_vec();
    }
    let mut sorted = wants.to_vec();
    sorted.sort_unstable();
    let (mut left, mut level) = (total, 0);
    for (i, want) in sorted.iter().enumerate() {
        let others = (sorted.len() - i) as u32;
        if u64::from(*want) * u64::from(others) <= u64::from(left) {
            left -= want;
        } else {
            level = left / others;
            break;
        }
    }
    let mut shares: Vec<u32> = wants.iter().map(|w| (*w).min(level)).collect();
    let mut rest = total - shares.iter().sum::<u32>();
    for (share, want) in shares.iter_mut().zip(wants) {
        if rest == 0 {
            break;
        }
        if *share < *want {
            *share += 1;
            rest -= 1;
        }
    }
    shares
}

/// Up to `fetch` due, unleased deliveries of each `(endpoint, fetch)` in `wanted`, oldest due
/// first, by endpoint.
///
/// SQLite allows no outer column in a `LIMIT`, so there each endpoint reads up to the largest
/// `fetch` by the index, and each is cut to its own here; PostgreSQL does it per endpoint
/// with `LATERAL`. The order is made here too: a window and two sorts over every endpoint's
/// rows cost the writer more than sorting a few hundred ids.
async fn candidates<DB: Backend>(
    db: &mut impl Run<DB>,
    wanted: &[(&str, u32)],
    now: Millis,
) -> Result<BTreeMap<String, Vec<Candidate>>, Error> {
    const DUE: Sql = sql!(
        "SELECT c.id, c.endpoint_id, c.ordering_key, c.seq, c.next_attempt_at FROM "
        [either
            "jsonb_each($1) AS v JOIN deliveries c ON c.rowid IN \
               (SELECT r.rowid FROM deliveries r WHERE r.endpoint_id = v.value->>0 \
                  AND r.state = 'pending' AND r.next_attempt_at <= $2 \
                  AND r.lease_owner IS NULL \
                ORDER BY r.next_attempt_at LIMIT $3)"
            "json_array_elements(CAST($1 AS json)) AS v CROSS JOIN LATERAL \
               (SELECT r.id, r.endpoint_id, r.ordering_key, r.seq, r.next_attempt_at \
                FROM deliveries r WHERE r.endpoint_id = v.value->>0 \
                  AND r.state = 'pending' AND r.next_attempt_at <= $2 \
                  AND r.lease_owner IS NULL \
                ORDER BY r.next_attempt_at \
                LIMIT least(CAST(v.value->>1 AS BIGINT), $3)) AS c"]
    );
    let mut by_endpoint: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    let Some(most) = wanted.iter().map(|(_, fetch)| *fetch).max() else {
        return Ok(by_endpoint);
    };
    let rows: Vec<Candidate> = query(DUE)
        .bind(json_rows(&wanted))
        .bind(now)
        .bind(i64::from(most))
        .fetch_all(&mut *db)
        .await?;
    for row in rows {
        by_endpoint
            .entry(row.endpoint_id.clone())
            .or_default()
            .push(row);
    }
    for (endpoint, fetch) in wanted {
        if let Some(mine) = by_endpoint.get_mut(*endpoint) {
            mine.sort_unstable_by(|a, b| {
                (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id))
            });
            mine.truncate(*fetch as usize);
        }
    }
    Ok(by_endpoint)
}

/// For each (endpoint, ordering key) among `candidates`: its head and whether it has one in
/// flight.
async fn key_heads<DB: Backend>(
    db: &mut impl Run<DB>,
    candidates: &BTreeMap<String, Vec<Candidate>>,
) -> Result<BTreeMap<(String, String), KeyHead>, Error> {
    const HEADS: Sql = sql!(
        "SELECT d.endpoint_id, d.ordering_key, min(d.seq) AS head, \
           count(d.lease_owner) AS in_flight \
         FROM " [rows "$1"] " AS v JOIN deliveries d \
           ON d.endpoint_id = v.value->>0 AND d.ordering_key = v.value->>1 \
         WHERE d.state = 'pending' \
         GROUP BY d.endpoint_id, d.ordering_key"
    );
    let mut keys: Vec<(&str, &str)> = candidates
        .values()
        .flatten()
        .filter_map(|c| Some((c.endpoint_id.as_str(), c.ordering_key.as_deref()?)))
        .collect();
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    keys.sort_unstable();
    keys.dedup();
    let heads: Vec<KeyHead> = query(HEADS)
        .bind(json_rows(&keys))
        .fetch_all(&mut *db)
        .await?;
    Ok(heads
        .into_iter()
        .map(|h| ((h.endpoint_id.clone(), h.ordering_key.clone()), h))
        .collect())
}

/// For each of `endpoints`: when its next unleased pending delivery is due, if it has one.
async fn next_due<DB: Backend>(
    db: &mut impl Run<DB>,
    endpoints: &[&str],
    now: Millis,
) -> Result<BTreeMap<String, Option<Millis>>, Error> {
    const NEXT: Sql = sql!(
        "SELECT t.value AS endpoint_id, \
           (SELECT min(d.next_attempt_at) FROM deliveries d \
            WHERE d.endpoint_id = t.value AND d.state = 'pending' \
              AND d.lease_owner IS NULL AND d.next_attempt_at > $2) AS due_at \
         FROM " [texts "$1"] " AS t"
    );
    if endpoints.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, Option<Millis>)> = query(NEXT)
        .bind(json_rows(&endpoints))
        .bind(now)
        .fetch_all(&mut *db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Writes the claim: leases, deliveries set to wait for their key, the endpoints' lines.
async fn apply<DB: Backend>(
    db: &mut impl Run<DB>,
    taken: &[DeliveryKey],
    waiting: &[DeliveryKey],
    lines: &[Next],
    lease: &str,
    lease_until: Millis,
    now: Millis,
) -> Result<(), Error> {
    const LEASE: Sql = sql!(
        "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
         WHERE (endpoint_id, id) IN " [keys "$4"]
    );
    const WAIT: Sql = sql!(
        "UPDATE deliveries SET next_attempt_at = NULL \
         WHERE (endpoint_id, id) IN " [keys "$1"]
    );
    const LINES: Sql = sql!(
        "UPDATE endpoint_queues SET due_at = CAST(v.value->>1 AS BIGINT), \
           tokens = CAST(v.value->>2 AS DOUBLE PRECISION), \
           tokens_at = CAST(v.value->>3 AS BIGINT), open_until = CAST(v.value->>4 AS BIGINT) \
         FROM " [rows "$1"] " AS v WHERE endpoint_queues.endpoint_id = v.value->>0"
    );
    let mut writes: Vec<Query<'_>> = Vec::new();
    if !taken.is_empty() {
        writes.push(
            query(LEASE)
                .bind(lease)
                .bind(lease_until)
                .bind(now)
                .bind(json_rows(&taken)),
        );
    }
    if !waiting.is_empty() {
        writes.push(query(WAIT).bind(json_rows(&waiting)));
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
        writes.push(query(LINES).bind(json_rows(&rows)));
    }
    // One round trip where the database can: they write different rows.
    if let Some(last) = writes.pop() {
        after::<DB>(db, writes, last)
            .await?
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}

/// The claimed deliveries with their events (`$1`: `[endpoint, id]` each).
pub(crate) const READ_CLAIMED: Sql = sql!(
    "SELECT d.id AS delivery_id, d.attempts, e.id AS event_id, e.event_type, e.payload, \
       d.endpoint_id, d.ordering_key, e.version AS event_version, e.versions AS converted, \
       e.traceparent \
     FROM " [rows "$1"] " AS k \
       JOIN deliveries d ON d.endpoint_id = k.value->>0 AND d.id = k.value->>1"
      [event_of "d.endpoint_id" "d.event_id"]
);

/// Everything needed to send the claimed deliveries (with each endpoint's signing secrets),
/// in the order they were claimed: the deliveries with their events, then what their
/// endpoints send with (URL, headers, pinned version, secrets) once per endpoint, where a
/// claim of many deliveries has few endpoints.
pub(crate) async fn read<DB: Backend>(
    db: &mut impl Run<DB>,
    taken: &[DeliveryKey],
    lease: &str,
    now: Millis,
) -> Result<Vec<Claimed>, Error> {
    const ENDPOINTS: Sql = sql!(
        "SELECT p.id, p.url, p.headers, p.version AS pin, \
           (SELECT " [json_array "s.secret" "s.created_at DESC"] " FROM endpoint_secrets s \
             WHERE s.endpoint_id = p.id AND (s.expires_at IS NULL OR s.expires_at > $2)) \
             AS secrets \
         FROM endpoints p WHERE p.id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<ClaimRow> = query(READ_CLAIMED)
        .bind(json_rows(&taken))
        .fetch_all(&mut *db)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: BTreeSet<&str> = rows.iter().map(|row| row.endpoint_id.as_str()).collect();
    let endpoints: Vec<SendRow> = query(ENDPOINTS)
        .bind(json_rows(&ids))
        .bind(now)
        .fetch_all(&mut *db)
        .await?;
    let order: BTreeMap<&str, usize> = taken
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (id.as_str(), i))
        .collect();
    rows.sort_by_key(|row| order.get(row.delivery_id.as_str()).copied());
    claims(rows, endpoints, lease)
}

#[cfg(test)]
mod tests {
    use super::fair_shares;

    /// The next turn is read through the line's index, stopping at the first endpoint not
    /// left out, never from every endpoint's queue row: with 100,000 endpoints and nothing due
    /// (`HERALD_BENCH_IDLE_ENDPOINTS` in the benchmark) reading them all took 9.6 ms a claim
    /// and halved the deliveries a second. PostgreSQL's plan depends on its statistics; the
    /// benchmark shows it.
    #[tokio::test]
    async fn the_next_turn_is_read_through_the_lines_index() {
        let steps = crate::sql::sqlite_plan(super::NEXT_TURN.sqlite, 1).await;
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH q USING INDEX endpoint_queues_due")),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s == "SCAN q" || s == "SCAN endpoint_queues"),
            "{steps:?}"
        );
    }

    #[test]
    fn everyone_gets_what_they_want_when_it_fits() {
        assert_eq!(fair_shares(&[3, 8, 1], 12), vec![3, 8, 1]);
        assert_eq!(fair_shares(&[], 12), Vec::<u32>::new());
    }

    #[test]
    fn the_rest_is_shared_equally_above_the_small_wants() {
        // 2 and 3 are met; 20 is left for three, 6 each and 2 to the first in line.
        assert_eq!(fair_shares(&[256, 2, 256, 3, 256], 25), vec![7, 2, 7, 3, 6]);
        assert_eq!(fair_shares(&[256], 512).iter().sum::<u32>(), 256);
        let fifty = fair_shares(&[256; 50], 512);
        assert_eq!(fifty.iter().sum::<u32>(), 512);
        assert!(fifty.iter().all(|s| *s == 10 || *s == 11), "{fifty:?}");
    }

    #[test]
    fn fewer_slots_than_endpoints_go_to_the_first_in_line() {
        assert_eq!(fair_shares(&[5, 5, 5], 2), vec![1, 1, 0]);
    }
}
