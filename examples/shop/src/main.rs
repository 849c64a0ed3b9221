//! `cargo run -p herald-example-shop`: the shop on 127.0.0.1:3000, its data and herald's in
//! `shop.db`; `SHOP_ADMIN_TOKEN` sets herald's admin token (otherwise one is printed at first
//! start). Deliveries may go to 127.0.0.1, for trying it out.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = herald::Config::sqlite("shop.db").allow_target("127.0.0.0/8".parse()?);
    if let Ok(token) = std::env::var("SHOP_ADMIN_TOKEN") {
        config = config.admin_token(&token);
    }
    let (router, running, herald) = herald_example_shop::start(config).await?;
    if let Some(token) = herald.first_admin_token() {
        println!("herald's admin token (shown once): {token}");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "shop on http://127.0.0.1:3000 (docs: /docs; herald: /herald/api/v1/docs, /herald/dashboard)"
    );
    herald::axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    running.shutdown().await;
    Ok(())
}
