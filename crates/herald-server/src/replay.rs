//! Replay jobs run in the background: a batch of deliveries per step, each step committed on
//! its own, so a replay of a million events neither holds a long transaction nor stalls new
//! events, and one cut short by a restart resumes where it stopped.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{ReplayState, Store};

/// Events given a delivery per step.
const BATCH: u32 = 500;

/// Runs replay `id` to the end; the store wakes the worker after each step.
pub(crate) fn spawn(store: Arc<dyn Store>, id: String) {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut done = None;
        loop {
            match store.replay_step(&id, BATCH).await {
                Ok(replay) => {
                    failures = 0;
                    match replay.state {
                        // Waiting for late commits before its last look: not a busy loop.
                        ReplayState::Running if done == Some(replay.done) => {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        ReplayState::Running => done = Some(replay.done),
                        ReplayState::Finished => {
                            tracing::info!(replay = %id, events = replay.done, "replay finished");
                            return;
                        }
                        ReplayState::Stopped => {
                            tracing::info!(
                                replay = %id, events = replay.done,
                                "replay stopped: its endpoint is disabled"
                            );
                            return;
                        }
                    }
                }
                Err(error) if error.kind() == herald_store::ErrorKind::NotFound => {
                    // Its endpoint was deleted, and the replay with it.
                    tracing::info!(replay = %id, "replay gone");
                    return;
                }
                Err(error) => {
                    // The database is away: wait, then carry on from the last committed step.
                    failures += 1;
                    let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tracing::warn!(replay = %id, %error, ?pause, "replay step failed");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
}

/// Resumes every unfinished replay (after a restart).
pub(crate) async fn resume(store: &Arc<dyn Store>) -> Result<(), herald_store::Error> {
    for replay in store.running_replays().await? {
        tracing::info!(replay = %replay.id, done = replay.done, total = replay.total, "resuming replay");
        spawn(Arc::clone(store), replay.id);
    }
    Ok(())
}
