//! The service: opened once with the app's declarations, it hands out what an application
//! needs (a [`Sender`], herald's [`Router`], the worker as a [`Running`] handle) or serves it
//! all on a listener in one call, as the `herald` binary does.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use herald_core::{App, Docs, Webhooks};
use herald_delivery::client::{Client, ClientConfig};
use herald_delivery::metrics::Metrics;
use herald_delivery::worker::Worker;
use herald_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::database::Database;
use crate::error::{Error, ErrorKind};
use crate::event_types::EventTypes;
use crate::http::HttpLimits;
use crate::retention::Retention;
use crate::sender::Sender;
use crate::{api, auth, dashboard, link, ops, replay, retention, state};

/// Where herald's own document and its Swagger UI are served, under its router.
const API_DOCUMENT: &str = "/api/v1/openapi.json";
const API_DOCS: &str = "/api/v1/docs";

/// An opened store with its worker, for the webhooks of one app.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use herald_server::{Config, Service};
///
/// let app = herald_example_seed::app();
/// let herald = Service::open(Config::sqlite("shop.db"), app.declared()).await?;
/// let sender = herald.sender(); // for the app's handlers
/// let router = app.build()?.router.nest("/herald", herald.router().await?);
/// let running = herald.start().await?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, router).await?;
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Service {
    database: Database,
    store: Arc<dyn Store>,
    /// Taken by [`Service::start`].
    worker: Mutex<Option<Worker>>,
    metrics: Arc<Metrics>,
    policy: herald_delivery::target::TargetPolicy,
    admin_token: Option<String>,
    first_admin_token: Option<String>,
    attempt_timeout: std::time::Duration,
    retention: Retention,
    webhooks: Webhooks,
    event_types: Arc<EventTypes>,
    declared: Arc<BTreeSet<String>>,
    http: HttpLimits,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("webhooks", &self.declared)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the store (running migrations) for the app that declares `webhooks`
    /// ([`App::declared`]), and prepares the worker. Only these webhooks can be sent, and the
    /// management API validates events against their schemas.
    pub async fn open(config: Config, webhooks: &Webhooks) -> Result<Service, Error> {
        let event_types =
            EventTypes::new(webhooks).map_err(|e| Error::new(ErrorKind::Config, e))?;
        let database =
            Database::open(&config.database_url, config.clock.clone(), config.database).await?;
        let store = database.store();
        let mut policy = config.client.policy.clone();
        for range in &config.allow_targets {
            policy = policy.allow(*range);
        }
        let client = Client::new(ClientConfig {
            policy: policy.clone(),
            ..config.client.clone()
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot build the HTTP client: {e}"),
            )
        })?;
        let worker = Worker::new(Arc::clone(&store) as _, client, config.worker.clone());
        let first_admin_token = match config.admin_token {
            Some(_) => None,
            None => first_admin_token(&*store).await?,
        };
        Ok(Service {
            database,
            metrics: worker.metrics(),
            store,
            worker: Mutex::new(Some(worker)),
            policy,
            admin_token: config.admin_token,
            first_admin_token,
            attempt_timeout: config.client.timeout,
            retention: config.retention,
            declared: Arc::new(webhooks.iter().map(|d| d.name().to_owned()).collect()),
            webhooks: webhooks.clone(),
            event_types: Arc::new(event_types),
            http: config.http,
        })
    }

    /// The admin token made at this start because none was configured or stored yet; show
    /// it to the operator now: only its hash is kept.
    pub fn first_admin_token(&self) -> Option<&str> {
        self.first_admin_token.as_deref()
    }

    /// Sends typed webhooks into this service's store (which wakes its worker).
    pub fn sender(&self) -> Sender {
        Sender::new(
            self.database.clone(),
            Arc::clone(&self.store),
            Arc::clone(&self.metrics),
            Arc::clone(&self.event_types),
        )
    }

    /// The store, for reading what happened (events, deliveries, attempts) and for managing
    /// tenants and endpoints from Rust.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The SQLite pool the store writes through, when the service runs on SQLite: begin your
    /// transactions on it to store events in them with [`Sender::send_in`]. Its one
    /// connection holds SQLite's write lock for as long as a transaction is open, so keep
    /// them short.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.database {
            Database::Sqlite(store) => Some(store.pool()),
            #[cfg(feature = "postgres")]
            _ => None,
        }
    }

    /// The PostgreSQL pool the store writes through, when the service runs on PostgreSQL:
    /// begin your transactions on it to store events in them with [`Sender::send_in`].
    #[cfg(feature = "postgres")]
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.database {
            Database::Postgres(store) => Some(store.pool()),
            _ => None,
        }
    }

    /// herald's routes, to serve at the root or nest under a prefix
    /// (`app_router.nest("/herald", herald.router().await?)`): the management API under
    /// `/api/v1`, its own OpenAPI document at `/api/v1/openapi.json` with Swagger UI at
    /// `/api/v1/docs`, the dashboard at `/dashboard`, and `/health`, `/ready`, `/metrics`.
    pub async fn router(&self) -> Result<Router, Error> {
        let links = link::Links::new(self.link_key().await?.as_bytes());
        let state = state::AppState::new(
            Arc::clone(&self.store),
            Arc::clone(&self.event_types),
            auth::Credentials::new(self.admin_token.as_deref(), Arc::clone(&self.store), links),
            Arc::new(self.policy.clone()),
            self.attempt_timeout,
            Arc::clone(&self.metrics),
        );
        let built = api_app(&self.webhooks)
            .routes(ops::routes(state.clone()))
            .routes(api::routes(state))
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("herald's API: {e}")))?;
        Ok(built
            .router
            .merge(dashboard::routes())
            .merge(api::unknown()))
    }

    /// Starts the delivery worker, replays left running by an earlier process, and retention,
    /// as tasks on the current runtime; [`Running::shutdown`] stops them. Once per service.
    pub async fn start(&self) -> Result<Running, Error> {
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| Error::new(ErrorKind::Server, "the service is already started"))?;
        replay::resume(&self.store)
            .await
            .map_err(|e| Error::store("cannot resume the replays", e))?;
        let (stop, stopped) = watch::channel(false);
        let retention = tokio::spawn(retention::run(
            Arc::clone(&self.store),
            self.retention.clone(),
            stopped.clone(),
        ));
        let worker = tokio::spawn(worker.run(stopped));
        Ok(Running {
            stop,
            tasks: vec![worker, retention],
        })
    }

    /// Serves `app` and herald's routes (at the root) on `listener`, and runs the worker,
    /// until `shutdown` completes; then, at once, stops accepting, stops claiming, lets
    /// requests in progress finish within [`HttpLimits::shutdown_timeout`] and in-flight
    /// deliveries within the worker's grace period. Every connection is held to the
    /// configuration's [`HttpLimits`]. `app` must declare the webhooks the service was opened
    /// with.
    pub async fn serve(
        self,
        app: App,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let declared: BTreeSet<String> =
            app.declared().iter().map(|d| d.name().to_owned()).collect();
        if declared != *self.declared {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the app declares {declared:?}, and the service was opened with {:?}: open \
                     it with `app.declared()`",
                    self.declared
                ),
            ));
        }
        let app = app.build().map_err(|e| {
            Error::new(ErrorKind::Config, format!("the app is not consistent: {e}"))
        })?;
        let router = app.router.merge(self.router().await?);
        let running = self.start().await?;
        // The worker stops when the listener does, not after the last connection closes.
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let http = crate::http::serve(listener, router, &self.http, async move {
            shutdown.await;
            let _ = stopping.send(());
        });
        let worker = async move {
            let _ = stopped.await;
            running.shutdown().await;
        };
        tokio::join!(http, worker);
        Ok(())
    }

    /// The key that signs dashboard links, made once and shared through the database.
    async fn link_key(&self) -> Result<String, Error> {
        let (candidate, _) = auth::new_token(None, "link key").map_err(|p| {
            Error::new(
                ErrorKind::Server,
                format!("cannot make the link key: {}", p.detail),
            )
        })?;
        self.store
            .server_key("dashboard-links", &candidate)
            .await
            .map_err(|e| Error::store("cannot read the link key", e))
    }
}

