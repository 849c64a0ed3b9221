//! A real herald on port 0 over a fresh database, driven over HTTP.

use serde_json::{Value, json};

pub(crate) const ADMIN: &str = "admin-token-for-tests";

/// Each database the API tests run on: a temporary SQLite file, and a fresh PostgreSQL
/// database (skipped when unreachable, except under `CI=true`).
pub(crate) async fn databases(name: &str) -> Vec<(String, Option<String>)> {
    let dir = std::env::temp_dir().join(format!(
        "herald-api-{}-{}",
        std::process::id(),
        ulid::Ulid::generate()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![(format!("sqlite://{}/{name}.db", dir.display()), None)];
    let admin_url = std::env::var("HERALD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match sqlx::PgPool::connect(&admin_url).await {
        Ok(pool) => {
            let db = format!(
                "herald_api_{}",
                ulid::Ulid::generate().to_string().to_lowercase()
            );
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&pool)
                .await
                .unwrap();
            let (base, _) = admin_url.rsplit_once('/').unwrap();
            urls.push((format!("{base}/{db}"), Some(admin_url.clone())));
        }
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED on PostgreSQL: {admin_url} is unreachable: {error}");
        }
        Err(error) => panic!("PostgreSQL at {admin_url} is unreachable under CI: {error}"),
    }
    urls
}

/// Drops the PostgreSQL database a test made.
pub(crate) async fn drop_database(url: &str, admin: Option<String>) {
    if let Some(admin) = admin {
        let db = url.rsplit('/').next().unwrap();
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
}

/// herald serving the seed app.
pub(crate) struct Server {
    pub(crate) base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub(crate) async fn start(database_url: &str) -> Server {
        Server::start_with(database_url, |_| {}).await
    }

    /// herald with its configuration changed by `change` first.
    pub(crate) async fn start_with(
        database_url: &str,
        change: impl FnOnce(&mut herald_server::Config),
    ) -> Server {
        let mut config = herald_server::Config::new(database_url).admin_token(ADMIN);
        config.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
        change(&mut config);
        let service = herald_server::Service::open(config, herald_example_seed::app().declared())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
            let _ = stopped.await;
        }));
        Server {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// Sends a request with `token` (none: no `Authorization`), returning status and JSON
    /// body (`Value::Null` when empty).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.call_raw(method, path, token, body).await
    }

    /// As [`Server::call`], with the body's content type and bytes as given.
    pub(crate) async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status >= 400 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{path}: errors are problem+json"
            );
        }
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    /// As the admin, makes tenant `id` with one endpoint; returns the endpoint's id.
    pub(crate) async fn tenant_with_endpoint(&self, id: &str) -> String {
        self.tenant_with_endpoint_at(id, "http://127.0.0.1:9/hook")
            .await
    }

    /// As the admin, makes tenant `id` with one endpoint at `url`; returns the endpoint's id.
    pub(crate) async fn tenant_with_endpoint_at(&self, id: &str, url: &str) -> String {
        let (status, _) = self
            .call(
                "POST",
                "/api/v1/tenants",
                Some(ADMIN),
                Some(json!({ "id": id })),
            )
            .await;
        assert_eq!(status, 201);
        let (status, endpoint) = self
            .call(
                "POST",
                &format!("/api/v1/tenants/{id}/endpoints"),
                Some(ADMIN),
                Some(json!({ "url": url })),
            )
            .await;
        assert_eq!(status, 201, "{endpoint}");
        endpoint["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How a [`TestReceiver`] answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answer {
    /// 200 at once.
    Ok,
    /// Takes the request and never answers.
    Hang,
    /// 500 to the first attempt of about a third of the events, 200 otherwise.
    FailSomeFirstTries,
    /// Takes each event's first attempt and never answers it; 200 to the next.
    HangFirstTries,
}

/// One request a [`TestReceiver`] took.
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    pub(crate) webhook_id: String,
    #[allow(dead_code)] // kept for tests that verify signatures
    pub(crate) timestamp: String,
    #[allow(dead_code)] // kept for tests that verify signatures
    pub(crate) signature: String,
    #[allow(dead_code)] // kept for tests that read what arrived
    pub(crate) body: String,
    /// The `herald-event-version` header, empty without one.
    #[allow(dead_code)] // kept for tests of versioned webhooks
    pub(crate) version: String,
    pub(crate) at: std::time::Instant,
    pub(crate) status: u16,
}

/// A real HTTP receiver on port 0 that records what it takes, and how it answered.
#[derive(Clone)]
pub(crate) struct TestReceiver {
    pub(crate) url: String,
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<Arrival>>>,
}

impl TestReceiver {
    pub(crate) async fn start(answer: Answer) -> TestReceiver {
        use std::sync::{Arc, Mutex};
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let seen: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
        let sink = Arc::clone(&arrivals);
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = Arc::clone(&sink);
                let seen = Arc::clone(&seen);
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let webhook_id = header("webhook-id");
                    let (timestamp, signature) =
                        (header("webhook-timestamp"), header("webhook-signature"));
                    let version = header("herald-event-version");
                    let first = seen.lock().unwrap().insert(webhook_id.clone());
                    let status = match answer {
                        Answer::Ok => 200,
                        Answer::HangFirstTries if !first => 200,
                        Answer::Hang | Answer::HangFirstTries => {
                            // Taken (status 0: no answer), and never answered.
                            sink.lock().unwrap().push(Arrival {
                                webhook_id,
                                timestamp,
                                signature,
                                body: String::from_utf8_lossy(&body).into_owned(),
                                version,
                                at: std::time::Instant::now(),
                                status: 0,
                            });
                            std::future::pending::<()>().await;
                            unreachable!("a hanging receiver never answers")
                        }
                        // The id's last character is random (a ULID's): about a third fail.
                        Answer::FailSomeFirstTries
                            if first && webhook_id.bytes().last().unwrap_or(0) % 3 == 0 =>
                        {
                            500
                        }
                        Answer::FailSomeFirstTries => 200,
                    };
                    sink.lock().unwrap().push(Arrival {
                        webhook_id,
                        timestamp,
                        signature,
                        body: String::from_utf8_lossy(&body).into_owned(),
                        version,
                        at: std::time::Instant::now(),
                        status,
                    });
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestReceiver { url, arrivals }
    }

    /// Every request taken so far, in order.
    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    /// The distinct webhook ids answered with a 2xx.
    pub(crate) fn delivered(&self) -> std::collections::HashSet<String> {
        self.arrivals()
            .into_iter()
            .filter(|a| (200..300).contains(&a.status))
            .map(|a| a.webhook_id)
            .collect()
    }

    /// Waits until `count` distinct ids were delivered, up to `limit`; how long it took.
    pub(crate) async fn wait_for(
        &self,
        count: usize,
        limit: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.delivered().len() >= count {
                return Some(start.elapsed());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        None
    }
}
