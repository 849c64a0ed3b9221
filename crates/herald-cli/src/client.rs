//! The command line client of a running herald's API: send an event, list and add endpoints,
//! replay since a time (with a progress bar), and tail deliveries as they happen.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where herald answers, and as whom.
#[derive(clap::Args, Clone)]
pub(crate) struct Remote {
    /// herald's base URL.
    #[arg(
        long,
        global = true,
        env = "HERALD_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    url: String,
    /// An admin token, or a tenant's API token.
    #[arg(long, global = true, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The tenant to act for.
    #[arg(long, global = true, env = "HERALD_TENANT")]
    tenant: Option<String>,
}

#[derive(clap::Subcommand)]
pub(crate) enum EndpointsCommand {
    /// List the tenant's endpoints.
    List,
    /// Register an endpoint; prints its id and its signing secret or public key.
    Add {
        /// Where deliveries go.
        #[arg(value_name = "URL")]
        endpoint_url: String,
        /// An event type to receive (repeatable); none means all.
        #[arg(long = "type", value_name = "EVENT_TYPE")]
        types: Vec<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// How deliveries are signed: `hmac` (a shared secret), `ed25519` (a public key), or
        /// `both` while a receiver moves over.
        #[arg(long, value_enum, default_value = "hmac")]
        signature: Signature,
        /// The version to pin (a date a webhook declares); default: the newest.
        #[arg(long, value_name = "YYYY-MM-DD")]
        version: Option<String>,
        /// A channel to receive (repeatable): then only events carrying one of them arrive.
        #[arg(long = "channel", value_name = "CHANNEL")]
        channels: Vec<String>,
        /// A payload filter (JSON), e.g. '{"path": "/monthly_fee", "gte": 10}'.
        #[arg(long, value_name = "JSON")]
        filter: Option<String>,
    },
}

/// How an endpoint's deliveries are signed.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Signature {
    Hmac,
    Ed25519,
    Both,
}

impl Signature {
    fn as_str(self) -> &'static str {
        match self {
            Signature::Hmac => "hmac",
            Signature::Ed25519 => "ed25519",
            Signature::Both => "both",
        }
    }
}

#[derive(clap::Subcommand)]
pub(crate) enum ClientCommand {
    /// Send an event: the payload from --data, or from a file with --data @FILE, or from
    /// standard input with --data -.
    Send {
        #[command(flatten)]
        remote: Remote,
        /// The event type (a declared webhook's name).
        #[arg(long = "type", value_name = "EVENT_TYPE")]
        event_type: String,
        /// The payload (JSON), @FILE, or - for standard input.
        #[arg(long)]
        data: String,
        /// Repeating a key sends nothing new: the first event is returned.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// For a versioned webhook, the version of the payload; default: the newest.
        #[arg(long, value_name = "YYYY-MM-DD")]
        version: Option<String>,
        /// A channel the event carries (repeatable).
        #[arg(long = "channel", value_name = "CHANNEL")]
        channels: Vec<String>,
    },
    /// List or add endpoints.
    Endpoints {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: EndpointsCommand,
    },
    /// Deliver every event since a time to one endpoint again, showing progress.
    Replay {
        #[command(flatten)]
        remote: Remote,
        /// The endpoint (`ep_…`).
        #[arg(long)]
        endpoint: String,
        /// RFC 3339, e.g. 2026-11-22T00:00:00Z.
        #[arg(long)]
        since: String,
    },
    /// Print deliveries as they are made and as their state changes, until Ctrl-C.
    Tail {
        #[command(flatten)]
        remote: Remote,
        /// Only this endpoint's.
        #[arg(long)]
        endpoint: Option<String>,
        /// How often to ask, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        every_ms: u64,
    },
}

