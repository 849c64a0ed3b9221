//! Events in, and the delivery log: events, deliveries, attempts, retries and figures.

use async_trait::async_trait;

use super::accept::NewDelivery;
use super::rows::{AttemptRow, DeliveryRow, attempt_columns, delivery_columns, event_columns};
use super::{Backend, Sql, SqlStore, accept, hours, query, sql, turns};
use crate::error::disabled_endpoint;
use crate::{
    Accepted, Attempt, AttemptStats, Clocked, Delivery, DeliveryFilter, DeliveryState, Error,
    ErrorKind, Event, EventFilter, Log, Millis, NewEvent, new_id, new_id_at,
};

#[async_trait]
impl<DB: Backend> Log for SqlStore<DB> {
    async fn accept_event(&self, new: NewEvent) -> Result<Accepted, Error> {
        // The committer wakes the workers once the batch holding this event commits.
        self.committer.accept(new, self.now()).await
    }

    async fn accept_test_event(
        &self,
        new: NewEvent,
        endpoint_id: &str,
    ) -> Result<Option<(Event, String)>, Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let found: Option<(String,)> =
            query("SELECT id FROM endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(&new.tenant_id)
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(None);
        }
        let event = Event {
            id: new_id_at("evt", now),
            tenant_id: new.tenant_id,
            event_type: new.event_type,
            payload: new.payload,
            idempotency_key: None,
            ordering_key: None,
            test: true,
            created_at: now,
            version: new.versions.as_ref().map(|v| v.version.clone()),
        };
        query(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, test, \
             created_at, version, versions) VALUES ($1, $2, $3, $4, NULL, true, $5, $6, $7)",
        )
        .bind(&event.id)
        .bind(&event.tenant_id)
        .bind(&event.event_type)
        .bind(&event.payload)
        .bind(now)
        .bind(&event.version)
        .bind(new.versions.as_ref().map(accept::converted_json))
        .execute(&mut *tx)
        .await?;
        let delivery = NewDelivery {
            event_id: &event.id,
            endpoint_id,
            ordering_key: None,
            due: now,
            skipped: false,
        };
        let ids = accept::insert_deliveries::<DB>(&mut *tx, &[delivery]).await?;
        // A test is how a user checks a mended endpoint: an open circuit half-opens now, so a
        // probe goes at once rather than after the pause.
        query(
            "UPDATE endpoint_queues SET open_until = $1, due_at = $1 \
             WHERE endpoint_id = $2 AND open_until > $1",
        )
        .bind(now)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.wake();
        let delivery = ids.into_iter().next().unwrap_or_default();
        Ok(Some((event, delivery)))
    }

    async fn event(&self, tenant_id: &str, id: &str) -> Result<Option<Event>, Error> {
        query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
    }

    async fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        let (from, below) = id_range("evt", before, filter.since, filter.until);
        query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE tenant_id = $1 AND id < $2 AND id >= $7 \
             AND ($3 IS NULL OR event_type = $3) AND ($4 IS NULL OR created_at >= $4) \
             AND ($5 IS NULL OR created_at < $5) ORDER BY id DESC LIMIT $6"
        ))
        .bind(tenant_id)
        .bind(below)
        .bind(&filter.event_type)
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit))
        .bind(from)
        .fetch_all(&self.reader)
        .await
    }

    async fn delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>, Error> {
        let row: Option<DeliveryRow> = query(DELIVERY)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(Delivery::try_from).transpose()
    }

    async fn deliveries(
        &self,
        tenant_id: &str,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, Error> {
        // Endpoint by endpoint, each newest first through its own index and no further than the
        // page: the page is the newest of those. Read through the tenant's events instead, a
        // large tenant's every page sorted all it had (200 ms for 300,000 deliveries on SQLite).
        // PostgreSQL reads the endpoints in one statement (`merged_page!`), SQLite with a
        // statement each, which costs it no round trip.
        // An event's deliveries are few, and read through the event; a tenant with very many
        // endpoints reads the tenant's way.
        // One more than are merged tells which way to read. Read whole, the list cost a tenant
        // with 10,000 endpoints 50 ms a page.
        const ENDPOINTS: &str = "SELECT id FROM endpoints WHERE tenant_id = $1 LIMIT $2";
        if filter.event_id.is_some() {
            let rows = self
                .page(EVENT_PAGE, tenant_id, filter, before, limit)
                .await?;
            return rows.into_iter().map(Delivery::try_from).collect();
        }
        let in_one = filter.event_type.is_none() && DB::ONE_STATEMENT_ENDPOINTS > 0;
        let most = match (filter.event_type.is_some(), DB::ONE_STATEMENT_ENDPOINTS) {
            (_, 0) => MERGED_ENDPOINTS,
            (false, endpoints) => endpoints,
            // A type on PostgreSQL: each endpoint's page reads the tenant's events of that type,
            // 4-5 s for 64 endpoints and 300,000 deliveries; the tenant's way reads them once
            // (50-60 ms).
            (true, _) => 1,
        };
        let endpoints: Vec<String> = match &filter.endpoint_id {
            Some(endpoint) => vec![endpoint.clone()],
            None => {
                let ids: Vec<(String,)> = query(ENDPOINTS)
                    .bind(tenant_id)
                    .bind(i64::try_from(most).unwrap_or(i64::MAX).saturating_add(1))
                    .fetch_all(&self.reader)
                    .await?;
                ids.into_iter().map(|(id,)| id).collect()
            }
        };
        if endpoints.len() > most {
            let rows = self
                .page(TENANT_PAGE, tenant_id, filter, before, limit)
                .await?;
            return rows.into_iter().map(Delivery::try_from).collect();
        }
        if in_one {
            let page = match filter.state {
                Some(DeliveryState::Pending) => MERGED_PENDING_PAGE,
                Some(DeliveryState::Dead) => MERGED_DEAD_PAGE,
                _ => MERGED_PAGE,
            };
            let rows = self.page(page, tenant_id, filter, before, limit).await?;
            return rows.into_iter().map(Delivery::try_from).collect();
        }
        let page = match (filter.state, &filter.event_type) {
            (Some(DeliveryState::Pending), _) => PENDING_PAGE,
            (Some(DeliveryState::Dead), _) => DEAD_PAGE,
            (_, Some(_)) => Sql::from(TYPED_PAGE),
            _ => ENDPOINT_PAGE,
        };
        let mut rows: Vec<DeliveryRow> = Vec::new();
        for endpoint in endpoints {
            let to_endpoint = DeliveryFilter {
                endpoint_id: Some(endpoint),
                ..filter.clone()
            };
            rows.extend(
                self.page(page, tenant_id, &to_endpoint, before, limit)
                    .await?,
            );
        }
        rows.sort_unstable_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.into_iter().map(Delivery::try_from).collect()
    }

    async fn attempts(&self, tenant_id: &str, delivery_id: &str) -> Result<Vec<Attempt>, Error> {
        // Its attempts in `attempts`, then the one that made it succeed, kept in its own row
        // (migration 24), which is always its last.
        let rows: Vec<AttemptRow> = query(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM (SELECT a.started_at, a.duration_ms, a.status_code, a.response_excerpt, \
                 a.error, a.request_headers, a.response_headers, 0 AS kept, a.id \
               FROM attempts a WHERE a.delivery_id = $1 \
               UNION ALL \
               SELECT s.success_started_at, s.success_duration_ms, s.success_status_code, \
                 s.success_response_excerpt, s.success_error, s.success_request_headers, \
                 s.success_response_headers, 1, '' \
               FROM deliveries s JOIN endpoints sp ON sp.id = s.endpoint_id \
               WHERE s.id = $1 AND sp.tenant_id = $2 AND s.success_started_at IS NOT NULL) a \
             CROSS JOIN deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.id = $1 AND p.tenant_id = $2 ORDER BY a.kept, a.started_at, a.id"
        ))
        .bind(delivery_id)
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(Attempt::try_from).collect()
    }

    async fn converted_payload(
        &self,
        tenant_id: &str,
        event_id: &str,
        version: &str,
    ) -> Result<Option<String>, Error> {
        let stored: Option<(Option<String>,)> =
            query("SELECT versions FROM events WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(event_id)
                .fetch_optional(&self.reader)
                .await?;
        let Some((Some(json),)) = stored else {
            return Ok(None);
        };
        let mut converted: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&json).map_err(|e| Error::corrupt("event versions", e))?;
        Ok(converted.remove(version))
    }

    async fn retry_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>, Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let found: Option<(bool, String, bool)> = query(RETRY_FIND)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
        let endpoint = match found {
            None => return Ok(None),
            Some((false, _, _)) => return Err(disabled_endpoint()),
            // Its attempt's outcome would overwrite the retry (a dead end, or a later retry):
            // refuse, rather than accept a retry that may not happen.
            Some((true, _, true)) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "an attempt of this delivery is in flight: retry once it has ended",
                ));
            }
            Some((true, endpoint, false)) => endpoint,
        };
        // A success kept in the delivery's row (migration 24) becomes an attempt of its own
        // first: the row keeps only the success that ends the delivery.
        query(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
               response_excerpt, error, request_headers, response_headers) \
             SELECT $1, id, success_started_at, success_duration_ms, success_status_code, \
               success_response_excerpt, success_error, success_request_headers, \
               success_response_headers \
             FROM deliveries WHERE endpoint_id = $3 AND id = $2 \
               AND success_started_at IS NOT NULL",
        )
        .bind(new_id("att"))
        .bind(id)
        .bind(&endpoint)
        .execute(&mut *tx)
        .await?;
        query(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1, \
               success_started_at = NULL, success_duration_ms = NULL, \
               success_status_code = NULL, success_response_excerpt = NULL, \
               success_error = NULL, success_request_headers = NULL, \
               success_response_headers = NULL \
             WHERE endpoint_id = $3 AND id = $2",
        )
        .bind(now)
        .bind(id)
        .bind(&endpoint)
        .execute(&mut *tx)
        .await?;
        turns::make_due::<DB>(&mut *tx, [(endpoint.as_str(), now)].into_iter()).await?;
        super::announce::<DB>(&mut *tx, &[endpoint.as_str()]).await?;
        tx.commit().await?;
        self.wake();
        self.delivery(tenant_id, id).await
    }

    async fn attempt_stats(
        &self,
        tenant_id: &str,
        endpoint_id: Option<&str>,
        since: Millis,
    ) -> Result<Vec<AttemptStats>, Error> {
        hours::read(&self.reader, tenant_id, endpoint_id, since).await
    }
}

