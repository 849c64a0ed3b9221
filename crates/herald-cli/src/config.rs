//! `herald serve`'s configuration: one typed [`Settings`], merged by figment from four layers,
//! each overriding the one before: defaults, a TOML file (`--config`), `HERALD_*` environment
//! variables, then flags. figment remembers where every value came from, so a bad value is
//! reported with its key and its source, every bad key at once, before anything starts; and
//! `herald config` shows each value's source.
//!
//! The keys are the fields of [`Settings`] (a misspelt key does not compile); [`DOCS`] says what
//! each means, and a test holds the two together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

/// Every key, with its default.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    addr: String,
    database_url: String,
    admin_token: Option<String>,
    spec: Option<String>,
    database: Database,
    delivery: Delivery,
    retention: Retention,
    tenants: Tenants,
    http: Http,
    log: Log,
    telemetry: Telemetry,
}

/// `[tenants]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Tenants {
    max_endpoints: u64,
}

/// `[http]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Http {
    header_timeout_seconds: u64,
    request_timeout_seconds: u64,
    max_connections: u64,
    shutdown_timeout_seconds: u64,
}

/// `[telemetry]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Telemetry {
    otlp_endpoint: String,
}

/// `[log]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Log {
    format: String,
}

/// `[database]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Database {
    acquire_timeout_seconds: u64,
    statement_timeout_seconds: u64,
}

/// `[delivery]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    allow_targets: Vec<String>,
    proxy: String,
    timeout_seconds: u64,
    lease_seconds: u64,
    concurrency: u64,
    per_endpoint: u64,
    shutdown_grace_seconds: u64,
}

/// `[retention]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Retention {
    max_age_seconds: u64,
    batch: u64,
    interval_seconds: u64,
}

/// What each key means (the README's table lists the same).
const DOCS: &[(&str, &str)] = &[
    ("addr", "address to listen on; port 0 picks a free port"),
    (
        "database_url",
        "sqlite://FILE (created if missing) or postgres://USER@HOST/DB",
    ),
    (
        "admin_token",
        "the management API's admin token; unset: one is made at first start and printed once",
    ),
    (
        "spec",
        "serve the webhooks of this OpenAPI document instead of the default app",
    ),
    (
        "database.acquire_timeout_seconds",
        "how long a request waits for a database connection before it answers 503 with Retry-After (1 to 60)",
    ),
    (
        "database.statement_timeout_seconds",
        "how long one statement may run (PostgreSQL), or wait for the write lock (SQLite) (1 to 3600)",
    ),
    (
        "delivery.allow_targets",
        "address ranges deliveries may reach beyond public addresses, e.g. 127.0.0.0/8",
    ),
    (
        "delivery.proxy",
        "send every delivery through this HTTP proxy (http://host:port); empty: none, and HTTP_PROXY & co. are never read",
    ),
    (
        "delivery.timeout_seconds",
        "a whole attempt, connect to last byte (1 to 120)",
    ),
    (
        "delivery.lease_seconds",
        "how long a claim holds if this process stops finishing but lives on; a process that is gone loses its claims at once (timeout + 10, which covers recording the attempt, to 3600)",
    ),
    (
        "delivery.concurrency",
        "attempts in flight at once, in all (1 to 10000)",
    ),
    (
        "delivery.per_endpoint",
        "attempts in flight at once to one endpoint, at most: each endpoint starts at 8 and grows while it answers well (1 to concurrency)",
    ),
    (
        "delivery.shutdown_grace_seconds",
        "on SIGTERM, how long in-flight attempts may finish (0 to 300)",
    ),
    (
        "retention.max_age_seconds",
        "events older than this (30 days) are deleted with their deliveries and attempts once none is pending; 0 keeps everything",
    ),
    (
        "retention.batch",
        "events deleted per statement (1 to 10000)",
    ),
    (
        "retention.interval_seconds",
        "how often old events are looked for (1 or more)",
    ),
    (
        "tenants.max_endpoints",
        "endpoints one tenant may have: each of its events is written with a delivery for each endpoint, in a write every other tenant waits behind (0: no bound, up to 1000000)",
    ),
    (
        "http.header_timeout_seconds",
        "how long a client may take to send a request's head, and a kept-alive connection may sit idle, before it is closed (1 to 3600)",
    ),
    (
        "http.request_timeout_seconds",
        "how long a whole request may take, its body included, before it is answered 408 (1 to 3600)",
    ),
    (
        "http.max_connections",
        "HTTP connections open at once; more wait to be accepted, so slow clients cannot take the files deliveries need (1 to 1000000)",
    ),
    (
        "http.shutdown_timeout_seconds",
        "on SIGTERM, how long requests in progress may finish before their connections are closed (0 to 300)",
    ),
    (
        "telemetry.otlp_endpoint",
        "export OpenTelemetry spans (accept, store, claim, attempt) over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318; empty: off, at no cost",
    ),
    (
        "log.format",
        "text (coloured only on a terminal; NO_COLOR turns colour off) or json (one object a line, for log shippers)",
    ),
];

