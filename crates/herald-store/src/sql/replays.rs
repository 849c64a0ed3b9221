//! Replay jobs: a tenant's past events sent to one endpoint again, a batch per step.

use async_trait::async_trait;

use super::accept::NewDelivery;
use super::notify::{self, Notice};
use super::rows::{ReplayRow, replay_columns};
use super::{Backend, Sql, SqlStore, accept, query, sql};
use crate::error::disabled_endpoint;
use crate::filter::Filter;
use crate::operational::{self, ReplayFinished};
use crate::{Clocked, Error, ErrorKind, Millis, Replay, ReplayState, Replays, new_id};

/// How long after a replay is made it may finish: accepts in flight at that moment commit
/// within it, so the replay's last look sees them.
const SETTLE: Millis = 5_000;

/// How far back before a replay was made its last look reaches for events that committed late.
const LATE_WINDOW: Millis = 60_000;

/// Gives each of `events` a new delivery to `endpoint_id`, due at `now`; how many.
async fn send_again<DB: Backend>(
    tx: &mut DB::Connection,
    events: &[(String, Option<String>)],
    endpoint_id: &str,
    now: Millis,
) -> Result<usize, Error> {
    let deliveries: Vec<_> = events
        .iter()
        .map(|(event_id, key)| NewDelivery {
            event_id,
            endpoint_id,
            ordering_key: key.as_deref(),
            due: now,
            skipped: false,
        })
        .collect();
    accept::insert_deliveries::<DB>(tx, &deliveries).await?;
    Ok(deliveries.len())
}

/// A replay job as a step reads it, with its endpoint's filter and state.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct Job {
    tenant_id: String,
    endpoint_id: String,
    since: Millis,
    until: Millis,
    cursor: Option<String>,
    event_types: String,
    enabled: bool,
    state: String,
    /// The endpoint's channels (a JSON array) and filter: a replay sends only what the
    /// endpoint would have received.
    channels: String,
    filter: Option<String>,
}

/// An event a replay step looks at.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct Candidate {
    id: String,
    ordering_key: Option<String>,
    payload: String,
    /// A JSON array, or NULL for none.
    channels: Option<String>,
}

/// Of `candidates`, those an endpoint asking for `channels` with `filter` receives.
fn wanted(
    candidates: Vec<Candidate>,
    channels: &[String],
    filter: Option<&Filter>,
) -> Vec<(String, Option<String>)> {
    candidates
        .into_iter()
        .filter(|c| {
            let carried: Vec<String> = c
                .channels
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            crate::filter::channels_match(channels, &carried)
        })
        .filter(|c| {
            filter.is_none_or(|f| {
                serde_json::from_str(&c.payload).is_ok_and(|payload| f.matches(&payload))
            })
        })
        .map(|c| (c.id, c.ordering_key))
        .collect()
}