/// The delivery a retry is asked for (`$1`) of tenant `$2`, with its endpoint's state, locked
/// with its event (retention skips an event a retry holds, `upkeep.rs`).
pub(crate) const RETRY_FIND: Sql = sql!(
    "SELECT p.enabled, d.endpoint_id, d.lease_owner IS NOT NULL AS in_flight \
     FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
       JOIN events e ON e.tenant_id = $2 AND e.id = d.event_id \
     WHERE d.id = $1 AND p.tenant_id = $2"[lock]
);

/// A delivery of the tenant's, by its id. Through its endpoint: on PostgreSQL deliveries are
/// keyed by endpoint and id (migration 25), so it is looked for under each of the tenant's
/// endpoints (at most 1,000 by default; 1.5-2.5 ms for 1,000 and 15-35 ms for 10,000 on the
/// development machine), in a subquery PostgreSQL cannot flatten: joined plainly, it read the
/// whole day's partition instead while that had no statistics (84-144 ms for a tenant with 64
/// endpoints and a day of 10,000 deliveries, `ENDPOINTS=64 scripts/large-tenant.sh`, and
/// growing with the day). SQLite keeps a key on the id and looks there.
pub(crate) const DELIVERY: Sql = Sql {
    sqlite: concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
           JOIN events e ON e.tenant_id = $2 AND e.id = d.event_id \
         WHERE d.id = $1 AND p.tenant_id = $2"
    ),
    postgres: concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM endpoints p CROSS JOIN LATERAL \
           (SELECT d.* FROM deliveries d WHERE d.endpoint_id = p.id AND d.id = $1 OFFSET 0) AS d",
        super::postgres_part!([event_in "$2" "d.event_id"]),
        "WHERE p.tenant_id = $2"
    ),
};

