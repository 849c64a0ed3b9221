//! herald as a service: an application's routes and docs, herald's management API under
//! `/api/v1`, and the delivery workers, over one store.
//!
//! [`serve`] takes the listener, so tests (and embedding applications) own the port.

mod api;
mod auth;
mod dashboard;
mod event_types;
mod example;
mod link;
mod ops;
mod problem;
mod replay;
mod retention;
mod sender;
mod state;

pub use retention::Retention;
pub use sender::{SendOptions, Sender, new_event};

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use herald_delivery::client::{Client, ClientConfig};
use herald_delivery::worker::{Worker, WorkerConfig};
use herald_store::postgres::PostgresStore;
use herald_store::sqlite::SqliteStore;
use herald_store::{Clock, Store, SystemClock};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the service runs. Its `Debug` output masks the admin token and the database password.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://file.db` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// The admin token of the management API. `None`: the admin tokens stored in the
    /// database; on first start, when there are none, one is made and handed out once by
    /// [`Service::first_admin_token`].
    pub admin_token: Option<String>,
    /// Address ranges deliveries may reach beyond public unicast (e.g. `127.0.0.0/8`).
    pub allow_targets: Vec<IpNet>,
    /// The delivery worker.
    pub worker: WorkerConfig,
    /// Outgoing requests.
    pub client: ClientConfig,
    /// How long events are kept.
    pub retention: Retention,
    /// How long anything waits for the database, at most.
    pub database: herald_store::Limits,
    /// Where the store, the worker and the API read the time (tests move a
    /// [`ManualClock`](herald_store::ManualClock) by hand). `None`: this machine's clock,
    /// corrected to the database's on PostgreSQL, so processes on several machines agree.
    pub clock: Option<Arc<dyn Clock>>,
}

impl Config {
    /// Defaults, with `database_url` and the admin token.
    pub fn new(database_url: &str, admin_token: &str) -> Config {
        Config {
            database_url: database_url.into(),
            admin_token: Some(admin_token.into()),
            allow_targets: Vec::new(),
            worker: WorkerConfig::new("herald"),
            client: ClientConfig::default(),
            retention: Retention::default(),
            database: herald_store::Limits::default(),
            clock: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &masked_url(&self.database_url))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "****"))
            .field("allow_targets", &self.allow_targets)
            .field("worker", &self.worker)
            .field("client", &self.client)
            .field("retention", &self.retention)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// `url` with its password, if it has one, replaced by `****`: how a database URL is shown
/// in messages and logs.
pub fn masked_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Why the service could not start or stopped.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Opens the store a URL names (`sqlite:` or `postgres:`/`postgresql:`), reading the time from
/// `clock` (`None`: the machine's, corrected to PostgreSQL's) and waiting for the database as
/// `limits` allow.
pub async fn open_store(
    url: &str,
    clock: Option<Arc<dyn Clock>>,
    limits: herald_store::Limits,
) -> Result<Arc<dyn Store>, Error> {
    let cannot_open =
        |e: herald_store::Error| Error(format!("cannot open {}: {e}", masked_url(url)));
    let local: Arc<dyn Clock> = clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let store = SqliteStore::open_with(url, limits)
            .await
            .map_err(cannot_open)?;
        Arc::new(store.with_clock(local))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::open_with(url, limits)
            .await
            .map_err(cannot_open)?;
        Arc::new(match clock {
            Some(clock) => store.with_clock(clock),
            None => store
                .with_database_clock(local)
                .await
                .map_err(cannot_open)?,
        })
    } else {
        return Err(Error(format!(
            "unsupported database URL `{}`: use sqlite://FILE or postgres://…",
            masked_url(url)
        )));
    };
    Ok(store)
}

/// Makes and stores (hashed) an admin token when the store has none that is unrevoked.
async fn first_admin_token(store: &dyn Store) -> Result<Option<String>, Error> {
    let stored = store
        .tokens(None)
        .await
        .map_err(|e| Error(format!("cannot read the admin tokens: {e}")))?;
    if stored.iter().any(|t| t.revoked_at.is_none()) {
        return Ok(None);
    }
    let (token, new) = auth::new_token(None, "admin (made at first start)")
        .map_err(|p| Error(format!("cannot make an admin token: {}", p.detail)))?;
    store
        .create_token(new)
        .await
        .map_err(|e| Error(format!("cannot store the admin token: {e}")))?;
    Ok(Some(token))
}

/// The OpenAPI document [`serve`] publishes for `app`: its routes and webhooks plus herald's API.
pub fn document(app: herald::App) -> Result<utoipa::openapi::OpenApi, Error> {
    let event_types = event_types::EventTypes::new(app.declared()).map_err(Error)?;
    let api = utoipa_axum::router::OpenApiRouter::with_openapi(api::openapi(&event_types));
    let ops = utoipa_axum::router::OpenApiRouter::with_openapi(ops::openapi());
    app.routes(ops)
        .routes(api)
        .build()
        .map(|built| built.openapi)
        .map_err(|e| Error(format!("the app is not consistent: {e}")))
}

