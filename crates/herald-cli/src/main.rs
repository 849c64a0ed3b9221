//! The `herald` command.
//!
//! `herald serve` runs the default app (FastAPI's webhooks example, with its docs), or with
//! `--spec FILE` the webhooks of any application's OpenAPI document; `herald openapi` prints the
//! document served. With no command, `herald` serves.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod listen;

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
    /// Serve the default app (or --spec's webhooks), herald's API, /openapi.json, /docs,
    /// /redoc and /dashboard.
    Serve(ServeArgs),
    /// Print the OpenAPI document `serve` publishes (JSON) and exit.
    Openapi(SpecArg),
    /// Receive webhooks locally: print each one, check its signature (--secret) and its body
    /// (--spec), answer --status.
    Listen(listen::ListenArgs),
}

#[derive(clap::Args, Default)]
struct SpecArg {
    /// Serve the webhooks of this OpenAPI document (3.1 `webhooks`, or 3.0 `x-webhooks`; JSON)
    /// instead of the default app: for an application in any language.
    #[arg(long, value_name = "FILE", env = "HERALD_SPEC")]
    spec: Option<std::path::PathBuf>,
}

impl SpecArg {
    /// The app to serve: the document's webhooks, or the default app.
    fn app(&self) -> anyhow::Result<herald::App> {
        let Some(path) = &self.spec else {
            return Ok(herald_example_seed::app());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let spec = herald::spec::read(&text).with_context(|| format!("{}", path.display()))?;
        Ok(spec.app())
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    spec: SpecArg,
    /// Address to listen on; port 0 picks a free port (the address is printed on start).
    #[arg(long, default_value = "127.0.0.1:8000", env = "HERALD_ADDR")]
    addr: SocketAddr,
    /// Where events and deliveries are stored: sqlite://FILE (created if missing) or
    /// postgres://USER@HOST/DB.
    #[arg(
        long,
        default_value = "sqlite://herald.db",
        env = "HERALD_DATABASE_URL"
    )]
    database_url: String,
    /// Lets deliveries reach a range the SSRF guard refuses by default, e.g. 127.0.0.0/8.
    /// Repeatable.
    #[arg(long = "allow-target", value_name = "CIDR", value_parser = parse_range)]
    allow_targets: Vec<ipnet::IpNet>,
    /// How long a claimed delivery stays with this process; if the process dies, another takes
    /// the delivery over once this has passed. Must exceed the 15 s request timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(16..=3600))]
    lease_seconds: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            spec: SpecArg::default(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: "sqlite://herald.db".into(),
            allow_targets: Vec::new(),
            lease_seconds: 60,
        }
    }
}

fn parse_range(text: &str) -> Result<ipnet::IpNet, String> {
    herald_delivery::target::parse_range(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Openapi(spec)) => print_openapi(&spec),
        Some(Command::Listen(args)) => listen::listen(args),
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

fn print_openapi(spec: &SpecArg) -> anyhow::Result<()> {
    let document = herald_server::document(spec.app()?)?;
    let json = serde_json::to_string_pretty(&document)?;
    println!("{json}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // A document that cannot be served stops here, before anything listens.
    let app = args.spec.app()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = herald_server::Config::new(&args.database_url, "");
    // Unset: the admin tokens stored in the database, one made (and printed once) on first start.
    config.admin_token = std::env::var("HERALD_ADMIN_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty());
    config.allow_targets = args.allow_targets;
    config.worker.lease = std::time::Duration::from_secs(args.lease_seconds);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let local = listener.local_addr()?;
        // Tests and scripts read this line to find the port when --addr ends in :0.
        println!("herald listening on http://{local}");
        println!("docs at http://{local}/docs");
        let service = herald_server::Service::open(config).await?;
        if let Some(token) = service.first_admin_token() {
            eprintln!(
                "first start: the admin token is {token}\n\
                 it is shown only this once (herald keeps its hash); or set HERALD_ADMIN_TOKEN"
            );
        }
        service
            .serve(app, listener, shutdown_signal())
            .await
            .context("herald stopped")
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
