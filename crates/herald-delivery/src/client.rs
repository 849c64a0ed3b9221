//! The HTTP request of one attempt: signed, sent once, never redirected, read up to a cap.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use herald_signature::{Signer, signature_header};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::retry::parse_retry_after;
use crate::target::TargetPolicy;

/// How requests are made. Its `Debug` output masks the proxy's password.
#[derive(Clone)]
pub struct ClientConfig {
    /// Which addresses may be reached.
    pub policy: TargetPolicy,
    /// The whole request, connect to last byte read (default 15 s).
    pub timeout: Duration,
    /// How much of the response body is kept for the attempt log (default 4 KiB).
    pub excerpt_bytes: usize,
    /// The proxy every request goes through (`http://host:port`), if any. The environment's
    /// `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are never read: a proxy resolves names
    /// itself, out of the guard's sight, so one is used only when configured, and then each
    /// target is resolved and checked here before the request is handed to it.
    pub proxy: Option<reqwest::Url>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            policy: TargetPolicy::new(),
            timeout: Duration::from_secs(15),
            excerpt_bytes: 4096,
            proxy: None,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proxy = self.proxy.as_ref().map(|url| {
            let mut shown = url.clone();
            if shown.password().is_some() {
                let _ = shown.set_password(Some("****"));
            }
            shown.to_string()
        });
        f.debug_struct("ClientConfig")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("excerpt_bytes", &self.excerpt_bytes)
            .field("proxy", &proxy)
            .finish()
    }
}

/// One delivery's request.
#[derive(Debug)]
pub struct Request<'a> {
    /// Where to send it.
    pub url: &'a str,
    /// `webhook-id`: the event's id.
    pub event_id: &'a str,
    /// The body, byte for byte.
    pub payload: &'a str,
    /// Every key that signs now (secrets and Ed25519 keys); one signature each.
    pub secrets: &'a [Signer],
    /// The endpoint's extra headers (they cannot replace the signature headers).
    pub headers: &'a BTreeMap<String, String>,
}

/// What came of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status, if a response came.
    pub status: Option<u16>,
    /// The receiver's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// The start of the body.
    pub excerpt: Option<String>,
    /// Why no response came (or why the target was refused).
    pub error: Option<String>,
    /// From start to end of the attempt.
    pub duration: Duration,
    /// The headers sent, if the request was made.
    pub request_headers: BTreeMap<String, String>,
    /// The response's headers (at most [`MAX_HEADERS`], values cut at [`MAX_HEADER_VALUE`]
    /// bytes; repeated names joined with `, `).
    pub response_headers: BTreeMap<String, String>,
}

/// The most response headers kept for the attempt log.
pub const MAX_HEADERS: usize = 64;
/// The longest response header value kept for the attempt log, in bytes.
pub const MAX_HEADER_VALUE: usize = 1024;

impl Response {
    /// Any 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// An attempt cut off by the worker (shutting down, or no longer registered) between
    /// `started_at` and `now`: it may or may not have reached the receiver.
    pub fn interrupted(started_at: herald_store::Millis, now: herald_store::Millis) -> Response {
        Response {
            status: None,
            retry_after: None,
            excerpt: None,
            error: Some("interrupted: herald stopped during the attempt".into()),
            duration: Duration::from_millis(u64::try_from(now - started_at).unwrap_or(0)),
            request_headers: BTreeMap::new(),
            response_headers: BTreeMap::new(),
        }
    }
}

/// A pooled keep-alive client that signs and sends attempts.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    policy: Arc<TargetPolicy>,
    /// Whether requests go through a proxy, which resolves names itself.
    proxied: bool,
    excerpt_bytes: usize,
    timeout: Duration,
}

/// The error a refused target becomes, recognisable in reqwest's error chain.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves names, then drops every address the policy refuses, so the connection can only go
/// to an address that was checked (no window for DNS rebinding between check and connect).
/// The configured proxy's own host name is the one name resolved without the guard: the
/// operator chose it, and it may well be on a private network.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<TargetPolicy>,
    proxy_host: Option<String>,
}

