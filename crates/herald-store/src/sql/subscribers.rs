//! Which endpoints an event reaches: those of its tenant subscribed to its type that its
//! version, channels and filter let through. Read for each batch of events accepted; on
//! PostgreSQL, where each statement is a round trip and, outside a transaction, a transaction,
//! they are also kept ([`Kept`]), so that a batch is accepted with one statement where it took
//! two: the read, then the write.
//!
//! What is kept is kept with the version of its tenant's subscribers it was read at
//! (`tenants.subscribers`, which a trigger moves on with every change to an endpoint that
//! accepting reads, drawn from one sequence so that no version is given twice: migrations 27
//! and 28). A batch's write checks, in its own snapshot, that the versions of what it took
//! from the kept are still the tenants' (`herald_subscribers_are`), and fails without writing
//! anything if one is not ([`Error::is_stale_subscribers`]): what was kept of the batch's
//! tenants is forgotten, and the committer tries the batch once more, reading them afresh.
//! What a batch reads itself is not checked, as no accept on either database checks its own
//! read: an endpoint changed between the read and the write changed at the same time as the
//! event arrived. So an event is never accepted with subscribers kept from before a change its
//! statement sees, whichever process made it, and a tenant changing its endpoints without
//! pause cannot make a batch fail twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Backend, Run, Sql, json_rows, query, sql};
use crate::filter::{self, Filter};
use crate::{Error, NewEvent};

/// The endpoints subscribed to the types of a batch's events, for all its tenants at once
/// (`$1`: `[tenant, type, 1 unless the type is operational]`). Disabled endpoints too: what
/// they miss is recorded as skipped, never dropped silently. An endpoint subscribed to every
/// type (`[]`) gets herald's operational events only if it names them.
const SUBSCRIBED: Sql = sql!(
    "SELECT k.value->>0 AS tenant_id, k.value->>1 AS event_type, \
       p.id, p.version, p.enabled, p.channels, p.filter \
     FROM " [rows "$1"] " AS k JOIN endpoints p ON p.tenant_id = k.value->>0 \
     WHERE (p.event_types = '[]' AND CAST(k.value->>2 AS INTEGER) = 1) \
       OR EXISTS (SELECT 1 FROM " [texts "p.event_types"] " AS t \
         WHERE t.value = k.value->>1)"
);

/// Each tenant's version of its subscribers (`$1`: the tenants), read before the subscribers
/// themselves: kept with them, a version read later could be newer than what was read.
const VERSIONS: Sql = sql!(
    "SELECT t.id, t.subscribers FROM tenants t \
     WHERE t.id IN (SELECT k.value FROM " [texts "$1"] " AS k)"
);

/// The most endpoints kept, each tenant's type counting as one at least; past it, everything
/// kept is forgotten and read again. A tenant's endpoints are kept once for each of its types
/// that events came in, so what is kept is bounded by them, not by the pairs: at a few hundred
/// bytes an endpoint, tens of megabytes at most.
const MOST_KEPT: usize = 100_000;

/// The subscribers this process read, by tenant and event type, with the version of the
/// tenant's subscribers each was read at. Clones share what is kept.
#[derive(Clone, Default)]
pub(crate) struct Kept {
    known: Arc<Mutex<Known>>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").finish_non_exhaustive()
    }
}

/// What is kept: by tenant, by type; and how many endpoints that is ([`MOST_KEPT`]).
#[derive(Default)]
struct Known {
    tenants: HashMap<String, HashMap<String, Versioned>>,
    endpoints: usize,
}

/// A tenant's subscribers to one type, at a version of its subscribers.
struct Versioned {
    version: i64,
    endpoints: Arc<Vec<Subscriber>>,
}

impl Versioned {
    /// What it counts for against [`MOST_KEPT`].
    fn weight(&self) -> usize {
        self.endpoints.len().max(1)
    }
}

impl Known {
    fn get(&self, tenant: &str, event_type: &str) -> Option<&Versioned> {
        self.tenants.get(tenant)?.get(event_type)
    }

    fn keep(&mut self, tenant: &str, event_type: &str, versioned: Versioned) {
        if self.endpoints + versioned.weight() > MOST_KEPT {
            *self = Known::default();
        }
        self.endpoints += versioned.weight();
        let types = self.tenants.entry(tenant.to_owned()).or_default();
        if let Some(old) = types.insert(event_type.to_owned(), versioned) {
            self.endpoints -= old.weight();
        }
    }
}