/// Keys shown masked by `herald config`.
const SECRETS: &[&str] = &["admin_token"];

/// What a lease holds beyond the attempt's timeout: time to record the attempt, so the lease
/// cannot run out (and the delivery go to another process) while its finish commits.
const LEASE_MARGIN_SECONDS: u64 = 10;

const DEFAULT_ADDR: &str = "127.0.0.1:8000";
const DEFAULT_DATABASE_URL: &str = "sqlite://herald.db";

impl Default for Settings {
    /// The service's own defaults (`herald_server::Config`), so the two cannot drift apart,
    /// plus the command's address and database.
    fn default() -> Settings {
        let config = herald_server::Config::new(DEFAULT_DATABASE_URL);
        let whole = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Settings {
            addr: DEFAULT_ADDR.to_owned(),
            database_url: config.database_url,
            admin_token: None,
            spec: None,
            database: Database {
                acquire_timeout_seconds: config.database.acquire_timeout.as_secs(),
                statement_timeout_seconds: config.database.statement_timeout.as_secs(),
            },
            delivery: Delivery {
                allow_targets: Vec::new(),
                proxy: String::new(),
                timeout_seconds: config.client.timeout.as_secs(),
                lease_seconds: config.worker.lease.as_secs(),
                concurrency: whole(config.worker.concurrency),
                per_endpoint: whole(config.worker.per_endpoint),
                shutdown_grace_seconds: config.worker.shutdown_grace.as_secs(),
            },
            log: Log {
                format: "text".into(),
            },
            telemetry: Telemetry {
                otlp_endpoint: String::new(),
            },
            retention: Retention {
                max_age_seconds: config.retention.max_age.unwrap_or_default().as_secs(),
                batch: u64::from(config.retention.batch),
                interval_seconds: config.retention.interval.as_secs(),
            },
            tenants: Tenants {
                max_endpoints: config
                    .database
                    .max_endpoints_per_tenant
                    .map_or(0, u64::from),
            },
            http: Http {
                header_timeout_seconds: config.http.header_timeout.as_secs(),
                request_timeout_seconds: config.http.request_timeout.as_secs(),
                max_connections: whole(config.http.max_connections),
                shutdown_timeout_seconds: config.http.shutdown_timeout.as_secs(),
            },
        }
    }
}

/// The effective configuration and where each value came from.
pub(crate) struct Loaded {
    settings: Settings,
    figment: Figment,
}

/// As `herald config` prints it: secrets masked.
impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The environment variable of a key: `HERALD_` and its path in capitals, `__` between a
/// section and its key (`HERALD_DELIVERY__LEASE_SECONDS`).
fn env_name(path: &str) -> String {
    format!("HERALD_{}", path.to_ascii_uppercase().replace('.', "__"))
}

/// The flag that sets a key.
fn flag_name(path: &str) -> String {
    match path {
        "delivery.allow_targets" => "--allow-target".to_owned(),
        _ => format!(
            "--{}",
            path.rsplit('.').next().unwrap_or(path).replace('_', "-")
        ),
    }
}

