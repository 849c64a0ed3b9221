//! The `herald` command.
//!
//! `herald serve` runs the default app (FastAPI's webhooks example, with its docs), or with
//! `--spec FILE` the webhooks of any application's OpenAPI document; `herald openapi` prints the
//! app's document, `herald openapi --api` herald's own. With no command, `herald` serves.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod client;
mod config;
#[cfg(unix)]
mod files;
mod listen;
mod stop;
mod telemetry;

/// mimalloc rather than glibc's malloc: a delivery through the HTTP API costs 13-20% less CPU
/// (the benchmark's `CPU/dlv`), most of the difference in glibc's consolidation of freed
/// chunks under many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Declare, document and deliver webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the default app (or --spec's webhooks) with /openapi.json, /docs and /redoc, and
    /// herald's API (documented at /api/v1/openapi.json and /api/v1/docs) and /dashboard.
    Serve(ServeArgs),
    /// Print the app's OpenAPI document as `serve` publishes it at /openapi.json (JSON), or
    /// with --api herald's own (/api/v1/openapi.json), and exit; takes serve's configuration
    /// (only `spec` matters).
    Openapi(OpenapiArgs),
    /// Print the AsyncAPI 3.0 document of the app's webhooks as `serve` publishes it at
    /// /asyncapi.json (JSON), and exit; takes serve's configuration (only `spec` matters).
    Asyncapi(ServeArgs),
    /// Print the configuration `serve` would run with: every key, its value (secrets masked)
    /// and where it came from (default, file, HERALD_* variable or flag).
    Config(ServeArgs),
    /// Receive webhooks locally: print each one, check its signature (--secret) and its body
    /// (--spec), answer --status.
    Listen(listen::ListenArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(clap::Args, Default)]
struct SpecArg {
    /// Serve the webhooks of this OpenAPI document (3.1 `webhooks`, or 3.0 `x-webhooks`; JSON)
    /// instead of the default app: for an application in any language.
    #[arg(long, value_name = "FILE")]
    spec: Option<std::path::PathBuf>,
}