impl Kept {
    /// Forgets what was kept of `tenants`.
    pub(crate) fn forget<'a>(&self, tenants: impl IntoIterator<Item = &'a str>) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for tenant in tenants {
            if let Some(types) = known.tenants.remove(tenant) {
                known.endpoints -= types.values().map(Versioned::weight).sum::<usize>();
            }
        }
    }

    /// How many endpoints are kept, as [`MOST_KEPT`] counts them.
    #[cfg(test)]
    fn endpoints(&self) -> usize {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .endpoints
    }
}

/// The endpoints subscribed to each `[tenant, type, 1 unless the type is operational]` of
/// `pairs`, from what `kept` holds and read for the rest (and kept). With `kept`, also what
/// the batch's write must check: the version of its subscribers each tenant had when what is
/// used of it was kept, a JSON array for `herald_subscribers_are` (none if nothing used was
/// kept). What is read here is not checked, as no accept checks what it reads itself: the
/// event and the endpoints' change are at the same time, and either order is right. So a batch
/// tried again after what it used went out of date (every tenant of it forgotten) reads all it
/// uses and cannot fail that way again, however fast a tenant changes its endpoints.
pub(crate) async fn find<'a, DB: Backend>(
    db: &mut impl Run<DB>,
    pairs: &[(&'a str, &'a str, u32)],
    kept: Option<&Kept>,
) -> Result<(Subscribed<'a>, Option<String>), Error> {
    let Some(kept) = kept else {
        return Ok((read::<DB>(db, pairs).await?, None));
    };
    let mut subscribed: Subscribed<'a> = HashMap::new();
    let mut versions: BTreeSet<(&'a str, i64)> = BTreeSet::new();
    let mut missing = Vec::new();
    {
        let known = kept.known.lock().unwrap_or_else(PoisonError::into_inner);
        for &(tenant, event_type, everything) in pairs {
            match known.get(tenant, event_type) {
                Some(k) => {
                    subscribed.insert((tenant, event_type), Arc::clone(&k.endpoints));
                    versions.insert((tenant, k.version));
                }
                None => missing.push((tenant, event_type, everything)),
            }
        }
    }
    if !missing.is_empty() {
        let tenants: BTreeSet<&str> = missing.iter().map(|(tenant, _, _)| *tenant).collect();
        let read_at: BTreeMap<String, i64> = query(VERSIONS)
            .bind(json_rows(&tenants))
            .fetch_all::<DB, (String, i64)>(&mut *db)
            .await?
            .into_iter()
            .collect();
        let found = read::<DB>(db, &missing).await?;
        let mut known = kept.known.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, endpoints) in found {
            // A tenant that does not exist has no version: its events fail on their own.
            if let Some(&version) = read_at.get(key.0) {
                let endpoints = Arc::clone(&endpoints);
                known.keep(key.0, key.1, Versioned { version, endpoints });
            }
            subscribed.insert(key, endpoints);
        }
    }
    let check = (!versions.is_empty()).then(|| json_rows(&versions));
    Ok((subscribed, check))
}

/// The endpoints subscribed to each pair of `pairs`, read.
async fn read<'a, DB: Backend>(
    db: &mut impl Run<DB>,
    pairs: &[(&'a str, &'a str, u32)],
) -> Result<Subscribed<'a>, Error> {
    let mut subscribed: Subscribed<'a> = HashMap::new();
    if pairs.is_empty() {
        return Ok(subscribed);
    }
    let found: Vec<SubscribedRow> = query(SUBSCRIBED)
        .bind(json_rows(&pairs))
        .fetch_all(&mut *db)
        .await?;
    let mut by_type: HashMap<(String, String), Vec<Subscriber>> = HashMap::new();
    for row in found {
        let key = (row.tenant_id.clone(), row.event_type.clone());
        by_type.entry(key).or_default().push(row.try_into()?);
    }
    for &(tenant, event_type, _) in pairs {
        let key = (tenant.to_owned(), event_type.to_owned());
        let endpoints = by_type.remove(&key).unwrap_or_default();
        subscribed.insert((tenant, event_type), Arc::new(endpoints));
    }
    Ok(subscribed)
}

/// The endpoints subscribed to each tenant's event type.
pub(crate) type Subscribed<'a> = HashMap<(&'a str, &'a str), Arc<Vec<Subscriber>>>;

/// An endpoint subscribed to a type, as [`SUBSCRIBED`] reads it.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct SubscribedRow {
    /// The tenant and type it was read for.
    tenant_id: String,
    event_type: String,
    id: String,
    version: Option<String>,
    enabled: bool,
    /// A JSON array.
    channels: String,
    filter: Option<String>,
}