impl Loaded {
    /// Reads the layers. `env` is the process environment (or a test's); `flags` are
    /// (key, value) pairs from the command line.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Vec<(&'static str, Value)>,
    ) -> Result<(Loaded, Vec<String>), Vec<String>> {
        let defaults = Figment::from(Serialized::defaults(Settings::default()));
        let known: BTreeMap<String, Value> = leaves(&defaults);
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        let mut figment = defaults;
        if let Some(path) = file {
            let source = path.display().to_string();
            match std::fs::read_to_string(path) {
                Err(e) => errors.push(format!("{source}: cannot read it: {e}")),
                Ok(text) => match Figment::from(Toml::string(&text)).extract::<Dict>() {
                    Err(e) => errors.push(format!("{source}: not TOML: {}", one_line(&e))),
                    Ok(_) => figment = figment.merge(Toml::file_exact(path)),
                },
            }
        }
        let environment = Layer::environment(env, &known, &mut warnings);
        figment = figment.merge(environment).merge(Layer::flags(flags));

        let mut loaded = Loaded {
            settings: Settings::default(),
            figment,
        };
        errors.extend(loaded.unknown_keys(&known));
        // Each key on its own, so every bad one is named; the good ones make the settings
        // that the remaining checks (ranges, addresses) run on.
        let mut usable = Figment::from(Serialized::defaults(Settings::default()));
        for (path, value) in leaves(&loaded.figment) {
            if !known.contains_key(&path) {
                continue;
            }
            let alone = Figment::from(Serialized::defaults(Settings::default()))
                .merge(Serialized::default(&path, value.clone()));
            match alone.extract::<Settings>() {
                Ok(_) => usable = usable.merge(Serialized::default(&path, value)),
                Err(error) => errors.push(format!(
                    "{}: `{path}` = {}: expected {}",
                    loaded.source(&path),
                    shown(&value),
                    expected(&error)
                )),
            }
        }
        loaded.settings = usable.extract().map_err(|e| vec![one_line(&e)])?;
        errors.extend(loaded.check());
        if errors.is_empty() {
            Ok((loaded, warnings))
        } else {
            Err(errors)
        }
    }

    /// Where the value of `path` came from: `default`, the file, the variable or the flag.
    fn source(&self, path: &str) -> String {
        let Some(metadata) = self.figment.find_metadata(path) else {
            return "default".into();
        };
        match &metadata.source {
            Some(Source::File(file)) => file.display().to_string(),
            // The defaults are serialized in code; the environment and flags name themselves.
            Some(Source::Code(_)) => "default".into(),
            _ => {
                let keys: Vec<&str> = path.split('.').collect();
                metadata.interpolate(&Profile::Default, &keys)
            }
        }
    }

    /// Keys that no field of [`Settings`] names.
    fn unknown_keys(&self, known: &BTreeMap<String, Value>) -> Vec<String> {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        leaves(&self.figment)
            .into_keys()
            .filter(|path| !known.contains_key(path))
            .map(|path| {
                let hint = match suggest(&path, &names) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("the keys are {}", names.join(", ")),
                };
                format!("{}: unknown key `{path}`; {hint}", self.source(&path))
            })
            .collect()
    }

    /// Every value that is the right type but not a usable one, named with its source.
    fn check(&self) -> Vec<String> {
        let s = &self.settings;
        let mut errors = Vec::new();
        let mut bad = |path: &str, message: String| {
            errors.push(format!("{path} (from {}): {message}", self.source(path)));
        };
        if s.addr.parse::<SocketAddr>().is_err() {
            bad(
                "addr",
                format!("{:?} is not an address like 127.0.0.1:8000", s.addr),
            );
        }
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| s.database_url.starts_with(scheme))
        {
            bad(
                "database_url",
                format!(
                    "{:?} is neither sqlite://FILE nor postgres://…",
                    herald_server::masked_url(&s.database_url)
                ),
            );
        }
        for (i, range) in s.delivery.allow_targets.iter().enumerate() {
            if let Err(e) = herald_delivery::target::parse_range(range) {
                bad(
                    "delivery.allow_targets",
                    format!("item {i}, {range:?}: {e}"),
                );
            }
        }
        if !s.delivery.proxy.is_empty() && proxy_url(&s.delivery.proxy).is_err() {
            bad(
                "delivery.proxy",
                format!("{:?} is not an http:// or https:// URL", s.delivery.proxy),
            );
        }
        let otlp = &s.telemetry.otlp_endpoint;
        if !otlp.is_empty() && proxy_url(otlp).is_err() {
            bad(
                "telemetry.otlp_endpoint",
                format!("{otlp:?} is not an http:// or https:// URL"),
            );
        }
        if !["text", "json"].contains(&s.log.format.as_str()) {
            bad(
                "log.format",
                format!("{:?} is neither \"text\" nor \"json\"", s.log.format),
            );
        }
        let d = &s.delivery;
        // Bounds that depend on another key use it only when it is itself in range, so one
        // bad value is reported once.
        let concurrency = Some(d.concurrency)
            .filter(|n| (1..=10_000).contains(n))
            .unwrap_or(10_000);
        let db = &s.database;
        let ranges = [
            (
                "database.acquire_timeout_seconds",
                db.acquire_timeout_seconds,
                1,
                60,
            ),
            (
                "database.statement_timeout_seconds",
                db.statement_timeout_seconds,
                1,
                3600,
            ),
            ("delivery.timeout_seconds", d.timeout_seconds, 1, 120),
            (
                "delivery.lease_seconds",
                d.lease_seconds,
                d.timeout_seconds + LEASE_MARGIN_SECONDS,
                3600,
            ),
            ("delivery.concurrency", d.concurrency, 1, 10_000),
            ("delivery.per_endpoint", d.per_endpoint, 1, concurrency),
            (
                "delivery.shutdown_grace_seconds",
                d.shutdown_grace_seconds,
                0,
                300,
            ),
            ("retention.batch", s.retention.batch, 1, 10_000),
            (
                "http.header_timeout_seconds",
                s.http.header_timeout_seconds,
                1,
                3600,
            ),
            (
                "http.request_timeout_seconds",
                s.http.request_timeout_seconds,
                1,
                3600,
            ),
            ("http.max_connections", s.http.max_connections, 1, 1_000_000),
            (
                "http.shutdown_timeout_seconds",
                s.http.shutdown_timeout_seconds,
                0,
                300,
            ),
            (
                "tenants.max_endpoints",
                s.tenants.max_endpoints,
                0,
                1_000_000,
            ),
            (
                "retention.interval_seconds",
                s.retention.interval_seconds,
                1,
                u64::MAX,
            ),
        ];
        for (path, n, low, high) in ranges {
            if !(low..=high).contains(&n) {
                let upper = if high == u64::MAX {
                    String::new()
                } else {
                    format!(" to {high}")
                };
                bad(path, format!("{n} is out of range: {low}{upper}"));
            }
        }
        errors
    }

    /// What `herald config` prints: every key, its value (secrets masked) and its source.
    pub(crate) fn describe(&self) -> String {
        let values = leaves(&Figment::from(Serialized::defaults(&self.settings)));
        let mut out = String::new();
        let mut section = "";
        for (path, doc) in DOCS {
            let (head, name) = path.rsplit_once('.').unwrap_or(("", path));
            if head != section {
                out.push_str(&format!("\n[{head}]\n"));
                section = head;
            }
            let shown = match values.get(*path) {
                None | Some(Value::Empty(..)) => format!("# {name} = (unset)"),
                Some(Value::String(_, text)) if SECRETS.contains(path) => {
                    format!("{name} = \"{}\"", mask(text))
                }
                Some(Value::String(_, text))
                    if ["database_url", "delivery.proxy"].contains(path) =>
                {
                    format!("{name} = {:?}", herald_server::masked_url(text))
                }
                Some(value) => format!("{name} = {}", shown(value)),
            };
            out.push_str(&format!("{shown:<48} # {}: {doc}\n", self.source(path)));
        }
        out.trim_start().to_owned()
    }

    /// The service's configuration.
    pub(crate) fn service(&self) -> anyhow::Result<(SocketAddr, herald_server::Config)> {
        let s = &self.settings;
        let addr = s.addr.parse()?;
        let mut config = herald_server::Config::new(&s.database_url);
        config.admin_token = s.admin_token.clone().filter(|t| !t.is_empty());
        for range in &s.delivery.allow_targets {
            config
                .allow_targets
                .push(herald_delivery::target::parse_range(range).map_err(anyhow::Error::msg)?);
        }
        config.database.acquire_timeout = Duration::from_secs(s.database.acquire_timeout_seconds);
        config.database.statement_timeout =
            Duration::from_secs(s.database.statement_timeout_seconds);
        let d = &s.delivery;
        if !d.proxy.is_empty() {
            config.client.proxy = Some(proxy_url(&d.proxy).map_err(anyhow::Error::msg)?);
        }
        config.client.timeout = Duration::from_secs(d.timeout_seconds);
        config.worker.lease = Duration::from_secs(d.lease_seconds);
        config.worker.concurrency = usize::try_from(d.concurrency)?;
        config.worker.per_endpoint = usize::try_from(d.per_endpoint)?;
        config.worker.shutdown_grace = Duration::from_secs(d.shutdown_grace_seconds);
        let r = &s.retention;
        config.retention.max_age =
            Some(Duration::from_secs(r.max_age_seconds)).filter(|age| !age.is_zero());
        config.retention.batch = u32::try_from(r.batch)?;
        config.retention.interval = Duration::from_secs(r.interval_seconds);
        config.database.max_endpoints_per_tenant =
            Some(u32::try_from(s.tenants.max_endpoints)?).filter(|max| *max > 0);
        let h = &s.http;
        config.http.header_timeout = Duration::from_secs(h.header_timeout_seconds);
        config.http.request_timeout = Duration::from_secs(h.request_timeout_seconds);
        config.http.max_connections = usize::try_from(h.max_connections)?;
        config.http.shutdown_timeout = Duration::from_secs(h.shutdown_timeout_seconds);
        Ok((addr, config))
    }

    /// Whether logs are JSON lines rather than text.
    /// Where to export spans, if anywhere.
    pub(crate) fn otlp_endpoint(&self) -> Option<&str> {
        Some(self.settings.telemetry.otlp_endpoint.as_str()).filter(|e| !e.is_empty())
    }

    pub(crate) fn json_logs(&self) -> bool {
        self.settings.log.format == "json"
    }

    /// The OpenAPI document to serve, if one is configured.
    pub(crate) fn spec(&self) -> Option<PathBuf> {
        self.settings
            .spec
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }
}

