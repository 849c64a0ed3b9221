//! The `herald` command.
//!
//! `herald serve` runs the default app (FastAPI's webhooks example, with its docs);
//! `herald openapi` prints that app's OpenAPI document. With no command, `herald` serves.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    /// Serve the default app: its routes, /openapi.json, /docs and /redoc.
    Serve(ServeArgs),
    /// Print the default app's OpenAPI document (JSON) and exit.
    Openapi,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed on start).
    #[arg(long, default_value = "127.0.0.1:8000", env = "HERALD_ADDR")]
    addr: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Openapi) => print_openapi(),
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

fn print_openapi() -> anyhow::Result<()> {
    let app = herald_example_seed::app().build()?;
    let json = serde_json::to_string_pretty(&app.openapi)?;
    println!("{json}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let addr = args
        .addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
    let app = herald_example_seed::app().build()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        // Tests and scripts read this line to find the port when --addr ends in :0.
        println!("herald listening on http://{local}");
        println!("docs at http://{local}/docs");
        axum::serve(listener, app.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("the server stopped")
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
