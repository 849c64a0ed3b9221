//! Retention: now and then, delete events older than the configured age (with their deliveries
//! and attempts). On PostgreSQL, whole days go at once (their partitions are dropped) and the
//! next days' partitions are made; what is left (a day kept for a pending delivery, SQLite)
//! goes a small batch per statement so no lock is held for long. The chart's attempt counts
//! per hour are kept a week, whatever the events' age.

use std::sync::Arc;
use std::time::Duration;

use herald_store::Store;
use tokio::sync::watch;

/// How long events are kept, and how the deleting is paced.
#[derive(Clone, Debug)]
pub struct Retention {
    /// Events (and their deliveries and attempts) older than this are deleted once no delivery
    /// of theirs is pending. `None` keeps everything.
    pub max_age: Option<Duration>,
    /// Events deleted per statement.
    pub batch: u32,
    /// How often to look for old events.
    pub interval: Duration,
}

impl Default for Retention {
    /// 30 days, 500 a statement, every 10 minutes.
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            batch: 500,
            interval: Duration::from_secs(600),
        }
    }
}

/// Runs until `stop` turns true.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    retention: Retention,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        match store.rotate_partitions(retention.max_age).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::info!(?dropped, "retention: dropped old days' partitions");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "retention: making or dropping partitions failed; trying again later");
            }
        }
        // The chart's counts per hour are kept a week whatever the retention of events.
        if let Err(error) = store.trim_attempt_hours().await {
            tracing::warn!(%error, "retention: deleting old attempt counts failed; trying again later");
        }
        let mut purged = 0;
        while let Some(max_age) = retention.max_age {
            let n = match store.purge(max_age, retention.batch).await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "retention: deleting old events failed; trying again later");
                    break;
                }
            };
            purged += n;
            if n < u64::from(retention.batch) || *stop.borrow() {
                break;
            }
            // Let other writers in between batches.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if purged > 0 {
            tracing::info!(
                purged,
                "retention: deleted old events with their deliveries and attempts"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(retention.interval) => {}
            _ = stop.changed() => {}
        }
    }
}