/// A proxy's URL: `http://` or `https://` with a host.
fn proxy_url(text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(url) if ["http", "https"].contains(&url.scheme()) && url.host().is_some() => Ok(url),
        _ => Err(format!("{text:?} is not an http:// or https:// URL")),
    }
}

/// The environment or the flags, as a figment provider that names each value's variable or
/// flag.
struct Layer {
    name: &'static str,
    values: Vec<(String, Value)>,
    describe: fn(&str) -> String,
}

impl Layer {
    /// The `HERALD_*` variables that name keys. Each value is read as the type of its key's
    /// default (a number, a comma-separated list, or text exactly as written, so a token of
    /// digits keeps its leading zeros). A variable inside a section (`__`) that names no key is
    /// kept, to be reported as unknown; one that only resembles a key is a warning, since the
    /// client (`HERALD_URL`, `HERALD_TOKEN`, …) and tests share the prefix.
    fn environment(
        env: impl IntoIterator<Item = (String, String)>,
        known: &BTreeMap<String, Value>,
        warnings: &mut Vec<String>,
    ) -> Layer {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        let mut values = Vec::new();
        for (name, text) in env {
            let Some(rest) = name.strip_prefix("HERALD_") else {
                continue;
            };
            let path = rest.to_ascii_lowercase().replace("__", ".");
            let value = match known.get(&path) {
                Some(_) if SECRETS.contains(&path.as_str()) && text.trim().is_empty() => {
                    continue; // an empty token is no token
                }
                Some(Value::Num(..)) => match text.trim().parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::from(text),
                },
                Some(Value::Array(..)) => Value::from(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                Some(_) => Value::from(text),
                None if path.contains('.') => Value::from(text),
                None => {
                    if let Some(near) = suggest(&path, &names) {
                        warnings.push(format!(
                            "{name} is not a configuration key and is ignored; did you mean {}?",
                            env_name(near)
                        ));
                    }
                    continue;
                }
            };
            values.push((path, value));
        }
        Layer {
            name: "environment",
            values,
            describe: env_name,
        }
    }