/// Runs one client command.
pub(crate) fn run(command: ClientCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            ClientCommand::Send {
                remote,
                event_type,
                data,
                idempotency_key,
                version,
                channels,
            } => {
                let options = EventOptions {
                    idempotency_key,
                    version,
                    channels,
                };
                send(&Api::new(remote)?, event_type, &data, options).await
            }
            ClientCommand::Endpoints { remote, command } => match command {
                EndpointsCommand::List => list_endpoints(&Api::new(remote)?).await,
                EndpointsCommand::Add {
                    endpoint_url,
                    types,
                    description,
                    signature,
                    version,
                    channels,
                    filter,
                } => {
                    let filter: Option<Value> = filter
                        .map(|text| serde_json::from_str(&text))
                        .transpose()
                        .context("the filter (--filter) is not JSON")?;
                    let body = json!({
                        "url": endpoint_url,
                        "event_types": types,
                        "description": description,
                        "signature": signature.as_str(),
                        "version": version,
                        "channels": channels,
                        "filter": filter,
                    });
                    add_endpoint(&Api::new(remote)?, body).await
                }
            },
            ClientCommand::Replay {
                remote,
                endpoint,
                since,
            } => replay(&Api::new(remote)?, &endpoint, since).await,
            ClientCommand::Tail {
                remote,
                endpoint,
                every_ms,
            } => {
                let every = Duration::from_millis(every_ms.max(100));
                tail(&Api::new(remote)?, endpoint.as_deref(), every).await
            }
        }
    })
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
    tenant: String,
}

impl Api {
    fn new(remote: Remote) -> anyhow::Result<Api> {
        let Some(token) = remote.token.filter(|t| !t.is_empty()) else {
            bail!("no token: pass --token or set HERALD_TOKEN");
        };
        let Some(tenant) = remote.tenant.filter(|t| !t.is_empty()) else {
            bail!("no tenant: pass --tenant or set HERALD_TENANT");
        };
        // rustls needs one process-wide crypto provider, for https URLs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            http,
            url: remote.url.trim_end_matches('/').to_owned(),
            token,
            tenant,
        })
    }

    /// `path` under the tenant, e.g. `/endpoints`.
    fn tenant_url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}{path}", self.url, self.tenant)
    }

    /// Sends a request; a problem answer becomes an error that says what herald said.
    /// `body` is JSON text, sent as it is.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Value> {
        let url = self.tenant_url(path);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach herald at {}", self.url))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        let mut message = format!(
            "{} {}",
            status.as_u16(),
            value["detail"].as_str().unwrap_or("(no detail)")
        );
        for error in value["errors"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                "; {}: {}",
                error["path"].as_str().unwrap_or(""),
                error["message"].as_str().unwrap_or("")
            ));
        }
        bail!(message)
    }
}

/// What `send` adds to an event besides its type and payload.
struct EventOptions {
    idempotency_key: Option<String>,
    version: Option<String>,
    channels: Vec<String>,
}

async fn send(
    api: &Api,
    event_type: String,
    data: &str,
    options: EventOptions,
) -> anyhow::Result<()> {
    let text = match data {
        "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
        file if file.starts_with('@') => std::fs::read_to_string(&file[1..])
            .with_context(|| format!("cannot read {}", &file[1..]))?,
        inline => inline.to_owned(),
    };
    // Checked, then sent byte for byte: herald delivers the payload exactly as it gets it.
    let payload: &serde_json::value::RawValue =
        serde_json::from_str(text.trim()).context("the payload (--data) is not JSON")?;
    #[derive(serde::Serialize)]
    struct Event<'a> {
        event_type: &'a str,
        /// A `RawValue` serializes as the very text it was read from (`json!` would not).
        payload: &'a serde_json::value::RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        channels: Vec<String>,
    }
    let body = serde_json::to_string(&Event {
        event_type: &event_type,
        payload,
        idempotency_key: options.idempotency_key,
        version: options.version,
        channels: options.channels,
    })?;
    let event = api
        .call(reqwest::Method::POST, "/events", Some(body))
        .await?;
    let again = if event["duplicate"] == true {
        " (already sent with this key)"
    } else {
        ""
    };
    println!(
        "{} accepted{again}: {} deliveries",
        event["id"].as_str().unwrap_or("?"),
        event["deliveries"]
    );
    Ok(())
}