/// The app to serve: the webhooks of the document at `spec`, or the default app.
fn app(spec: Option<&std::path::Path>) -> anyhow::Result<herald_core::App> {
    let Some(path) = spec else {
        return Ok(herald_example_seed::app());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let spec = herald_core::spec::read(&text).with_context(|| format!("{}", path.display()))?;
    Ok(spec.app())
}

/// `serve`'s flags: each overrides its configuration key (see `herald config`).
#[derive(clap::Args, Default)]
struct ServeArgs {
    /// A TOML configuration file; environment variables (HERALD_*) and flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    spec: SpecArg,
    /// Address to listen on; port 0 picks a free port (the address is printed on start).
    /// [key: addr; default 127.0.0.1:8000]
    #[arg(long)]
    addr: Option<String>,
    /// Where events and deliveries are stored: sqlite://FILE (created if missing) or
    /// postgres://USER@HOST/DB. [key: database_url; default sqlite://herald.db]
    #[arg(long)]
    database_url: Option<String>,
    /// Lets deliveries reach a range the SSRF guard refuses by default, e.g. 127.0.0.0/8.
    /// Repeatable. [key: delivery.allow_targets]
    #[arg(long = "allow-target", value_name = "CIDR")]
    allow_targets: Vec<String>,
    /// How long a claim holds if this process stops finishing but lives on (a process that is
    /// gone loses its claims at once). Must exceed the request timeout.
    /// [key: delivery.lease_seconds; default 60]
    #[arg(long, value_name = "SECONDS")]
    lease_seconds: Option<u64>,
}

#[derive(clap::Args)]
struct OpenapiArgs {
    /// Print herald's management API document instead of the app's.
    #[arg(long)]
    api: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

impl ServeArgs {
    /// The effective configuration: defaults, the file, the environment, these flags.
    fn settings(&self) -> anyhow::Result<config::Loaded> {
        let mut flags = Vec::new();
        if let Some(spec) = &self.spec.spec {
            flags.push(("spec", config::text(spec.display().to_string())));
        }
        if let Some(addr) = &self.addr {
            flags.push(("addr", config::text(addr)));
        }
        if let Some(url) = &self.database_url {
            flags.push(("database_url", config::text(url)));
        }
        if !self.allow_targets.is_empty() {
            flags.push((
                "delivery.allow_targets",
                config::list(self.allow_targets.clone()),
            ));
        }
        if let Some(lease) = self.lease_seconds {
            flags.push(("delivery.lease_seconds", config::whole(lease)));
        }
        let (loaded, warnings) =
            config::Loaded::load(self.config.as_deref(), std::env::vars(), flags).map_err(
                |errors| {
                    // One line per bad key, each saying where the value came from.
                    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
                    anyhow::anyhow!("the configuration is not valid:\n{}", lines.join("\n"))
                },
            )?;
        for warning in warnings {
            eprintln!("herald: {warning}");
        }
        Ok(loaded)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Openapi(args)) => print_openapi(&args),
        Some(Command::Asyncapi(args)) => print_asyncapi(&args),
        Some(Command::Config(args)) => args.settings().map(|s| print!("{}", s.describe())),
        Some(Command::Listen(args)) => listen::listen(args),
        Some(Command::Client(command)) => client::run(command),
        Some(Command::Serve(args)) => serve(args),
        None => serve(ServeArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, as a user reads it.
            eprintln!("herald: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi(args: &OpenapiArgs) -> anyhow::Result<()> {
    let app = app(args.serve.settings()?.spec().as_deref())?;
    let document = if args.api {
        herald_server::api_document(app.declared())?
    } else {
        app.build().context("the app is not consistent")?.openapi
    };
    let json = serde_json::to_string_pretty(&document)?;
    println!("{json}");
    Ok(())
}

fn print_asyncapi(args: &ServeArgs) -> anyhow::Result<()> {
    let app = app(args.settings()?.spec().as_deref())?;
    let built = app.build().context("the app is not consistent")?;
    println!("{}", serde_json::to_string_pretty(&built.asyncapi)?);
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // A bad configuration or a document that cannot be served stops here, before anything
    // listens.
    let settings = args.settings()?;
    let app = app(settings.spec().as_deref())?;
    let (addr, config) = settings.service()?;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (export, spans) = match settings.otlp_endpoint() {
        Some(endpoint) => {
            let (export, layer) = telemetry::Export::start(endpoint)?;
            (Some(export), Some(layer))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with(spans);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if settings.json_logs() {
        registry.with(logs.json()).init();
    } else {
        // Colour codes only where a person reads them: not in files, pipes or journald.
        use std::io::IsTerminal;
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        registry.with(logs.with_ansi(colour)).init();
    }
    #[cfg(unix)]
    if let Some(limit) = files::raise_limit() {
        let wanted = files::wanted(config.http.max_connections, config.worker.concurrency);
        if limit < wanted {
            tracing::warn!(
                limit,
                wanted,
                "the limit on open files is lower than http.max_connections and \
                 delivery.concurrency can use: raise it (ulimit -n, LimitNOFILE=) or lower them"
            );
        }
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        let mut stop = stop::Stop::install().context("cannot listen for signals")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        // Said once the database is open (it may be unreachable, or its migrations long), so
        // the line never precedes a failure to start. Tests and scripts read it to find the
        // port when --addr ends in :0.
        let service = herald_server::Service::open(config, app.declared()).await?;
        println!("herald listening on http://{local}");
        println!("docs at http://{local}/docs (herald's API: http://{local}/api/v1/docs)");
        if let Some(token) = service.first_admin_token() {
            eprintln!(
                "first start: the admin token is {token}\n\
                 it is shown only this once (herald keeps its hash); or set HERALD_ADMIN_TOKEN"
            );
        }
        service
            .serve(app, listener, async move {
                stop.recv().await;
                tracing::info!("shutting down");
            })
            .await
            .context("herald stopped")
    });
    if let Some(export) = export {
        export.finish();
    }
    served
}
