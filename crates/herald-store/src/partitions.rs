//! PostgreSQL's day partitions of events, deliveries and attempts (migration 11): made a few
//! days ahead, and dropped whole by retention once every row in them is older than it keeps
//! and none of their deliveries is pending.
//!
//! A day's partitions share a suffix: `events_p20261203`, `deliveries_p20261203`,
//! `attempts_p20261203`. `_before` holds the rows of a database that was there before
//! migration 11; `_default` holds ids no day covers (a clock far off), which retention
//! deletes row by row like SQLite's.

use chrono::DateTime;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Pool, Postgres};

use crate::sql::query;
use crate::{Error, Millis, id_floor as bound};

const DAY: Millis = 24 * 3600 * 1000;

/// Days made ahead of today, so an insert never waits for one and a retention pass missed
/// (herald stopped for a while) leaves room.
const AHEAD: i64 = 3;

/// The partitioned tables, each with the prefix of the ids its key holds, in the order a
/// day's tables are dropped (a delivery's attempts first, an event last).
const TABLES: [(&str, &str); 3] = [
    ("attempts", "dlv"),
    ("deliveries", "dlv"),
    ("events", "evt"),
];

/// The time at which the id `id` (with its prefix) was made.
fn made_at(id: &str) -> Option<Millis> {
    let (_, ulid) = id.split_once('_')?;
    let ulid = ulid::Ulid::from_string(ulid).ok()?;
    Millis::try_from(ulid.timestamp_ms()).ok()
}

/// The suffix of the partitions of the day that starts at `start`.
fn suffix(start: Millis) -> String {
    DateTime::from_timestamp_millis(start)
        .map(|day| day.format("p%Y%m%d").to_string())
        .unwrap_or_else(|| format!("p{}", start / DAY))
}

/// Makes the partitions of today and the next [`AHEAD`] days that are missing. A day that an
/// existing partition already covers (`_before`, on the day of the migration) or whose rows
/// sit in the default partition is left to them.
pub(crate) async fn prepare(pool: &Pool<Postgres>, now: Millis) -> Result<(), Error> {
    let mut conn = pool.acquire().await?;
    let today = now.div_euclid(DAY) * DAY;
    for (table, prefix) in TABLES {
        let existing: Vec<(String,)> = query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1)",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        for start in (0..=AHEAD).map(|n| today + n * DAY) {
            let name = format!("{table}_{}", suffix(start));
            if existing.iter().any(|(have,)| *have == name) {
                continue;
            }
            let storage = if table == "deliveries" {
                // As migration 30 set for deliveries: room on the page for HOT claims and for
                // the success the finish writes, so that its new version stays on its page.
                " WITH (fillfactor = 30)"
            } else {
                ""
            };
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} \
                 FOR VALUES FROM ('{}') TO ('{}'){storage}",
                bound(prefix, start),
                bound(prefix, start + DAY),
            );
            if let Err(error) = in_transaction(&mut conn, create).await {
                match error.code().as_deref() {
                    // Another partition covers the day: `_before`, or another process made it.
                    Some("42P17" | "42P07" | "23505") => {
                        tracing::debug!(%name, %error, "partition not made");
                    }
                    // Rows for the day are in the default partition: they stay there.
                    Some("23514") => tracing::warn!(
                        %name, "rows for this day are in the default partition; not made"
                    ),
                    _ => return Err(error.into()),
                }
            }
        }
    }
    Ok(())
}

/// Drops the days whose every id was made before `cutoff`, oldest first, unless a delivery
/// of theirs (or of one of their events, made later by a replay) is pending: that day waits,
/// and retention deletes its finished rows one by one. Returns the days dropped.
pub(crate) async fn drop_before(
    pool: &Pool<Postgres>,
    cutoff: Millis,
) -> Result<Vec<String>, Error> {
    let mut conn = pool.acquire().await?;
    let days: Vec<(String, String)> = query(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass('events')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut days: Vec<(String, Option<String>, String)> = days
        .into_iter()
        .filter_map(|(name, spec)| {
            let suffix = name.strip_prefix("events_")?.to_owned();
            if !suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return None;
            }
            let (lower, upper) = bounds(&spec)?;
            (made_at(&upper)? <= cutoff).then_some((suffix, lower, upper))
        })
        .collect();
    days.sort_by(|a, b| a.2.cmp(&b.2));
    let mut dropped = Vec::new();
    for (suffix, lower, upper) in days {
        match drop_day(&mut conn, &suffix, lower.as_deref(), &upper).await {
            Ok(true) => dropped.push(suffix),
            Ok(false) => {}
            // Another process dropped it first.
            Err(error) if error.code().as_deref() == Some("42P01") => {}
            Err(error) => {
                tracing::warn!(%error, day = %suffix, "retention: dropping a day failed; trying again later");
                break;
            }
        }
    }
    Ok(dropped)
}