/// A tenant's deliveries are listed endpoint by endpoint ([`Log::deliveries`]) while it has at
/// most this many endpoints.
const MERGED_ENDPOINTS: usize = 64;

/// The filters both pages take, after the tenant (`$1`), the cursor (`$2`) and the endpoint
/// (`$3`), in [`SqlStore::page`]'s order.
macro_rules! page_filters {
    () => {
        " AND ($4 IS NULL OR d.event_id = $4) \
         AND ($5 IS NULL OR e.event_type = $5) AND ($6 IS NULL OR d.state = $6) \
         AND ($7 IS NULL OR d.created_at >= $7) AND ($8 IS NULL OR d.created_at < $8) \
         ORDER BY d.id DESC LIMIT $9"
    };
}

/// A page of one endpoint's deliveries (`$3`), newest first, read backwards through
/// `deliveries_by_endpoint` (on PostgreSQL, the key: migration 25) and stopping at the page's
/// size, then each one's event through its key (`event_in`). Joined plainly, PostgreSQL read
/// every event of the tenant for the first page while it had no statistics (a new day's
/// partitions, a restored database): 0.5-0.8 s for 300,000 (`scripts/large-tenant.sh`).
/// A state named in the text (`PENDING_PAGE`, `DEAD_PAGE`) has the planner read that state's
/// partial index instead, so a filter that matches few deliveries does not read all the
/// others: SQLite is told the index, PostgreSQL reads the pending ones apart (a subquery it
/// cannot flatten), as walking the key newest first looked cheaper to it.
macro_rules! endpoint_page {
    ($sqlite_from:literal, $postgres_from:literal, $state:literal) => {
        Sql {
            sqlite: endpoint_page!(@ $sqlite_from, sqlite_part, $state),
            postgres: endpoint_page!(@ $postgres_from, postgres_part, $state),
        }
    };
    (@ $from:literal, $dialect:ident, $state:literal) => {
        concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM ",
            $from,
            super::$dialect!([event_in "$1" "d.event_id"]),
            "WHERE d.endpoint_id = $3 AND d.id < $2 AND d.id >= $10",
            $state,
            page_filters!()
        )
    };
}
pub(crate) const ENDPOINT_PAGE: Sql = endpoint_page!("deliveries d", "deliveries d", "");
/// Pending deliveries, through `deliveries_ready`.
pub(crate) const PENDING_PAGE: Sql = endpoint_page!(
    "deliveries d INDEXED BY deliveries_ready",
    "(SELECT * FROM deliveries d WHERE d.endpoint_id = $3 AND d.state = 'pending' \
       OFFSET 0) AS d",
    " AND d.state = 'pending'"
);
/// Dead deliveries, through `deliveries_dead` (migration 21).
pub(crate) const DEAD_PAGE: Sql = endpoint_page!(
    "deliveries d INDEXED BY deliveries_dead",
    "deliveries d",
    " AND d.state = 'dead'"
);
/// A page of one endpoint's deliveries of one type (`$5`), joined plainly: each event looked
/// up in turn, a type that matches none read every event of the tenant one by one (1 s for
/// 300,000 on PostgreSQL); this way PostgreSQL can read the tenant's events of that type once
/// (40 ms with statistics, 170-210 ms without).
const TYPED_PAGE: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d CROSS JOIN events e \
     WHERE e.id = d.event_id AND d.endpoint_id = $3 AND e.tenant_id = $1 \
     AND d.id < $2 AND d.id >= $10",
    page_filters!()
);