#[async_trait]
impl<DB: Backend> Replays for SqlStore<DB> {
    async fn create_replay(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        since: Millis,
    ) -> Result<Option<Replay>, Error> {
        // The events a replay covers: the tenant's, accepted from `since` until the job was
        // made, of the types the endpoint receives.
        const COUNT: Sql = sql!(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND created_at >= $2 \
             AND created_at <= $3 \
             AND ($4 = '[]' OR event_type IN (SELECT t.value FROM " [texts "$4"] " AS t))"
        );
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        // Locked, so a disabling that commits first is seen, and one that comes later finds
        // the replay and stops it.
        const ENDPOINT: Sql = sql!(
            "SELECT event_types, enabled FROM endpoints WHERE tenant_id = $1 AND id = $2"[lock]
        );
        let Some((types, enabled)): Option<(String, bool)> = query(ENDPOINT)
            .bind(tenant_id)
            .bind(endpoint_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        if !enabled {
            return Err(disabled_endpoint());
        }
        let (total,): (i64,) = query(COUNT)
            .bind(tenant_id)
            .bind(since)
            .bind(now)
            .bind(&types)
            .fetch_one(&mut *tx)
            .await?;
        let state = if total == 0 {
            ReplayState::Finished
        } else {
            ReplayState::Running
        };
        let row: ReplayRow = query(concat!(
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
        .bind(state.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Replay::try_from(row).map(Some)
    }

    async fn replay_step(&self, id: &str, batch: u32) -> Result<Replay, Error> {
        // The row lock keeps two processes resuming the same replay from doubling its work.
        const JOB: Sql = sql!(
            "SELECT r.tenant_id, r.endpoint_id, r.since, r.until, r.cursor, p.event_types, \
               p.enabled, r.state, p.channels, p.filter \
             FROM replays r JOIN endpoints p ON p.id = r.endpoint_id WHERE r.id = $1"[lock]
        );
        const NEXT: Sql = sql!(
            "SELECT id, ordering_key, payload, channels FROM events \
             WHERE tenant_id = $1 AND created_at >= $2 \
             AND created_at <= $3 \
             AND ($4 = '[]' OR event_type IN (SELECT t.value FROM " [texts "$4"] " AS t)) \
             AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $6" [either "" " FOR KEY SHARE"]
        );
        // Events accepted just before the replay was made whose commit landed after the
        // cursor passed their id: a last look at the replay's final minute, for events of the
        // range without a delivery to the endpoint made by this replay (at or after `until`).
        const LATE: Sql = sql!(
            "SELECT e.id, e.ordering_key, e.payload, e.channels FROM events e \
             WHERE e.tenant_id = $1 \
             AND e.created_at >= $2 AND e.created_at <= $3 \
             AND ($4 = '[]' OR e.event_type IN (SELECT t.value FROM " [texts "$4"] " AS t)) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id \
               AND d.endpoint_id = $5 AND d.created_at >= $3) \
             ORDER BY e.id LIMIT $6" [either "" " FOR KEY SHARE OF e"]
        );
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let job: Option<Job> = query(JOB).bind(id).fetch_optional(&mut *tx).await?;
        let Job {
            tenant_id,
            endpoint_id,
            since,
            until,
            cursor,
            event_types: types,
            enabled,
            state,
            channels,
            filter,
        } = job.ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no replay `{id}`")))?;
        if !enabled || state != ReplayState::Running.as_str() {
            // A disabled endpoint receives nothing, whatever made the delivery: a running
            // replay stops; one already ended stays as it is.
            let stopped: Option<ReplayRow> = query(concat!(
                "UPDATE replays SET state = 'stopped', updated_at = $1 \
                 WHERE id = $2 AND state = 'running' RETURNING ",
                replay_columns!()
            ))
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let row: ReplayRow = match stopped {
                Some(row) => row,
                None => {
                    query(concat!(
                        "SELECT ",
                        replay_columns!(),
                        " FROM replays WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            tx.commit().await?;
            return Replay::try_from(row);
        }
        let channels: Vec<String> =
            serde_json::from_str(&channels).map_err(|e| Error::corrupt("channels", e))?;
        let filter = filter
            .as_deref()
            .map(Filter::parse_text)
            .transpose()
            .map_err(|e| Error::corrupt("filter", e))?;
        let events: Vec<Candidate> = query(NEXT)
            .bind(&tenant_id)
            .bind(since)
            .bind(until)
            .bind(&types)
            .bind(&cursor)
            .bind(i64::from(batch))
            .fetch_all(&mut *tx)
            .await?;
        let cursor = events.last().map(|event| event.id.clone());
        let looked_at = events.len();
        let events = wanted(events, &channels, filter.as_ref());
        let sent = send_again::<DB>(&mut tx, &events, &endpoint_id, now).await?;
        // The pass is over; once accepts in flight when the replay was made have had time to
        // commit, late ones get their turn, and when none is left the replay is finished.
        let mut late = Vec::new();
        let mut state = ReplayState::Running;
        if looked_at < batch as usize && now >= until + SETTLE {
            let candidates: Vec<Candidate> = query(LATE)
                .bind(&tenant_id)
                .bind(since.max(until - LATE_WINDOW))
                .bind(until)
                .bind(&types)
                .bind(&endpoint_id)
                .bind(i64::from(batch))
                .fetch_all(&mut *tx)
                .await?;
            late = wanted(candidates, &channels, filter.as_ref());
            send_again::<DB>(&mut tx, &late, &endpoint_id, now).await?;
            // Late events the endpoint does not want are found again each time, and stay
            // unsent: none wanted is the end.
            if late.is_empty() {
                state = ReplayState::Finished;
            }
        }
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let row: ReplayRow = query(concat!(
            "UPDATE replays SET done = done + $1, total = total + $2, \
             cursor = coalesce($3, cursor), state = $4, updated_at = $5 WHERE id = $6 RETURNING ",
            replay_columns!()
        ))
        .bind(count(looked_at + late.len()))
        .bind(count(late.len()))
        .bind(cursor)
        .bind(state.as_str())
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let replay = Replay::try_from(row)?;
        let mut notified = false;
        if state == ReplayState::Finished {
            let finished = ReplayFinished {
                kind: operational::OperationalType::ReplayFinished,
                tenant: replay.tenant_id.clone(),
                replay_id: replay.id.clone(),
                endpoint_id: replay.endpoint_id.clone(),
                events: replay.done.into(),
                since: operational::time(replay.since),
                at: operational::time(now),
            };
            let notice = Notice::new(&replay.tenant_id, operational::REPLAY_FINISHED, &finished);
            notified = notify::emit::<DB>(&mut *tx, vec![notice], now).await?;
        }
        tx.commit().await?;
        if sent + late.len() > 0 || notified {
            self.wake();
        }
        Ok(replay)
    }

    async fn replay(&self, tenant_id: &str, id: &str) -> Result<Option<Replay>, Error> {
        let row: Option<ReplayRow> = query(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(Replay::try_from).transpose()
    }

    async fn running_replays(&self) -> Result<Vec<Replay>, Error> {
        let rows: Vec<ReplayRow> = query(concat!(
            "SELECT ",
            replay_columns!(),
            " FROM replays WHERE state = 'running' ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(Replay::try_from).collect()
    }
}
