//! `herald listen`: a local receiver for developers. Prints every request it gets, says whether
//! its Standard Webhooks signature verifies (with `--secret`) and whether its body matches a
//! webhook of an OpenAPI document (with `--spec`), and answers the status it was told to.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use herald_signature::{Key, Signed};

#[derive(clap::Args)]
pub(crate) struct ListenArgs {
    /// Port on 127.0.0.1 to listen on; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The endpoint's signing secret (`whsec_…`, verifies `v1`) or the sender's public key
    /// (`whpk_…`, verifies `v1a`), to verify signatures. Repeatable, for a rotation.
    #[arg(long = "secret", value_name = "WHSEC|WHPK", value_parser = parse_secret)]
    secrets: Vec<Key>,
    /// An OpenAPI document whose webhooks the bodies should match.
    #[arg(long, value_name = "FILE")]
    spec: Option<std::path::PathBuf>,
    /// The status to answer every request with.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
}

fn parse_secret(text: &str) -> Result<Key, String> {
    text.parse()
        .map_err(|e: herald_signature::Error| e.to_string())
}

struct Listener {
    secrets: Vec<Key>,
    /// One validator per webhook of `--spec`, by name.
    webhooks: Vec<(String, jsonschema::Validator)>,
    status: StatusCode,
}

pub(crate) fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let mut webhooks = Vec::new();
    if let Some(path) = &args.spec {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let spec = herald_core::spec::read(&text).with_context(|| format!("{}", path.display()))?;
        for declaration in spec.webhooks.iter() {
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&declaration.json_schema())
                .map_err(|e| anyhow::anyhow!("the schema of `{}`: {e}", declaration.name()))?;
            // An older version is told apart as `name@version`, as the document keys it.
            webhooks.push((spec.webhooks.key(declaration), validator));
        }
    }
    let status = StatusCode::from_u16(args.status).context("--status")?;
    let listener = Arc::new(Listener {
        secrets: args.secrets,
        webhooks,
        status,
    });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut stop = crate::stop::Stop::install().context("cannot listen for signals")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = socket.local_addr()?;
        println!(
            "herald listen: receiving on http://{local} (any path), answering {status}; \
             signatures {}, bodies {}",
            if listener.secrets.is_empty() {
                "not checked (no --secret)"
            } else {
                "checked"
            },
            if listener.webhooks.is_empty() {
                "not checked (no --spec)"
            } else {
                "checked"
            },
        );
        let app = axum::Router::new().fallback(receive).with_state(listener);
        axum::serve(socket, app)
            .with_graceful_shutdown(async move { stop.recv().await })
            .await
            .context("the listener failed")
    })
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    println!(
        "{}",
        report(&listener, &method, &uri, &headers, &body, SystemTime::now())
    );
    listener.status
}

/// What one request looks like to a developer: its webhook headers, the verdicts, the body.
fn report(
    listener: &Listener,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut out = format!("── {method} {uri}\n");
    for name in ["webhook-id", "webhook-timestamp", "content-type"] {
        let _ = writeln!(out, "   {name}: {}", or_missing(header(name)));
    }
    let version = header(herald_delivery::worker::VERSION_HEADER);
    if !version.is_empty() {
        let _ = writeln!(out, "   version: {version}");
    }
    let signature = if listener.secrets.is_empty() {
        "– not checked (start with --secret whsec_…)".to_owned()
    } else {
        let signed = Signed {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        };
        match signed.verify_with(&listener.secrets, now) {
            Ok(()) => "✓ verified".to_owned(),
            Err(error) => format!("✗ {error}"),
        }
    };
    let _ = writeln!(out, "   signature: {signature}");
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(body);
    let schema = match (&parsed, listener.webhooks.is_empty()) {
        (_, true) => "– not checked (start with --spec openapi.json)".to_owned(),
        (Err(e), false) => format!("✗ the body is not JSON: {e}"),
        (Ok(value), false) => schema_verdict(&listener.webhooks, value),
    };
    let _ = writeln!(out, "   schema: {schema}");
    // As received, byte for byte (re-serializing would reorder the keys).
    let _ = writeln!(out, "   body ({} bytes):", body.len());
    for line in String::from_utf8_lossy(body).lines() {
        let _ = writeln!(out, "     {line}");
    }
    let _ = write!(out, "   → answered {}", listener.status.as_u16());
    out
}

/// Which webhooks the body matches; when none, why not (every violation, per webhook).
fn schema_verdict(
    webhooks: &[(String, jsonschema::Validator)],
    body: &serde_json::Value,
) -> String {
    let matching: Vec<&str> = webhooks
        .iter()
        .filter(|(_, validator)| validator.is_valid(body))
        .map(|(name, _)| name.as_str())
        .collect();
    if !matching.is_empty() {
        return format!("✓ matches {}", matching.join(", "));
    }
    let mut verdict = String::from("✗ matches no webhook of the spec");
    for (name, validator) in webhooks {
        for error in validator.iter_errors(body) {
            let _ = write!(
                verdict,
                "\n      {name}: {}: {error}",
                or_root(error.instance_path().as_str())
            );
        }
    }
    verdict
}

fn or_missing(value: &str) -> &str {
    if value.is_empty() { "(missing)" } else { value }
}

fn or_root(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}