/// The delivery worker, replays and retention, running; stop them with
/// [`shutdown`](Running::shutdown). Dropping the handle asks them to stop without waiting.
#[derive(Debug)]
#[must_use = "dropping the handle stops the worker: keep it, and call `shutdown` at the end"]
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops claiming, lets in-flight deliveries finish within the worker's grace period
    /// (handing the rest back to the queue), and returns when everything has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// herald's own application: the declared webhooks (their payloads are what events carry) and,
/// added by the caller, the API's routes; documented at [`API_DOCUMENT`].
fn api_app(webhooks: &Webhooks) -> App {
    let mut doc = utoipa::openapi::OpenApi::default();
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("herald")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "herald's management API: tenants, their endpoints and tokens, events, the \
             delivery log, replays, and the probes an operator asks. The webhooks it delivers \
             are listed under `webhooks`: the app's, and herald's own operational webhooks \
             (tag `operational`), which endpoints of the tenant `_operator` receive for the \
             whole installation.",
        ))
        .build();
    App::with_openapi(doc)
        .webhooks(webhooks.clone().merge(crate::operational::webhooks()))
        .docs(
            Docs::default()
                .openapi_url(Some(API_DOCUMENT))
                .docs_url(Some(API_DOCS))
                .redoc_url(None)
                // The webhooks' AsyncAPI document is the app's, beside its OpenAPI document.
                .asyncapi_url(None),
        )
}

/// herald's management API document for an app that declares `webhooks`, as
/// [`Service::router`] serves it at `/api/v1/openapi.json` (`herald openapi --api`).
pub fn api_document(webhooks: &Webhooks) -> Result<utoipa::openapi::OpenApi, Error> {
    let event_types = EventTypes::new(webhooks).map_err(|e| Error::new(ErrorKind::Config, e))?;
    let api = utoipa_axum::router::OpenApiRouter::with_openapi(api::openapi(&event_types));
    let ops = utoipa_axum::router::OpenApiRouter::with_openapi(ops::openapi());
    api_app(webhooks)
        .routes(ops)
        .routes(api)
        .build()
        .map(|built| built.openapi)
        .map_err(|e| Error::new(ErrorKind::Config, format!("herald's API: {e}")))
}

/// Makes and stores (hashed) an admin token when the store has none that is unrevoked.
async fn first_admin_token(store: &dyn Store) -> Result<Option<String>, Error> {
    let stored = store
        .tokens(None)
        .await
        .map_err(|e| Error::store("cannot read the admin tokens", e))?;
    if stored.iter().any(|t| t.revoked_at.is_none()) {
        return Ok(None);
    }
    let (token, new) = auth::new_token(None, "admin (made at first start)").map_err(|p| {
        Error::new(
            ErrorKind::Server,
            format!("cannot make an admin token: {}", p.detail),
        )
    })?;
    store
        .create_token(new)
        .await
        .map_err(|e| Error::store("cannot store the admin token", e))?;
    Ok(Some(token))
}