/// A page of the tenant's deliveries (or endpoint `$3`'s) in one statement, where the database
/// joins a subquery per row of what comes before it (PostgreSQL,
/// [`Backend::ONE_STATEMENT_ENDPOINTS`]): each endpoint's newest through its key, at most a
/// page of each, the page the newest of those, then each one's event through its key. A
/// statement per endpoint cost PostgreSQL 3.5-4.5 ms (planned anew for each call, over every
/// day's partition): 215-280 ms a page for a tenant with 64 endpoints, where this takes 30-39
/// ms through the API (`ENDPOINTS=64 scripts/large-tenant.sh`). Not for a type (`$5`) or an event (`$4`), which
/// it leaves out: an endpoint's newest of any type would hide its older ones of that type.
macro_rules! merged_page {
    ($from:literal, $state:literal) => {
        concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM (SELECT d.* FROM endpoints p CROSS JOIN LATERAL \
               (SELECT d.* FROM ",
            $from,
            " WHERE d.endpoint_id = p.id AND d.id < $2 AND d.id >= $10",
            $state,
            " AND ($6 IS NULL OR d.state = $6) \
                 AND ($7 IS NULL OR d.created_at >= $7) AND ($8 IS NULL OR d.created_at < $8) \
                 ORDER BY d.id DESC LIMIT $9) AS d \
               WHERE p.tenant_id = $1 AND ($3 IS NULL OR p.id = $3) \
               ORDER BY d.id DESC LIMIT $9) AS d",
            super::postgres_part!([event_in "$1" "d.event_id"]),
            "ORDER BY d.id DESC"
        )
    };
}
pub(crate) const MERGED_PAGE: &str = merged_page!("deliveries d", "");
/// Pending deliveries, through `deliveries_ready`, as [`PENDING_PAGE`] reads them.
pub(crate) const MERGED_PENDING_PAGE: &str = merged_page!(
    "(SELECT * FROM deliveries d WHERE d.endpoint_id = p.id AND d.state = 'pending' \
       OFFSET 0) AS d",
    " AND d.state = 'pending'"
);
/// Dead deliveries, through `deliveries_dead`.
pub(crate) const MERGED_DEAD_PAGE: &str = merged_page!("deliveries d", " AND d.state = 'dead'");

/// A page of one event's deliveries (`$4`): the event through its key, then its deliveries
/// through their index by event. Read as [`TENANT_PAGE`] reads, with the event one filter
/// among others, SQLite could not use that index and read every event of the tenant for an
/// event's page (`GET …/events/{id}` and the dashboard's event: 0.56 s for 300,000 events,
/// `scripts/large-tenant.sh`).
pub(crate) const EVENT_PAGE: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM events e JOIN deliveries d ON d.event_id = e.id \
     WHERE e.tenant_id = $1 AND e.id = $4 AND d.id < $2 AND d.id >= $10 \
     AND ($3 IS NULL OR d.endpoint_id = $3)",
    page_filters!()
);

