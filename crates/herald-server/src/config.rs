//! How the service runs: one struct, with defaults that need no tuning, and a builder for the
//! few things an application sets.

use std::path::Path;
use std::sync::Arc;

use herald_delivery::client::ClientConfig;
use herald_delivery::worker::WorkerConfig;
use herald_store::Clock;
use ipnet::IpNet;

use crate::Retention;
use crate::http::HttpLimits;

/// How the service runs. Its `Debug` output masks the admin token and the database password.
///
/// ```
/// use herald_server::Config;
///
/// let config = Config::sqlite("shop.db")
///     .allow_target("127.0.0.0/8".parse().unwrap())
///     .admin_token("change-me");
/// assert_eq!(config.database_url, "sqlite://shop.db");
/// ```
#[derive(Clone)]
pub struct Config {
    /// `sqlite://file.db` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// The admin token of the management API. `None`: the admin tokens stored in the
    /// database; on first start, when there are none, one is made and handed out once by
    /// [`Service::first_admin_token`](crate::Service::first_admin_token).
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
    /// What one HTTP client may hold of [`Service::serve`](crate::Service::serve): timeouts
    /// for slow and idle clients, and the number of connections open at once.
    pub http: HttpLimits,
}

impl Config {
    /// Defaults, with the database at `database_url` (`sqlite://…` or `postgres://…`) and no
    /// admin token configured.
    pub fn new(database_url: &str) -> Config {
        Config {
            database_url: database_url.into(),
            admin_token: None,
            allow_targets: Vec::new(),
            worker: WorkerConfig::new("herald"),
            client: ClientConfig::default(),
            retention: Retention::default(),
            database: herald_store::Limits::default(),
            clock: None,
            http: HttpLimits::default(),
        }
    }

    /// Defaults, with the SQLite database in the file at `path` (created if missing).
    pub fn sqlite(path: impl AsRef<Path>) -> Config {
        Config::new(&format!("sqlite://{}", path.as_ref().display()))
    }

    /// Defaults, with the PostgreSQL database at `url` (`postgres://user@host/db`).
    pub fn postgres(url: &str) -> Config {
        Config::new(url)
    }

    /// Sets the admin token of the management API.
    pub fn admin_token(mut self, token: &str) -> Config {
        self.admin_token = Some(token.into());
        self
    }

    /// Lets deliveries reach `range`, which the SSRF guard refuses by default (private,
    /// loopback and link-local addresses), e.g. `127.0.0.0/8` in development.
    pub fn allow_target(mut self, range: IpNet) -> Config {
        self.allow_targets.push(range);
        self
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
            .field("http", &self.http)
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
        let config =
            Config::postgres("postgres://herald:S3cretPW@db/herald").admin_token("adm-T0ken");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("S3cretPW") && !shown.contains("adm-T0ken"),
            "{shown}"
        );
        assert!(shown.contains("herald:****@db"), "{shown}");
    }

    #[test]
    fn the_builder_names_the_database() {
        assert_eq!(Config::sqlite("shop.db").database_url, "sqlite://shop.db");
        assert_eq!(
            Config::sqlite("/var/lib/shop.db").database_url,
            "sqlite:///var/lib/shop.db"
        );
        let config = Config::sqlite("x.db").allow_target("127.0.0.0/8".parse().unwrap());
        assert_eq!(config.allow_targets.len(), 1);
        assert_eq!(config.admin_token, None);
    }
}
