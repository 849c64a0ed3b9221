//! Who an announcement of due work is for. On PostgreSQL a transaction that makes deliveries
//! due tells the workers that serve their endpoints (`Backend::announcement`), each on a
//! channel of its own, which only its process listens to; the workers of the process that
//! commits it are woken by that process, with no announcement at all. An endpoint nobody
//! serves is announced to every process. An announcement costs each listening connection of
//! the database a transaction (PostgreSQL keeps no list of who listens on which channel and
//! signals every listener), so the announcements a process no longer makes for its own
//! workers are what two processes save: figures in docs/scaling.md, "Two processes on one
//! database".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The names this process's workers registered under, for its listener to listen on their
/// channels and to know its own, and whether it hears announcements at all.
#[derive(Clone, Debug, Default)]
pub struct Workers {
    /// Shared with each batch that reads them, so a batch copies none; replaced when one is
    /// added.
    names: Arc<Mutex<Arc<Vec<String>>>>,
    hearing: Arc<AtomicBool>,
    /// Signalled when a name is added, for the listener to listen on its channel too.
    added: Arc<Notify>,
}

impl Workers {
    /// Counts `name` as this process's. Names are never forgotten: a worker that registers
    /// again takes a new name, and a name no longer registered is never the one served.
    pub(crate) fn add(&self, name: &str) {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if !names.iter().any(|n| n == name) {
            Arc::make_mut(&mut names).push(name.to_owned());
            self.added.notify_one();
        }
    }

    /// The names, in the order they were added.
    pub(crate) fn names(&self) -> Arc<Vec<String>> {
        Arc::clone(&self.names.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Returns once a name has been added since the last time it returned (at once if one
    /// was added meanwhile).
    // Only PostgreSQL listens.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) async fn added(&self) {
        self.added.notified().await;
    }

    /// Whether an announcement whose payload is `payload` is for this process: a JSON array of
    /// the workers to wake names one of its own, or it names nobody in particular (empty,
    /// or anything else: an announcement is never dropped for not being understood). A
    /// process with no worker of its own passes everything on (a tool, a test). Announcements
    /// on a worker's own channel are empty; arrays of names are what processes of herald
    /// before those channels send on the channel of all.
    // Only PostgreSQL listens.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn wanted(&self, payload: &str) -> bool {
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if names.is_empty() {
            return true;
        }
        match serde_json::from_str::<Vec<&str>>(payload) {
            Ok(named) => named.iter().any(|n| names.iter().any(|own| own == n)),
            Err(_) => true,
        }
    }

    /// Whether the listener is connected, so this process hears announcements made for it by
    /// other processes; until it is (and while it is away) a commit wakes this process's
    /// workers itself whatever it made due.
    pub(crate) fn hearing(&self) -> bool {
        self.hearing.load(Ordering::Relaxed)
    }

    // Only PostgreSQL listens.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn set_hearing(&self, hearing: bool) {
        self.hearing.store(hearing, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;

    #[test]
    fn an_announcement_wakes_a_process_only_when_it_names_one_of_its_workers() {
        let workers = Workers::default();
        assert!(workers.wanted(r#"["b"]"#), "no worker here yet: pass it on");
        workers.add("a");
        workers.add("a.1");
        assert!(workers.wanted(r#"["b","a.1"]"#));
        assert!(!workers.wanted(r#"["b"]"#));
        assert!(!workers.wanted(r#"["a.10"]"#));
        assert!(workers.wanted(""), "nobody in particular");
        assert!(workers.wanted("not json"));
    }
}