/// A page of the tenant's deliveries read through its events: a tenant with more endpoints
/// than a page is read from one by one.
const TENANT_PAGE: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d JOIN events e ON e.id = d.event_id \
     WHERE e.tenant_id = $1 AND d.id < $2 AND d.id >= $10 \
     AND ($3 IS NULL OR d.endpoint_id = $3)",
    page_filters!()
);

/// The ids (`prefix_…`) a page may hold, from the first to below the last: below the cursor
/// `before`, and, within a window of time, those made in it. The bounds are never left out
/// (`NULL`), so that a plan made for any values reads them as the index's range: with `$2 IS
/// NULL OR d.id < $2`, PostgreSQL's generic plan and every plan of SQLite walked from the
/// newest row to the cursor, or to the window, through everything newer (`scripts/large-tenant.sh`:
/// 175-280 ms for the page after a delivery in the middle of 300,000, 480-730 ms for a window of
/// a day, with 64 endpoints on PostgreSQL). An id holds the millisecond its row was made
/// (`new_id_at`, the row's `created_at`); the window is widened by a second for rows an older
/// herald may have stamped a little apart, and the times themselves still filter.
fn id_range(
    prefix: &str,
    before: Option<&str>,
    since: Option<Millis>,
    until: Option<Millis>,
) -> (String, String) {
    const SLACK: Millis = 1000;
    let first = since.map_or_else(
        || format!("{prefix}_"),
        |since| crate::id_floor(prefix, since.saturating_sub(SLACK).max(0)),
    );
    // Above every id: `~` sorts after each character of a ULID.
    let mut below = format!("{prefix}_~");
    if let Some(until) = until {
        below = below.min(crate::id_floor(prefix, until.saturating_add(SLACK)));
    }
    if let Some(before) = before {
        below = below.min(before.to_owned());
    }
    (first, below)
}

impl<DB: Backend> SqlStore<DB> {
    /// One page of deliveries, by one of the statements above.
    async fn page(
        &self,
        sql: impl Into<Sql>,
        tenant_id: &str,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, Error> {
        let (from, below) = id_range("dlv", before, filter.since, filter.until);
        query(sql)
            .bind(tenant_id)
            .bind(below)
            .bind(&filter.endpoint_id)
            .bind(&filter.event_id)
            .bind(&filter.event_type)
            .bind(filter.state.map(DeliveryState::as_str))
            .bind(filter.since)
            .bind(filter.until)
            .bind(i64::from(limit))
            .bind(from)
            .fetch_all(&self.reader)
            .await
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Stores an event and its deliveries inside the caller's transaction on this database (the
    /// transactional outbox): they exist if and only if the caller commits. Begin the
    /// transaction on [`SqlStore::pool`]: on SQLite it then holds the one write lock from the
    /// start.
    pub async fn accept_event_in(
        &self,
        tx: &mut DB::Connection,
        new: NewEvent,
    ) -> Result<Accepted, Error> {
        // Announced to every worker, this process's too: the transaction is the caller's, and
        // commits after this returns.
        accept::accept_all::<DB>(tx, &[(&new, self.now())], &Default::default())
            .await?
            .0
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Database, "the event has no result"))
    }
}

