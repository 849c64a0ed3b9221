//! Rows as the queries select them, read by column name, and how each becomes the type callers
//! see. Types whose columns map one to one ([`Tenant`](crate::Tenant), [`Event`](crate::Event),
//! [`Token`](crate::Token), [`EndpointSecret`](crate::EndpointSecret)) are read directly.

use std::collections::{BTreeMap, HashMap};

use crate::{
    Attempt, AttemptStats, Claimed, Delivery, DeliveryState, Endpoint, Error, Millis, Replay,
    ReplayState, Signature,
};

/// The columns of an [`EndpointRow`], from `endpoints`.
macro_rules! endpoint_columns {
    () => {
        "id, tenant_id, url, description, event_types, headers, \
     enabled, disabled_reason, failing_since, rate_limit, signature, created_at, version, \
     channels, filter, \
     (SELECT q.open_until FROM endpoint_queues q WHERE q.endpoint_id = endpoints.id) \
       AS open_until"
    };
}
pub(crate) use endpoint_columns;

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    description: String,
    /// A JSON array of names.
    event_types: String,
    /// A JSON object.
    headers: String,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<Millis>,
    rate_limit: Option<i32>,
    signature: String,
    created_at: Millis,
    version: Option<String>,
    /// A JSON array of names.
    channels: String,
    filter: Option<String>,
    /// Until when its circuit is open, if it ever opened (it may be past).
    open_until: Option<Millis>,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = Error;

    fn try_from(row: EndpointRow) -> Result<Endpoint, Error> {
        Ok(Endpoint {
            id: row.id,
            tenant_id: row.tenant_id,
            url: row.url,
            description: row.description,
            event_types: serde_json::from_str(&row.event_types)
                .map_err(|e| Error::corrupt("event types", e))?,
            headers: headers_from_json(&row.headers)?,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since,
            rate_limit: row.rate_limit.map(|r| count(r.into())),
            signature: Signature::named(&row.signature).ok_or_else(|| {
                Error::corrupt(
                    "signature",
                    format!("`{}` is not hmac, ed25519 or both", row.signature),
                )
            })?,
            created_at: row.created_at,
            version: row.version,
            channels: serde_json::from_str(&row.channels)
                .map_err(|e| Error::corrupt("channels", e))?,
            filter: row.filter,
            circuit_open_until: row.open_until,
        })
    }
}

/// The columns of an [`Event`](crate::Event), from `events`.
macro_rules! event_columns {
    () => {
        "id, tenant_id, event_type, payload, idempotency_key, ordering_key, test, created_at, \
         version"
    };
}
pub(crate) use event_columns;