/// An endpoint subscribed to a type: what decides whether an event of it reaches the endpoint.
pub(crate) struct Subscriber {
    id: String,
    /// The version it pins.
    version: Option<String>,
    enabled: bool,
    channels: Vec<String>,
    filter: Option<Filter>,
}

impl TryFrom<SubscribedRow> for Subscriber {
    type Error = Error;

    fn try_from(row: SubscribedRow) -> Result<Subscriber, Error> {
        Ok(Subscriber {
            channels: serde_json::from_str(&row.channels)
                .map_err(|e| Error::corrupt("channels", e))?,
            filter: row
                .filter
                .as_deref()
                .map(Filter::parse_text)
                .transpose()
                .map_err(|e| Error::corrupt("filter", e))?,
            id: row.id,
            version: row.version,
            enabled: row.enabled,
        })
    }
}

/// The endpoints subscribed to `new`'s type that receive it, with whether each is enabled: a
/// versioned event only reaches those whose version it carries, an endpoint with channels only
/// events carrying one of them, an endpoint with a filter only payloads it matches (`payload`,
/// parsed once, when some endpoint has one).
pub(crate) fn reached<'a>(
    subscribed: &'a Subscribed<'a>,
    new: &'a NewEvent,
    payload: &'a Option<serde_json::Value>,
) -> impl Iterator<Item = (&'a String, bool)> + 'a {
    let key = (new.tenant_id.as_str(), new.event_type.as_str());
    subscribed
        .get(&key)
        .map(|endpoints| endpoints.iter())
        .into_iter()
        .flatten()
        .filter(|s| {
            new.versions
                .as_ref()
                .is_none_or(|v| v.reaches(s.version.as_deref()))
        })
        .filter(|s| filter::channels_match(&s.channels, &new.channels))
        .filter(move |s| match (&s.filter, payload) {
            (None, _) => true,
            (Some(filter), Some(payload)) => filter.matches(payload),
            (Some(_), None) => false, // not JSON: cannot be, it was validated
        })
        .map(|s| (&s.id, s.enabled))
}

/// `new`'s payload parsed, if an endpoint subscribed to its type has a filter to match.
pub(crate) fn parsed_for_filters(
    subscribed: &Subscribed<'_>,
    new: &NewEvent,
) -> Option<serde_json::Value> {
    let key = (new.tenant_id.as_str(), new.event_type.as_str());
    let filtered = subscribed.get(&key)?.iter().any(|s| s.filter.is_some());
    if filtered {
        serde_json::from_str(&new.payload).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Kept, MOST_KEPT, Subscriber, Versioned};

    fn endpoints(n: usize) -> Arc<Vec<Subscriber>> {
        Arc::new(
            (0..n)
                .map(|i| Subscriber {
                    id: format!("ep_{i}"),
                    version: None,
                    enabled: true,
                    channels: Vec::new(),
                    filter: None,
                })
                .collect(),
        )
    }

    /// What is kept is bounded by the endpoints it holds, not by the tenants' types: a
    /// tenant with many endpoints sending events of many types cannot make a process keep
    /// its endpoints over and over without bound.
    #[test]
    fn what_is_kept_is_bounded_by_its_endpoints() {
        let kept = Kept::default();
        let many = endpoints(1_000);
        let keep = |tenant: &str, event_type: &str, endpoints: &Arc<Vec<Subscriber>>| {
            let mut known = kept.known.lock().unwrap();
            known.keep(
                tenant,
                event_type,
                Versioned {
                    version: 1,
                    endpoints: Arc::clone(endpoints),
                },
            );
        };
        for t in 0..(MOST_KEPT / 1_000) {
            keep("big", &format!("type.{t}"), &many);
        }
        assert_eq!(kept.endpoints(), MOST_KEPT);
        keep("big", "one.more", &many);
        assert_eq!(
            kept.endpoints(),
            1_000,
            "everything forgotten, then this kept"
        );
        // A type with no subscriber counts as one; kept again, it replaces itself.
        keep("small", "t", &endpoints(0));
        keep("small", "t", &endpoints(0));
        assert_eq!(kept.endpoints(), 1_001);
        kept.forget(["big", "nobody"]);
        assert_eq!(kept.endpoints(), 1);
        assert!(kept.known.lock().unwrap().get("small", "t").is_some());
    }

    /// The endpoints subscribed are found through their tenant's index, whatever the number
    /// of tenants in the batch: never by reading every tenant's endpoints.
    #[tokio::test]
    async fn subscribers_are_read_through_their_tenants_index() {
        let steps = crate::sql::sqlite_plan(super::SUBSCRIBED.sqlite, 1).await;
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH p USING INDEX endpoints_by_tenant")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN p")), "{steps:?}");
    }
}
