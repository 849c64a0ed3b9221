//! Listens for `new-subscription` webhooks and prints each verified one.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Some(secrets) = std::env::var("WEBHOOK_SECRET")
        .ok()
        .and_then(|s| s.parse::<herald_receiver::Secrets>().ok())
    else {
        eprintln!("receiver: set WEBHOOK_SECRET to the endpoint's whsec_… secret");
        return ExitCode::FAILURE;
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "9000".into());
    let listener = match tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("receiver: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((id, subscription)) = received.recv().await {
            println!("{id}: {subscription:?}");
        }
    });
    println!("receiving on http://127.0.0.1:{port}/webhooks/new-subscription");
    let app = herald_example_receiver::router(secrets, sender);
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("receiver: {error}");
            ExitCode::FAILURE
        }
    }
}