/// Serves `app` plus herald's API on `listener` and runs a delivery worker, until `shutdown`
/// completes: [`Service::open`] then [`Service::serve`].
pub async fn serve(
    app: herald::App,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Service::open(config)
        .await?
        .serve(app, listener, shutdown)
        .await
}

/// An opened store with its worker, ready to serve; hands out [`Sender`]s first if the
/// application sends webhooks from Rust.
pub struct Service {
    store: Arc<dyn Store>,
    worker: Worker,
    policy: herald_delivery::target::TargetPolicy,
    admin_token: Option<String>,
    first_admin_token: Option<String>,
    attempt_timeout: std::time::Duration,
    retention: Retention,
}

impl Service {
    /// Opens the store (running migrations) and prepares the worker.
    pub async fn open(config: Config) -> Result<Service, Error> {
        let store = open_store(&config.database_url, config.clock.clone(), config.database).await?;
        let mut policy = config.client.policy.clone();
        for range in &config.allow_targets {
            policy = policy.allow(*range);
        }
        let client = Client::new(ClientConfig {
            policy: policy.clone(),
            ..config.client.clone()
        })
        .map_err(|e| Error(format!("cannot build the HTTP client: {e}")))?;
        let worker = Worker::new(Arc::clone(&store) as _, client, config.worker.clone());
        let first_admin_token = match config.admin_token {
            Some(_) => None,
            None => first_admin_token(&*store).await?,
        };
        Ok(Service {
            store,
            worker,
            policy,
            admin_token: config.admin_token,
            first_admin_token,
            attempt_timeout: config.client.timeout,
            retention: config.retention,
        })
    }

    /// The admin token made at this start because none was configured or stored yet; show
    /// it to the operator now: only its hash is kept.
    pub fn first_admin_token(&self) -> Option<&str> {
        self.first_admin_token.as_deref()
    }

    /// The key that signs dashboard links, made once and shared through the database.
    async fn link_key(&self) -> Result<String, Error> {
        let (candidate, _) = auth::new_token(None, "link key")
            .map_err(|p| Error(format!("cannot make the link key: {}", p.detail)))?;
        self.store
            .server_key("dashboard-links", &candidate)
            .await
            .map_err(|e| Error(format!("cannot read the link key: {e}")))
    }

    /// Sends typed webhooks into this service's store (which wakes its worker).
    pub fn sender(&self) -> Sender {
        Sender::new(Arc::clone(&self.store), self.worker.metrics())
    }

    /// The store, for reading what happened (events, deliveries, attempts).
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Serves `app` plus herald's API on `listener` and runs the worker until `shutdown`
    /// completes; then stops accepting, stops claiming, and lets in-flight deliveries finish
    /// within the worker's grace period.
    pub async fn serve(
        self,
        app: herald::App,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let event_types = event_types::EventTypes::new(app.declared()).map_err(Error)?;
        let links = link::Links::new(self.link_key().await?.as_bytes());
        let state = state::AppState::new(
            Arc::clone(&self.store),
            Arc::new(event_types),
            auth::Credentials::new(self.admin_token.as_deref(), Arc::clone(&self.store), links),
            Arc::new(self.policy),
            self.attempt_timeout,
            self.worker.metrics(),
        );
        let built = app
            .routes(ops::routes(state.clone()))
            .routes(api::routes(state))
            .build()
            .map_err(|e| Error(format!("the app is not consistent: {e}")))?;

        replay::resume(&self.store)
            .await
            .map_err(|e| Error(format!("cannot resume the replays: {e}")))?;
        let (stop, stopped) = watch::channel(false);
        let retention = tokio::spawn(retention::run(
            Arc::clone(&self.store),
            self.retention,
            stopped.clone(),
        ));
        let worker = tokio::spawn(self.worker.run(stopped));
        let served = axum::serve(
            listener,
            built
                .router
                .merge(dashboard::routes())
                .merge(api::unknown()),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error(format!("the server failed: {e}")));
        let _ = stop.send(true);
        let _ = worker.await;
        let _ = retention.await;
        served
    }
}

#[cfg(test)]
mod tests {
    use super::{Config, masked_url};

    #[test]
    fn passwords_and_tokens_stay_out_of_messages_and_debug_output() {
        assert_eq!(
            masked_url("postgres://herald:S3cretPW@db:5432/herald"),
            "postgres://herald:****@db:5432/herald"
        );
        assert_eq!(masked_url("sqlite://herald.db"), "sqlite://herald.db");
        let config = Config::new("postgres://herald:S3cretPW@db/herald", "adm-T0ken");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("S3cretPW") && !shown.contains("adm-T0ken"),
            "{shown}"
        );
        assert!(shown.contains("herald:****@db"), "{shown}");
    }
}