/// `host`'s addresses that `policy` allows, and why the first refused one is refused.
fn sort(
    policy: &TargetPolicy,
    host: &str,
    resolved: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Option<String>) {
    let mut refusal = None;
    let allowed = resolved
        .into_iter()
        .filter(|addr| match policy.check(addr.ip()) {
            Ok(()) => true,
            Err(reason) => {
                refusal.get_or_insert_with(|| {
                    format!(
                        "target refused: {host} resolves to {}, {reason} (allow it with \
                         --allow-target)",
                        addr.ip()
                    )
                });
                false
            }
        })
        .collect();
    (allowed, refusal)
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let proxy_host = self.proxy_host.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if proxy_host.as_deref() == Some(host.as_str()) {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let (allowed, refusal) = sort(&policy, &host, resolved);
            if allowed.is_empty() {
                let message = refusal.unwrap_or_else(|| format!("{host} resolves to no address"));
                return Err(Box::new(Refused(message)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Client, reqwest::Error> {
        // rustls needs one process-wide crypto provider; ring builds without cmake or NASM.
        // A second install (another client in the process) fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(config.policy);
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
                proxy_host: config
                    .proxy
                    .as_ref()
                    .and_then(|url| url.host_str().map(str::to_owned)),
            }));
        let http = match &config.proxy {
            Some(url) => builder.proxy(reqwest::Proxy::all(url.clone())?),
            None => builder.no_proxy(),
        }
        .build()?;
        Ok(Client {
            http,
            policy,
            proxied: config.proxy.is_some(),
            excerpt_bytes: config.excerpt_bytes,
            timeout: config.timeout,
        })
    }

    /// For a request handed to a proxy: every address `url`'s host resolves to here must be
    /// allowed. (The proxy resolves the name again; an answer that changes in between, DNS
    /// rebinding, is for the proxy's own rules to stop.)
    async fn check_name(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default();
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("target refused: {host} does not resolve here ({e})"))?
            .collect();
        match sort(&self.policy, host, resolved) {
            (_, Some(refusal)) => Err(refusal),
            (allowed, None) if allowed.is_empty() => {
                Err(format!("target refused: {host} resolves to no address"))
            }
            _ => Ok(()),
        }
    }

    /// The longest an attempt can take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Signs and sends one attempt; never fails: every failure is described in the response.
    pub async fn send(&self, request: Request<'_>) -> Response {
        let started = Instant::now();
        let failed = |error: String| Response {
            status: None,
            retry_after: None,
            excerpt: None,
            error: Some(error),
            duration: started.elapsed(),
            request_headers: BTreeMap::new(),
            response_headers: BTreeMap::new(),
        };

        let url = match reqwest::Url::parse(request.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("invalid URL: {e}")),
        };
        // reqwest connects to an IP literal without asking the resolver, so check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(reason) = self.policy.check(ip)
        {
            return failed(format!(
                "target refused: {ip} is {reason} (allow it with --allow-target)"
            ));
        }
        // A proxy connects to the name itself: check every address it can resolve to first,
        // within the attempt's time (the system's resolver may wait far longer, past the
        // lease's margin).
        if self.proxied && literal.is_none() {
            match tokio::time::timeout(self.timeout, self.check_name(&url)).await {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => return failed(refusal),
                Err(_) => {
                    return failed(format!(
                        "timed out resolving {}",
                        url.host_str().unwrap_or_default()
                    ));
                }
            }
        }

        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let headers = match build_headers(&request, timestamp) {
            Ok(headers) => headers,
            Err(error) => return failed(error),
        };
        let request_headers = header_map(&headers);
        // What is left of the attempt's time after the check above.
        let left = self.timeout.saturating_sub(started.elapsed());
        let sent = self
            .http
            .post(url)
            .timeout(left)
            .headers(headers)
            .body(request.payload.to_owned())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Response {
                    request_headers,
                    ..failed(describe(&error))
                };
            }
        };

        let status = response.status().as_u16();
        let response_headers = header_map(response.headers());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = Vec::new();
        let mut error = None;
        while body.len() < self.excerpt_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(describe(&e));
                    break;
                }
            }
        }
        body.truncate(self.excerpt_bytes);
        Response {
            status: Some(status),
            retry_after,
            excerpt: Some(String::from_utf8_lossy(&body).into_owned()),
            error,
            duration: started.elapsed(),
            request_headers,
            response_headers,
        }
    }
}

fn build_headers(request: &Request<'_>, timestamp: i64) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in request.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("invalid custom header name {name:?}"))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("invalid value for custom header {name}"))?;
        headers.insert(name, value);
    }
    let signature = signature_header(
        request.secrets,
        request.event_id,
        timestamp,
        request.payload.as_bytes(),
    );
    let ours = [
        (CONTENT_TYPE, "application/json".to_owned()),
        (
            USER_AGENT,
            concat!("herald/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
        (
            HeaderName::from_static("webhook-id"),
            request.event_id.to_owned(),
        ),
        (
            HeaderName::from_static("webhook-timestamp"),
            timestamp.to_string(),
        ),
        (HeaderName::from_static("webhook-signature"), signature),
    ];
    for (name, value) in ours {
        let value = HeaderValue::try_from(value).map_err(|_| format!("invalid {name} value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Headers as text for the attempt log, bounded so a hostile receiver cannot bloat it.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if map.len() >= MAX_HEADERS && !map.contains_key(name.as_str()) {
            continue;
        }
        let mut text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if text.len() > MAX_HEADER_VALUE {
            let mut end = MAX_HEADER_VALUE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                if joined.len() < MAX_HEADER_VALUE {
                    joined.push_str(", ");
                    joined.push_str(&text);
                }
            })
            .or_insert(text);
    }
    map
}

/// A one-line cause: ours if the target was refused, else reqwest's chain.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut source = error.source();
    let mut chain = vec![error.to_string()];
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}
