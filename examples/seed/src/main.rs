//! Serves the example on 127.0.0.1:8000: `/users/`, `/openapi.json`, `/docs` and `/redoc`.

use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let app = herald_example_seed::app().build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    println!("serving on http://{}/docs", listener.local_addr()?);
    herald::axum::serve(listener, app.router).await?;
    Ok(())
}
