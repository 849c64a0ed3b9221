//! `herald serve`'s configuration, from four layers, each overriding the one before: defaults,
//! a TOML file (`--config`), `HERALD_*` environment variables, then flags. Every key is in
//! [`KEYS`], with its environment variable and what it means; a bad value is reported with the
//! key and where it came from, every bad key at once, before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a key holds, and so how a value from the environment is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Whole,
    /// Several texts: a TOML array, or commas in the environment.
    List,
}

/// One configuration key.
struct Key {
    /// Dotted path: `delivery.lease_seconds` is `lease_seconds` in `[delivery]`.
    path: &'static str,
    kind: Kind,
    /// Shown masked by `herald config`.
    secret: bool,
    /// What it does.
    doc: &'static str,
}

/// Every key (the README's table lists the same).
const KEYS: &[Key] = &[
    Key {
        path: "addr",
        kind: Kind::Text,
        secret: false,
        doc: "address to listen on; port 0 picks a free port",
    },
    Key {
        path: "database_url",
        kind: Kind::Text,
        secret: false,
        doc: "sqlite://FILE (created if missing) or postgres://USER@HOST/DB",
    },
    Key {
        path: "admin_token",
        kind: Kind::Text,
        secret: true,
        doc: "the management API's admin token; unset: one is made at first start and printed once",
    },
    Key {
        path: "spec",
        kind: Kind::Text,
        secret: false,
        doc: "serve the webhooks of this OpenAPI document instead of the default app",
    },
    Key {
        path: "delivery.allow_targets",
        kind: Kind::List,
        secret: false,
        doc: "address ranges deliveries may reach beyond public addresses, e.g. 127.0.0.0/8",
    },
    Key {
        path: "delivery.timeout_seconds",
        kind: Kind::Whole,
        secret: false,
        doc: "a whole attempt, connect to last byte (1 to 120)",
    },
    Key {
        path: "delivery.lease_seconds",
        kind: Kind::Whole,
        secret: false,
        doc: "how long a claimed delivery stays with this process; must exceed the timeout (up to 3600)",
    },
    Key {
        path: "delivery.concurrency",
        kind: Kind::Whole,
        secret: false,
        doc: "attempts in flight at once, in all (1 to 10000)",
    },
    Key {
        path: "delivery.per_endpoint",
        kind: Kind::Whole,
        secret: false,
        doc: "attempts in flight at once to one endpoint (1 to concurrency)",
    },
    Key {
        path: "delivery.shutdown_grace_seconds",
        kind: Kind::Whole,
        secret: false,
        doc: "on SIGTERM, how long in-flight attempts may finish (0 to 300)",
    },
    Key {
        path: "retention.max_age_seconds",
        kind: Kind::Whole,
        secret: false,
        doc: "events older than this (30 days) are deleted with their deliveries and attempts once none is pending; 0 keeps everything",
    },
    Key {
        path: "retention.batch",
        kind: Kind::Whole,
        secret: false,
        doc: "events deleted per statement (1 to 10000)",
    },
    Key {
        path: "retention.interval_seconds",
        kind: Kind::Whole,
        secret: false,
        doc: "how often old events are looked for (1 or more)",
    },
];

/// A value of one of the kinds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Whole(u64),
    List(Vec<String>),
}

/// The effective configuration: each key's value and its source.
pub(crate) struct Settings {
    values: BTreeMap<&'static str, (Value, String)>,
}

/// As `herald config` prints it: secrets masked.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The environment variable of `key`: `HERALD_` and the path in capitals, `__` between a
/// section and its key (`HERALD_DELIVERY__LEASE_SECONDS`).
fn env_name(path: &str) -> String {
    format!("HERALD_{}", path.to_ascii_uppercase().replace('.', "__"))
}