async fn list_endpoints(api: &Api) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(next) => format!("/endpoints?limit=100&after={next}"),
            None => "/endpoints?limit=100".to_owned(),
        };
        let page = api.call(reqwest::Method::GET, &path, None).await?;
        // Only once the first page came: a failed call prints nothing on stdout.
        if after.is_none() {
            println!("{:<30} {:<8} {:<24} URL", "ID", "STATE", "TYPES");
        }
        for endpoint in page["data"].as_array().into_iter().flatten() {
            let types: Vec<&str> = endpoint["event_types"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "{:<30} {:<8} {:<24} {}",
                endpoint["id"].as_str().unwrap_or("?"),
                if endpoint["enabled"] == true {
                    "enabled"
                } else {
                    "disabled"
                },
                if types.is_empty() {
                    "(all)".to_owned()
                } else {
                    types.join(",")
                },
                endpoint["url"].as_str().unwrap_or("?"),
            );
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(()),
        }
    }
}

async fn add_endpoint(api: &Api, body: serde_json::Value) -> anyhow::Result<()> {
    let endpoint = api
        .call(reqwest::Method::POST, "/endpoints", Some(body.to_string()))
        .await?;
    println!("{}", endpoint["id"].as_str().unwrap_or("?"));
    for (field, label) in [
        ("secret", "secret"),
        ("public_key", "public key"),
        ("version", "version"),
    ] {
        if let Some(value) = endpoint[field].as_str() {
            println!("{label}: {value}");
        }
    }
    Ok(())
}

async fn replay(api: &Api, endpoint: &str, since: String) -> anyhow::Result<()> {
    let job = api
        .call(
            reqwest::Method::POST,
            &format!("/endpoints/{endpoint}/replay"),
            Some(json!({ "since": since }).to_string()),
        )
        .await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let bar = indicatif::ProgressBar::new(job["total"].as_u64().unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("replaying to {endpoint}"));
    let finished = loop {
        let job = api
            .call(reqwest::Method::GET, &format!("/replays/{id}"), None)
            .await?;
        bar.set_length(job["total"].as_u64().unwrap_or(0));
        bar.set_position(job["done"].as_u64().unwrap_or(0));
        if job["state"] != "running" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    bar.finish_and_clear();
    println!(
        "{id} {}: {} of {} events queued again for {endpoint}",
        finished["state"].as_str().unwrap_or("?"),
        finished["done"],
        finished["total"]
    );
    Ok(())
}

async fn tail(api: &Api, endpoint: Option<&str>, every: Duration) -> anyhow::Result<()> {
    // Each delivery's last printed (state, attempts), so only changes are printed.
    let mut seen: HashMap<String, (String, u64)> = HashMap::new();
    let path = match endpoint {
        Some(endpoint) => format!("/deliveries?limit=100&endpoint={endpoint}"),
        None => "/deliveries?limit=100".to_owned(),
    };
    // Listened for across the loop, so a Ctrl-C while a page is printed is not missed.
    let mut stop = crate::stop::Stop::install().context("cannot listen for signals")?;
    let mut first = true;
    loop {
        let page = tokio::select! {
            page = api.call(reqwest::Method::GET, &path, None) => page?,
            () = stop.recv() => return Ok(()),
        };
        let mut rows: Vec<&Value> = page["data"].as_array().into_iter().flatten().collect();
        rows.reverse(); // oldest first, as a log reads
        for delivery in rows {
            let id = delivery["id"].as_str().unwrap_or("?").to_owned();
            let now = (
                delivery["state"].as_str().unwrap_or("?").to_owned(),
                delivery["attempt_count"].as_u64().unwrap_or(0),
            );
            if seen.get(&id) == Some(&now) {
                continue;
            }
            // On the first poll, show only what is still moving, not the whole history.
            if !first || now.0 == "pending" {
                println!(
                    "{} {:<9} attempts={} {} {} → {}",
                    delivery["updated_at"].as_str().unwrap_or("?"),
                    now.0,
                    now.1,
                    id,
                    delivery["event_type"].as_str().unwrap_or("?"),
                    delivery["endpoint_id"].as_str().unwrap_or("?"),
                );
            }
            seen.insert(id, now);
        }
        if first {
            // On stderr, so what is piped on is only the deliveries; scripts wait for it.
            eprintln!(
                "herald tail: following deliveries every {} ms (Ctrl-C stops)",
                every.as_millis()
            );
        }
        first = false;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.recv() => return Ok(()),
        }
    }
}