/// The columns of a [`DeliveryRow`], from `deliveries d JOIN events e ON e.id = d.event_id`.
macro_rules! delivery_columns {
    () => {
        "d.id, d.event_id, d.endpoint_id, e.event_type, e.test, \
     d.state, d.attempts, d.next_attempt_at, d.created_at, d.updated_at"
    };
}
pub(crate) use delivery_columns;

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct DeliveryRow {
    pub(super) id: String,
    event_id: String,
    endpoint_id: String,
    event_type: String,
    test: bool,
    state: String,
    attempts: i32,
    next_attempt_at: Option<Millis>,
    created_at: Millis,
    updated_at: Millis,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = Error;

    fn try_from(row: DeliveryRow) -> Result<Delivery, Error> {
        Ok(Delivery {
            id: row.id,
            event_id: row.event_id,
            endpoint_id: row.endpoint_id,
            event_type: row.event_type,
            test: row.test,
            state: DeliveryState::parse(&row.state)?,
            attempts: count(row.attempts.into()),
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The columns of an [`AttemptRow`], from an attempt `a` (a row of `attempts`, or the success
/// kept in its delivery's row) joined with its delivery `d`.
macro_rules! attempt_columns {
    () => {
        "d.event_id, a.started_at, a.duration_ms, a.status_code, \
     a.response_excerpt, a.error, a.request_headers, a.response_headers"
    };
}
pub(crate) use attempt_columns;

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct AttemptRow {
    /// The delivery's event: the `webhook-id` a stored request left out ([`sent_headers`]).
    event_id: String,
    started_at: Millis,
    duration_ms: i64,
    status_code: Option<i32>,
    response_excerpt: Option<String>,
    error: Option<String>,
    request_headers: String,
    response_headers: String,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = Error;

    fn try_from(row: AttemptRow) -> Result<Attempt, Error> {
        Ok(Attempt {
            started_at: row.started_at,
            duration_ms: row.duration_ms,
            status_code: row.status_code.and_then(|s| u16::try_from(s).ok()),
            response_excerpt: row.response_excerpt,
            error: row.error,
            request_headers: sent_headers(
                headers_from_json(&row.request_headers)?,
                &row.event_id,
                row.started_at,
            ),
            response_headers: headers_from_json(&row.response_headers)?,
        })
    }
}

/// The three headers of a signed request that follow from the attempt itself: its body's type,
/// its event's id and its start (in seconds), with the values they had when it was sent.
fn rebuilt(event_id: &str, started_at: Millis) -> [(&'static str, String); 3] {
    [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", event_id.to_owned()),
        ("webhook-timestamp", started_at.div_euclid(1000).to_string()),
    ]
}

/// A request's headers as stored: those of a signed request that [`sent_headers`] rebuilds
/// are left out when all three have the values it rebuilds (about 110 bytes an attempt, a
/// twentieth of what a delivery writes). Anything else is kept as sent.
pub(crate) fn stored_headers(
    sent: &BTreeMap<String, String>,
    event_id: &str,
    started_at: Millis,
) -> String {
    let rebuilt = rebuilt(event_id, started_at);
    let rebuildable = sent.contains_key(SIGNATURE)
        && rebuilt
            .iter()
            .all(|(name, value)| sent.get(*name) == Some(value));
    if !rebuildable {
        return headers_to_json(sent);
    }
    let kept: BTreeMap<&String, &String> = sent
        .iter()
        .filter(|(name, _)| !rebuilt.iter().any(|(left_out, _)| name == left_out))
        .collect();
    // A map of strings always serializes.
    serde_json::to_string(&kept).unwrap_or_else(|_| "{}".into())
}

/// The headers a request was sent with, from what [`stored_headers`] kept: a signed request
/// without any of the three gets them back.
fn sent_headers(
    mut stored: BTreeMap<String, String>,
    event_id: &str,
    started_at: Millis,
) -> BTreeMap<String, String> {
    let rebuilt = rebuilt(event_id, started_at);
    if stored.contains_key(SIGNATURE) && rebuilt.iter().all(|(name, _)| !stored.contains_key(*name))
    {
        stored.extend(rebuilt.map(|(name, value)| (name.to_owned(), value)));
    }
    stored
}

/// Present in every request herald signs, as are the three [`rebuilt`] headers.
const SIGNATURE: &str = "webhook-signature";

/// A claimed delivery joined with its event.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct ClaimRow {
    pub(crate) delivery_id: String,
    attempts: i32,
    event_id: String,
    event_type: String,
    payload: String,
    pub(crate) endpoint_id: String,
    ordering_key: Option<String>,
    /// The version of `payload`, for a versioned webhook.
    event_version: Option<String>,
    /// The payload converted to older versions: a JSON object, version → JSON text.
    converted: Option<String>,
    traceparent: Option<String>,
}

/// What the deliveries of a claim to one endpoint are sent with.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct SendRow {
    id: String,
    url: String,
    headers: String,
    /// The version the endpoint pins.
    pin: Option<String>,
    /// The endpoint's secrets that sign now, newest first: a JSON array.
    secrets: Option<String>,
}

/// A [`SendRow`] read once for all its deliveries.
struct SendsWith {
    url: String,
    headers: BTreeMap<String, String>,
    pin: Option<String>,
    secrets: Vec<String>,
}

impl ClaimRow {
    /// The version the endpoint receives (it pins `pin`) among those the event carries, and
    /// its payload.
    fn versioned(&mut self, pin: Option<&str>) -> Result<(), Error> {
        let Some(own) = self.event_version.take() else {
            return Ok(());
        };
        let mut converted: BTreeMap<String, String> = match &self.converted {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| Error::corrupt("event versions", e))?
            }
            None => BTreeMap::new(),
        };
        let mut carried: Vec<&str> = converted.keys().map(String::as_str).collect();
        carried.push(&own);
        carried.sort_unstable();
        let version = crate::resolve(&carried, pin).map(str::to_owned);
        if let Some(payload) = version.as_ref().and_then(|v| converted.remove(v)) {
            self.payload = payload;
        }
        self.event_version = version;
        Ok(())
    }
}

/// Claimed rows as the worker takes them, under `lease`, each with its endpoint's row.
pub(crate) fn claims(
    rows: Vec<ClaimRow>,
    endpoints: Vec<SendRow>,
    lease: &str,
) -> Result<Vec<Claimed>, Error> {
    let endpoints: HashMap<String, SendsWith> = endpoints
        .into_iter()
        .map(|row| {
            let secrets = match &row.secrets {
                Some(json) => {
                    serde_json::from_str(json).map_err(|e| Error::corrupt("secrets", e))?
                }
                None => Vec::new(),
            };
            let sends = SendsWith {
                headers: headers_from_json(&row.headers)?,
                url: row.url,
                pin: row.pin,
                secrets,
            };
            Ok((row.id, sends))
        })
        .collect::<Result<_, Error>>()?;
    rows.into_iter()
        // A delivery whose endpoint went between the claim and this read is not sent.
        .filter_map(|row| endpoints.get(&row.endpoint_id).map(|with| (row, with)))
        .map(|(mut row, with)| {
            row.versioned(with.pin.as_deref())?;
            Ok(Claimed {
                lease: lease.to_owned(),
                secrets: with.secrets.clone(),
                delivery_id: row.delivery_id,
                attempts: count(row.attempts.into()),
                event_id: row.event_id,
                event_type: row.event_type,
                payload: row.payload,
                endpoint_id: row.endpoint_id,
                url: with.url.clone(),
                headers: with.headers.clone(),
                ordering_key: row.ordering_key,
                version: row.event_version,
                traceparent: row.traceparent,
            })
        })
        .collect()
}

/// The columns of a [`ReplayRow`], from `replays`.
macro_rules! replay_columns {
    () => {
        "id, tenant_id, endpoint_id, since, total, done, state, created_at, updated_at"
    };
}
pub(crate) use replay_columns;

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct ReplayRow {
    id: String,
    tenant_id: String,
    endpoint_id: String,
    since: Millis,
    total: i64,
    done: i64,
    state: String,
    created_at: Millis,
    updated_at: Millis,
}

impl TryFrom<ReplayRow> for Replay {
    type Error = Error;

    fn try_from(row: ReplayRow) -> Result<Replay, Error> {
        Ok(Replay {
            id: row.id,
            tenant_id: row.tenant_id,
            endpoint_id: row.endpoint_id,
            since: row.since,
            total: count(row.total),
            done: count(row.done),
            state: ReplayState::parse(&row.state)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// One hour of attempt figures.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct StatsRow {
    /// The hour's start.
    bucket: Millis,
    succeeded: i64,
    failed: i64,
    mean_ms: f64,
    max_ms: i64,
}

impl StatsRow {
    pub(crate) fn stats(self) -> AttemptStats {
        AttemptStats {
            start: self.bucket,
            succeeded: count(self.succeeded),
            failed: count(self.failed),
            mean_ms: self.mean_ms,
            max_ms: self.max_ms,
        }
    }
}

/// The pending deliveries and how many are due, for the operator.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct QueueRow {
    pub(crate) pending: i64,
    pub(crate) due: Option<i64>,
    pub(crate) oldest_due_at: Option<Millis>,
}

/// An endpoint whose deliveries fail.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct FailingRow {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) failing_since: Millis,
}

/// Text from a receiver as both databases can hold it: U+0000 (which PostgreSQL's `text`
/// cannot) becomes U+FFFD, as a byte that is not UTF-8 already did.
pub(crate) fn storable(text: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
    text.as_deref().map(|text| {
        if text.contains('\0') {
            text.replace('\0', "\u{FFFD}").into()
        } else {
            text.into()
        }
    })
}

pub(crate) fn headers_to_json(headers: &BTreeMap<String, String>) -> String {
    // A map of strings always serializes.
    serde_json::to_string(headers).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn headers_from_json(text: &str) -> Result<BTreeMap<String, String>, Error> {
    serde_json::from_str(text).map_err(|e| Error::corrupt("headers", e))
}

pub(crate) fn event_types_to_json(types: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(types).unwrap_or_else(|_| "[]".into())
}

/// A count from the database as a `u32`, saturating.
pub(crate) fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{sent_headers, stored_headers};

    const EVENT: &str = "evt_01JEXAMPLE0000000000000000";
    const STARTED_AT: i64 = 1_733_320_000_123;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn signed(timestamp: &str) -> BTreeMap<String, String> {
        headers(&[
            ("content-type", "application/json"),
            ("user-agent", "herald/0.1.0"),
            ("webhook-id", EVENT),
            ("webhook-signature", "v1,abc="),
            ("webhook-timestamp", timestamp),
        ])
    }

    #[test]
    fn a_signed_request_is_stored_without_what_its_attempt_rebuilds() {
        let sent = signed("1733320000");
        let stored = stored_headers(&sent, EVENT, STARTED_AT);
        assert_eq!(
            stored,
            r#"{"user-agent":"herald/0.1.0","webhook-signature":"v1,abc="}"#
        );
        let read = serde_json::from_str(&stored).unwrap();
        assert_eq!(sent_headers(read, EVENT, STARTED_AT), sent);
    }

    #[test]
    fn headers_that_differ_from_the_rebuilt_ones_are_stored_as_sent() {
        for sent in [
            signed("1733320001"),
            headers(&[("x-custom", "unsigned")]),
            BTreeMap::new(),
        ] {
            let stored = stored_headers(&sent, EVENT, STARTED_AT);
            assert_eq!(stored, serde_json::to_string(&sent).unwrap());
            let read = serde_json::from_str(&stored).unwrap();
            assert_eq!(sent_headers(read, EVENT, STARTED_AT), sent);
        }
        let other_event = stored_headers(&signed("1733320000"), "evt_other", STARTED_AT);
        assert!(other_event.contains(EVENT), "{other_event}");
    }
}