    fn flags(flags: Vec<(&'static str, Value)>) -> Layer {
        Layer {
            name: "flags",
            values: flags
                .into_iter()
                .map(|(path, value)| (path.to_owned(), value))
                .collect(),
            describe: flag_name,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let describe = self.describe;
        Metadata::named(self.name)
            .interpolater(move |_: &Profile, keys: &[&str]| describe(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (path, value) in &self.values {
            let mut keys: Vec<&str> = path.split('.').collect();
            let last = keys.pop().unwrap_or_default();
            let mut at = &mut dict;
            for key in keys {
                let entry = at
                    .entry(key.to_owned())
                    .or_insert_with(|| Value::from(Dict::new()));
                if !matches!(entry, Value::Dict(..)) {
                    *entry = Value::from(Dict::new());
                }
                let Value::Dict(_, inner) = entry else {
                    unreachable!("made a table just above")
                };
                at = inner;
            }
            at.insert(last.to_owned(), value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Every leaf of the merged configuration, by dotted path.
fn leaves(figment: &Figment) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, dict: &Dict, out: &mut BTreeMap<String, Value>) {
        for (name, value) in dict {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                // No key is two sections deep: a table inside a section is a value.
                Value::Dict(_, inner) if prefix.is_empty() => walk(&path, inner, out),
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(dict) = figment.extract::<Dict>() {
        walk("", &dict, &mut out);
    }
    out
}

/// The known key that `path` is most likely a misspelling of.
fn suggest<'a>(path: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|name| (distance(path, name), *name))
        .filter(|(d, name)| *d <= 3.max(name.len() / 4) || name.starts_with(path))
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// What a value of the wrong type should have been, in the words of the configuration.
fn expected(error: &figment::Error) -> String {
    match &error.kind {
        figment::error::Kind::InvalidType(_, wanted) => match wanted.as_str() {
            "u64" => "a whole number, 0 or more".to_owned(),
            "a sequence" => "a list of strings".to_owned(),
            other => other.to_owned(),
        },
        other => other.to_string(),
    }
}

/// A value as TOML would write it.
fn shown(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("{text:?}"),
        Value::Num(_, Num::U64(n)) => n.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map_or_else(|| format!("{n:?}"), |n| n.to_string()),
        Value::Bool(_, b) => b.to_string(),
        Value::Array(_, items) => {
            let items: Vec<String> = items.iter().map(shown).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Dict(..) => "a table".into(),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Empty(..) => "(unset)".into(),
    }
}

/// A text flag's value.
pub(crate) fn text(value: impl Into<String>) -> Value {
    Value::from(value.into())
}

/// A number flag's value.
pub(crate) fn whole(value: u64) -> Value {
    Value::from(value)
}

/// A repeated flag's values.
pub(crate) fn list(values: Vec<String>) -> Value {
    Value::from(values)
}

/// A secret as `herald config` shows it: only that it is set, and how long it is.
fn mask(secret: &str) -> String {
    format!("(set, {} characters, masked)", secret.chars().count())
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