#[cfg(test)]
mod tests {
    /// One endpoint's page is read through its index, newest first, and never sorted: read
    /// through the tenant's events, a large tenant's first page sorted every delivery it had.
    /// The cursor and the window are the index's range (`id_range`), not a filter of every
    /// delivery newer than them.
    #[tokio::test]
    async fn an_endpoints_page_is_read_through_its_index_without_sorting() {
        let steps = crate::sql::sqlite_plan(super::ENDPOINT_PAGE.sqlite, 10).await;
        assert_eq!(
            steps.first().map(String::as_str),
            Some("SEARCH d USING INDEX deliveries_by_endpoint (endpoint_id=? AND id>? AND id<?)"),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{steps:?}"
        );
    }

    /// An event's page reads the event through its key and its deliveries through their index
    /// by event, over a tenant's long history with its statistics: read as the tenant's page,
    /// SQLite walked every delivery newest first for it.
    #[tokio::test]
    async fn an_events_page_is_read_through_the_event() {
        use crate::{NewEndpoint, Registry};
        let store = crate::sqlite::SqliteStore::open_in_memory().await.unwrap();
        store.create_tenant("acme").await.unwrap();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let endpoint = NewEndpoint::new("acme", "https://example.com", secret);
        let endpoint = store.create_endpoint(endpoint).await.unwrap().id;
        for insert in [
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000) \
             INSERT INTO events (id, tenant_id, event_type, payload, created_at) \
             SELECT printf('evt_%026d', n), 'acme', 't', '{}', n FROM g",
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, created_at, \
               updated_at) \
             SELECT 'dlv_' || substr(id, 5), id, $1, 'succeeded', 1, created_at, created_at \
             FROM events",
            "ANALYZE",
        ] {
            sqlx::query(insert)
                .bind(&endpoint)
                .execute(&store.writer)
                .await
                .unwrap();
        }
        let explain = format!("EXPLAIN QUERY PLAN {}", super::EVENT_PAGE);
        let mut plan =
            sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain)).bind("acme");
        for _ in 1..10 {
            plan = plan.bind(Option::<String>::None);
        }
        let steps: Vec<String> = plan
            .fetch_all(&store.writer)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, _, _, step)| step)
            .collect();
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH d USING INDEX deliveries_by_event")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
    }

    /// A page's ids run from the window's start to below the cursor or the window's end, with
    /// a second's slack either side; every id made within the window lies inside, whatever
    /// else bounds it.
    #[test]
    fn a_pages_ids_hold_its_window() {
        use super::id_range;
        let (t0, t1) = (1_700_000_000_000, 1_700_000_060_000);
        assert_eq!(
            id_range("dlv", None, None, None),
            ("dlv_".to_owned(), "dlv_~".to_owned())
        );
        let (first, below) = id_range("dlv", None, Some(t0), Some(t1));
        for made in [t0, t0 + 1, t1 - 1] {
            let id = crate::new_id_at("dlv", made);
            assert!(first <= id && id < below, "{first} <= {id} < {below}");
        }
        assert!(crate::new_id_at("dlv", t0 - 2_000) < first);
        assert!(crate::new_id_at("dlv", t1 + 2_000) >= below);
        let cursor = crate::new_id_at("dlv", t0 + 10);
        let (_, below) = id_range("dlv", Some(&cursor), Some(t0), Some(t1));
        assert_eq!(below, cursor, "the cursor is the lower of the two");
        let (first, _) = id_range("evt", None, Some(0), None);
        assert_eq!(
            first,
            crate::id_floor("evt", 0),
            "no earlier than the first id"
        );
    }

    /// SQLite finds a delivery by its id through its key on the id, not endpoint by endpoint
    /// as PostgreSQL must (migration 25).
    #[tokio::test]
    async fn sqlite_finds_a_delivery_by_its_key() {
        let steps = crate::sql::sqlite_plan(super::DELIVERY.sqlite, 2).await;
        assert!(
            steps
                .first()
                .is_some_and(|s| s.starts_with("SEARCH d USING INDEX sqlite_autoindex_deliveries")),
            "{steps:?}"
        );
    }

    /// A page of one state goes through that state's partial index: through the endpoint's
    /// history instead, a filter that matched few deliveries read all the others.
    #[tokio::test]
    async fn a_states_page_is_read_through_its_partial_index() {
        for (sql, index) in [
            (super::PENDING_PAGE, "deliveries_ready"),
            (super::DEAD_PAGE, "deliveries_dead"),
        ] {
            let steps = crate::sql::sqlite_plan(sql.sqlite, 10).await;
            assert!(
                steps
                    .first()
                    .is_some_and(|s| s.starts_with(&format!("SEARCH d USING INDEX {index} "))),
                "{steps:?}"
            );
        }
    }
}