/// A partition's bounds as `pg_get_expr` writes them, `FOR VALUES FROM ('evt_…') TO
/// ('evt_…')` or `FROM (MINVALUE) TO (…)`: the lower id (none for MINVALUE) and the upper.
fn bounds(spec: &str) -> Option<(Option<String>, String)> {
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim().strip_prefix("('")?.strip_suffix("')")?;
        Some(s.to_owned())
    };
    let rest = spec.strip_prefix("FOR VALUES FROM ")?;
    let (from, to) = rest.split_once(" TO ")?;
    let lower = if from.trim() == "(MINVALUE)" {
        None
    } else {
        Some(quoted(from)?)
    };
    Some((lower, quoted(to)?))
}

/// Drops one day's partitions in one transaction, or leaves them when a delivery is pending.
async fn drop_day(
    conn: &mut PgConnection,
    suffix: &str,
    lower: Option<&str>,
    upper: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = conn.begin().await?;
    // Waits for writes in flight to end, and keeps new ones out until the drop commits. Every
    // write that can make an old delivery pending (a retry, a replay) locks its event first.
    dynamic("SET LOCAL lock_timeout = '2s'".into())
        .execute(&mut *tx)
        .await?;
    dynamic(format!("LOCK TABLE events_{suffix} IN EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let as_delivery = |id: &str| format!("dlv_{}", id.split_once('_').map_or("", |(_, u)| u));
    let upper_delivery = as_delivery(upper);
    let lower_delivery = lower.map(as_delivery).unwrap_or_default();
    let lower = lower.unwrap_or("");
    // Its own deliveries (by their ids, which may be of events of an earlier day), and those
    // of its events (which may be of a later day).
    let (pending,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' \
           AND id >= $3 AND id < $4) \
         OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' \
           AND event_id >= $1 AND event_id < $2)",
    )
    .bind(lower)
    .bind(upper)
    .bind(&lower_delivery)
    .bind(&upper_delivery)
    .fetch_one(&mut *tx)
    .await?;
    if pending {
        tracing::debug!(day = %suffix, "retention: a delivery of this day is pending; kept");
        return Ok(false);
    }
    // Deliveries made later for the day's events (replays) are in later days' partitions.
    for statement in [
        "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries \
         WHERE event_id >= $1 AND event_id < $2 AND id >= $3)",
        "DELETE FROM deliveries WHERE event_id >= $1 AND event_id < $2 AND id >= $3",
    ] {
        sqlx::query(statement)
            .bind(lower)
            .bind(upper)
            .bind(&upper_delivery)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM idempotency_keys WHERE event_id >= $1 AND event_id < $2")
        .bind(lower)
        .bind(upper)
        .execute(&mut *tx)
        .await?;
    for (table, _) in TABLES {
        dynamic(format!("DROP TABLE IF EXISTS {table}_{suffix}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Runs `statement` in a transaction that gives up on a lock after a few seconds rather than
/// queue every query on the table behind it.
async fn in_transaction(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    dynamic("SET LOCAL lock_timeout = '5s'".into())
        .execute(&mut *tx)
        .await?;
    dynamic(statement).execute(&mut *tx).await?;
    tx.commit().await
}

/// A statement whose text is made here, from herald's own table names and day suffixes.
fn dynamic(sql: String) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

trait Code {
    fn code(&self) -> Option<String>;
}

impl Code for sqlx::Error {
    fn code(&self) -> Option<String> {
        match self {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_bounds_are_its_first_ids() {
        // 2026-12-03T00:00:00Z
        let start = 1_796_256_000_000;
        assert_eq!(suffix(start), "p20261203");
        assert_eq!(made_at(&bound("evt", start)), Some(start));
        assert!(bound("evt", start) < crate::new_id_at("evt", start));
        assert!(crate::new_id_at("evt", start + DAY - 1) < bound("evt", start + DAY));
    }

    #[test]
    fn bounds_are_read_as_postgres_writes_them() {
        assert_eq!(
            bounds("FOR VALUES FROM (MINVALUE) TO ('evt_01M8Z5KH000000000000000000')"),
            Some((None, "evt_01M8Z5KH000000000000000000".to_owned()))
        );
        assert_eq!(
            bounds("FOR VALUES FROM ('evt_01A') TO ('evt_01B')"),
            Some((Some("evt_01A".to_owned()), "evt_01B".to_owned()))
        );
        assert_eq!(bounds("DEFAULT"), None);
    }
}