impl Settings {
    /// Reads the layers. `env` reads a variable (the process environment, or a test's map);
    /// `flags` are (key, value) pairs from the command line.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: Vec<(&'static str, Value)>,
    ) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let mut values = BTreeMap::new();
        for (path, value) in defaults() {
            values.insert(path, (value, "default".to_owned()));
        }
        if let Some(path) = file {
            let source = path.display().to_string();
            match std::fs::read_to_string(path) {
                Err(e) => errors.push(format!("{source}: cannot read it: {e}")),
                Ok(text) => match text.parse::<toml::Table>() {
                    Err(e) => {
                        errors.push(format!("{source}: not TOML: {}", one_line(&e.to_string())))
                    }
                    Ok(table) => {
                        let mut flat = Vec::new();
                        flatten("", &toml::Value::Table(table), &mut flat);
                        for (path, value) in flat {
                            match file_value(&path, value) {
                                Ok((key, value)) => {
                                    values.insert(key.path, (value, source.clone()));
                                }
                                Err(message) => errors.push(format!("{source}: {message}")),
                            }
                        }
                    }
                },
            }
        }
        for key in KEYS {
            let name = env_name(key.path);
            let Some(text) = env(&name) else { continue };
            if key.secret && text.trim().is_empty() {
                continue; // an empty token is no token
            }
            match env_value(key, &text) {
                Ok(value) => {
                    values.insert(key.path, (value, name));
                }
                Err(message) => errors.push(format!("{name}={text:?}: {message}")),
            }
        }
        for (path, value) in flags {
            values.insert(path, (value, format!("--{}", flag_name(path))));
        }
        let settings = Settings { values };
        errors.extend(settings.check());
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }

    fn text(&self, path: &str) -> Option<&str> {
        match self.values.get(path) {
            Some((Value::Text(text), _)) if !text.is_empty() => Some(text),
            _ => None,
        }
    }

    fn whole(&self, path: &str) -> u64 {
        match self.values.get(path) {
            Some((Value::Whole(n), _)) => *n,
            _ => 0,
        }
    }

    fn list(&self, path: &str) -> &[String] {
        match self.values.get(path) {
            Some((Value::List(items), _)) => items,
            _ => &[],
        }
    }

    fn source(&self, path: &str) -> &str {
        self.values.get(path).map_or("default", |(_, s)| s)
    }

    /// Every value that is the right type but not a usable one, named with its source.
    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut bad = |path: &str, message: String| {
            errors.push(format!("{path} (from {}): {message}", self.source(path)));
        };
        if let Some(addr) = self.text("addr")
            && addr.parse::<SocketAddr>().is_err()
        {
            bad(
                "addr",
                format!("{addr:?} is not an address like 127.0.0.1:8000"),
            );
        }
        let url = self.text("database_url").unwrap_or_default();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            bad(
                "database_url",
                format!(
                    "{:?} is neither sqlite://FILE nor postgres://…",
                    mask_url(url)
                ),
            );
        }
        for (i, range) in self.list("delivery.allow_targets").iter().enumerate() {
            if let Err(e) = herald_delivery::target::parse_range(range) {
                bad(
                    "delivery.allow_targets",
                    format!("item {i}, {range:?}: {e}"),
                );
            }
        }
        let timeout = self.whole("delivery.timeout_seconds");
        // Bounds that depend on another key use it only when it is itself in range, so one
        // bad value is reported once.
        let concurrency = Some(self.whole("delivery.concurrency"))
            .filter(|n| (1..=10_000).contains(n))
            .unwrap_or(10_000);
        let ranges = [
            ("delivery.timeout_seconds", 1, 120),
            ("delivery.lease_seconds", timeout + 1, 3600),
            ("delivery.concurrency", 1, 10_000),
            ("delivery.per_endpoint", 1, concurrency),
            ("delivery.shutdown_grace_seconds", 0, 300),
            ("retention.batch", 1, 10_000),
            ("retention.interval_seconds", 1, u64::MAX),
        ];
        for (path, low, high) in ranges {
            let n = self.whole(path);
            if !(low..=high).contains(&n) {
                let upper = if high == u64::MAX {
                    "".to_owned()
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
        let mut out = String::new();
        let mut section = "";
        for key in KEYS {
            let (head, name) = key.path.rsplit_once('.').unwrap_or(("", key.path));
            if head != section {
                out.push_str(&format!("\n[{head}]\n"));
                section = head;
            }
            let shown = match self.values.get(key.path) {
                None => format!("# {name} = (unset)"),
                Some((value, _)) => {
                    let text = match value {
                        Value::Text(t) if key.secret => format!("\"{}\"", mask(t)),
                        Value::Text(t) if key.path == "database_url" => {
                            format!("{:?}", mask_url(t))
                        }
                        Value::Text(t) => format!("{t:?}"),
                        Value::Whole(n) => n.to_string(),
                        Value::List(items) => format!("{items:?}"),
                    };
                    format!("{name} = {text}")
                }
            };
            out.push_str(&format!(
                "{shown:<48} # {}: {}\n",
                self.source(key.path),
                key.doc
            ));
        }
        out.trim_start().to_owned()
    }

    /// The service's configuration.
    pub(crate) fn service(&self) -> anyhow::Result<(SocketAddr, herald_server::Config)> {
        let addr = self.text("addr").unwrap_or_default().parse()?;
        let mut config =
            herald_server::Config::new(self.text("database_url").unwrap_or_default(), "");
        config.admin_token = self.text("admin_token").map(str::to_owned);
        for range in self.list("delivery.allow_targets") {
            config
                .allow_targets
                .push(herald_delivery::target::parse_range(range).map_err(anyhow::Error::msg)?);
        }
        let seconds = |path| Duration::from_secs(self.whole(path));
        config.client.timeout = seconds("delivery.timeout_seconds");
        config.worker.lease = seconds("delivery.lease_seconds");
        config.worker.concurrency = usize::try_from(self.whole("delivery.concurrency"))?;
        config.worker.per_endpoint = usize::try_from(self.whole("delivery.per_endpoint"))?;
        config.worker.shutdown_grace = seconds("delivery.shutdown_grace_seconds");
        config.retention.max_age =
            Some(seconds("retention.max_age_seconds")).filter(|age| !age.is_zero());
        config.retention.batch = u32::try_from(self.whole("retention.batch"))?;
        config.retention.interval = seconds("retention.interval_seconds");
        Ok((addr, config))
    }

    /// The OpenAPI document to serve, if one is configured.
    pub(crate) fn spec(&self) -> Option<PathBuf> {
        self.text("spec").map(PathBuf::from)
    }
}

/// A text flag's value.
pub(crate) fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

/// A number flag's value.
pub(crate) fn whole(value: u64) -> Value {
    Value::Whole(value)
}

/// A repeated flag's values.
pub(crate) fn list(values: Vec<String>) -> Value {
    Value::List(values)
}

fn flag_name(path: &str) -> String {
    let name = path.rsplit('.').next().unwrap_or(path);
    match path {
        "delivery.allow_targets" => "allow-target".to_owned(),
        _ => name.replace('_', "-"),
    }
}

/// The defaults: the service's own (`herald_server::Config`), so they cannot drift apart, plus
/// the command's address and database.
fn defaults() -> Vec<(&'static str, Value)> {
    let config = herald_server::Config::new(DEFAULT_DATABASE_URL, "");
    let seconds = |d: Duration| Value::Whole(d.as_secs());
    let whole = |n: usize| Value::Whole(u64::try_from(n).unwrap_or(u64::MAX));
    vec![
        ("addr", Value::Text(DEFAULT_ADDR.to_owned())),
        ("database_url", Value::Text(config.database_url)),
        ("delivery.allow_targets", Value::List(Vec::new())),
        ("delivery.timeout_seconds", seconds(config.client.timeout)),
        ("delivery.lease_seconds", seconds(config.worker.lease)),
        ("delivery.concurrency", whole(config.worker.concurrency)),
        ("delivery.per_endpoint", whole(config.worker.per_endpoint)),
        (
            "delivery.shutdown_grace_seconds",
            seconds(config.worker.shutdown_grace),
        ),
        (
            "retention.max_age_seconds",
            seconds(config.retention.max_age.unwrap_or_default()),
        ),
        (
            "retention.batch",
            Value::Whole(u64::from(config.retention.batch)),
        ),
        (
            "retention.interval_seconds",
            seconds(config.retention.interval),
        ),
    ]
}

const DEFAULT_ADDR: &str = "127.0.0.1:8000";
const DEFAULT_DATABASE_URL: &str = "sqlite://herald.db";

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match value {
        toml::Value::Table(table) => {
            for (name, child) in table {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                if matches!(child, toml::Value::Table(_)) && !prefix.is_empty() {
                    out.push((path, child.clone())); // no key is two tables deep
                } else {
                    flatten(&path, child, out);
                }
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn known(path: &str) -> Result<&'static Key, String> {
    KEYS.iter().find(|k| k.path == path).ok_or_else(|| {
        let names: Vec<&str> = KEYS.iter().map(|k| k.path).collect();
        format!("unknown key `{path}`; the keys are {}", names.join(", "))
    })
}

fn file_value(path: &str, value: toml::Value) -> Result<(&'static Key, Value), String> {
    let key = known(path)?;
    let typed = match (key.kind, value) {
        (Kind::Text, toml::Value::String(text)) => Value::Text(text),
        (Kind::Whole, toml::Value::Integer(n)) if n >= 0 => Value::Whole(n.unsigned_abs()),
        (Kind::List, toml::Value::String(text)) => Value::List(vec![text]),
        (Kind::List, toml::Value::Array(items)) => Value::List(
            items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text),
                    other => Err(format!("`{path}`: {other} is not a string")),
                })
                .collect::<Result<_, _>>()?,
        ),
        (kind, other) => {
            let wanted = match kind {
                Kind::Text => "a string",
                Kind::Whole => "a whole number, 0 or more",
                Kind::List => "a list of strings",
            };
            return Err(format!("`{path}` = {other}: expected {wanted}"));
        }
    };
    Ok((key, typed))
}

fn env_value(key: &Key, text: &str) -> Result<Value, String> {
    match key.kind {
        Kind::Text => Ok(Value::Text(text.to_owned())),
        Kind::Whole => text
            .trim()
            .parse()
            .map(Value::Whole)
            .map_err(|_| "expected a whole number, 0 or more".to_owned()),
        Kind::List => Ok(Value::List(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
    }
}

/// A secret as `herald config` shows it: only that it is set, and how long it is.
fn mask(secret: &str) -> String {
    format!("(set, {} characters, masked)", secret.chars().count())
}

/// A database URL without its password.
fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
