//! Precedence (defaults < file < environment < flags) and the messages for bad keys.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use super::*;

/// A configuration file in the temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(text: &str) -> TempFile {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("herald-config-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    TempFile(path)
}

fn load(
    file: Option<&TempFile>,
    env: &[(&str, &str)],
    flags: Vec<(&'static str, Value)>,
) -> Result<Loaded, Vec<String>> {
    load_warned(file, env, flags).map(|(loaded, _)| loaded)
}

fn load_warned(
    file: Option<&TempFile>,
    env: &[(&str, &str)],
    flags: Vec<(&'static str, Value)>,
) -> Result<(Loaded, Vec<String>), Vec<String>> {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    Loaded::load(file.map(|f| f.0.as_path()), env, flags)
}

#[test]
fn each_layer_overrides_the_one_before() {
    let toml = file(
        "addr = \"127.0.0.1:9001\"\n\
         database_url = \"sqlite://from-file.db\"\n\
         [delivery]\n\
         lease_seconds = 90\n\
         allow_targets = [\"10.0.0.0/8\"]\n",
    );
    let env = [
        ("HERALD_DATABASE_URL", "postgres://u:secret@db/herald"),
        ("HERALD_DELIVERY__LEASE_SECONDS", "120"),
        ("HERALD_ADMIN_TOKEN", "s3cret-admin-token"),
        ("HERALD_TEST_DATABASE_URL", "not a key: ignored"),
    ];
    let flags = vec![("delivery.lease_seconds", whole(180))];
    let settings = load(Some(&toml), &env, flags).unwrap();
    let (addr, config) = settings.service().unwrap();
    assert_eq!(addr.to_string(), "127.0.0.1:9001", "file over default");
    assert_eq!(
        config.database_url, "postgres://u:secret@db/herald",
        "env over file"
    );
    assert_eq!(
        config.worker.lease,
        Duration::from_secs(180),
        "flag over env"
    );
    assert_eq!(config.allow_targets[0].to_string(), "10.0.0.0/8");
    assert_eq!(config.client.timeout, Duration::from_secs(15), "default");
    assert_eq!(
        config.retention.max_age,
        Some(Duration::from_secs(2_592_000))
    );

    let shown = settings.describe();
    assert!(shown.contains("addr = \"127.0.0.1:9001\""), "{shown}");
    assert!(shown.contains("lease_seconds = 180"), "{shown}");
    assert!(shown.contains("# --lease-seconds"), "{shown}");
    assert!(shown.contains("# HERALD_DATABASE_URL"), "{shown}");
    assert!(shown.contains("postgres://u:****@db/herald"), "{shown}");
    assert!(
        shown.contains("admin_token = \"(set, 18 characters, masked)\""),
        "{shown}"
    );
    assert!(
        !shown.contains("secret@") && !shown.contains("s3cret-admin"),
        "{shown}"
    );
    assert!(shown.contains("[retention]"), "{shown}");
}

#[test]
fn every_bad_key_is_named_with_where_it_came_from() {
    let toml = file(
        "adr = \"typo\"\n\
         [delivery]\n\
         lease_seconds = \"sixty\"\n\
         concurrency = 0\n\
         allow_targets = [\"10.0.0.0/33\"]\n",
    );
    let env = [
        ("HERALD_RETENTION__BATCH", "many"),
        ("HERALD_DATABASE_URL", "mysql://x"),
    ];
    let errors = load(Some(&toml), &env, vec![("addr", text("nowhere"))]).unwrap_err();
    let path = toml.0.display().to_string();
    let expected = [
        format!("{path}: unknown key `adr`; did you mean `addr`?"),
        format!("{path}: `delivery.lease_seconds` = \"sixty\": expected a whole number"),
        "HERALD_RETENTION__BATCH: `retention.batch` = \"many\": expected a whole number".to_owned(),
        "addr (from --addr): \"nowhere\" is not an address".to_owned(),
        "database_url (from HERALD_DATABASE_URL): \"mysql://x\" is neither".to_owned(),
        format!("delivery.allow_targets (from {path}): item 0, \"10.0.0.0/33\""),
        format!("delivery.concurrency (from {path}): 0 is out of range: 1 to 10000"),
    ];
    for wanted in &expected {
        assert!(
            errors.iter().any(|e| e.starts_with(wanted.as_str())),
            "no error starting {wanted:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn the_lease_must_outlast_the_timeout_and_files_must_be_toml() {
    let errors = load(
        None,
        &[
            ("HERALD_DELIVERY__TIMEOUT_SECONDS", "30"),
            ("HERALD_DELIVERY__LEASE_SECONDS", "30"),
        ],
        vec![],
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "delivery.lease_seconds (from HERALD_DELIVERY__LEASE_SECONDS): 30 is out of range: 40 to 3600"
        ]
    );
    let broken = file("addr = ");
    let errors = load(Some(&broken), &[], vec![]).unwrap_err();
    assert!(errors[0].contains("not TOML"), "{errors:?}");
    assert_eq!(errors.len(), 1);
}

#[test]
fn environment_typos_are_reported_like_file_typos() {
    let errors = load(None, &[("HERALD_DELIVERY__TIMEOUT", "5")], vec![]).unwrap_err();
    assert_eq!(
        errors,
        [
            "HERALD_DELIVERY__TIMEOUT: unknown key `delivery.timeout`; did you mean `delivery.timeout_seconds`?"
        ]
    );
    let toml = file("[delivery]\ntimeout = 5\n");
    let errors = load(Some(&toml), &[], vec![]).unwrap_err();
    assert!(
        errors[0]
            .ends_with("unknown key `delivery.timeout`; did you mean `delivery.timeout_seconds`?"),
        "{errors:?}"
    );
    // The client's and the tests' variables share the prefix: ignored, or a warning when one
    // looks like a misspelt key.
    let (_, warnings) = load_warned(
        None,
        &[
            ("HERALD_TOKEN", "hrld_x"),
            ("HERALD_BIN", "target/release/herald"),
            ("HERALD_ADMN_TOKEN", "x"),
        ],
        vec![],
    )
    .unwrap();
    assert_eq!(
        warnings,
        [
            "HERALD_ADMN_TOKEN is not a configuration key and is ignored; did you mean HERALD_ADMIN_TOKEN?"
        ]
    );
}

#[test]
fn text_from_the_environment_is_kept_exactly() {
    let settings = load(
        None,
        &[
            ("HERALD_ADMIN_TOKEN", "0123"),
            ("HERALD_DELIVERY__ALLOW_TARGETS", "127.0.0.0/8, ::1/128"),
        ],
        vec![],
    )
    .unwrap();
    let (_, config) = settings.service().unwrap();
    assert_eq!(
        config.admin_token.as_deref(),
        Some("0123"),
        "not the number 123"
    );
    assert_eq!(config.allow_targets.len(), 2);
}

#[test]
fn every_key_is_documented() {
    let defaults = Figment::from(Serialized::defaults(Settings::default()));
    let keys: Vec<String> = leaves(&defaults).into_keys().collect();
    let mut documented: Vec<String> = DOCS.iter().map(|(path, _)| (*path).to_owned()).collect();
    documented.sort();
    assert_eq!(keys, documented);
}

#[test]
fn database_limits_proxy_and_log_format_are_checked_and_reach_the_service() {
    let errors = load(
        None,
        &[
            ("HERALD_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "0"),
            ("HERALD_DELIVERY__PROXY", "socks5://proxy:1080"),
            ("HERALD_LOG__FORMAT", "xml"),
            ("HERALD_TELEMETRY__OTLP_ENDPOINT", "collector:4318"),
        ],
        vec![],
    )
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("telemetry.otlp_endpoint")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("database.acquire_timeout_seconds"))
    );
    assert!(errors.iter().any(|e| e.starts_with("delivery.proxy")));
    assert!(errors.iter().any(|e| e.starts_with("log.format")));

    let loaded = load(
        None,
        &[
            ("HERALD_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "2"),
            ("HERALD_DATABASE__STATEMENT_TIMEOUT_SECONDS", "10"),
            ("HERALD_DELIVERY__PROXY", "http://user:S3cret@proxy:3128"),
            ("HERALD_LOG__FORMAT", "json"),
            ("HERALD_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ],
        vec![],
    )
    .unwrap();
    assert_eq!(loaded.otlp_endpoint(), Some("http://127.0.0.1:4318"));
    let (_, config) = loaded.service().unwrap();
    assert_eq!(config.database.acquire_timeout, Duration::from_secs(2));
    assert_eq!(config.database.statement_timeout, Duration::from_secs(10));
    assert_eq!(
        config.client.proxy.as_ref().map(url::Url::as_str),
        Some("http://user:S3cret@proxy:3128/")
    );
    assert!(loaded.json_logs());
    // The proxy's password is shown masked, in `herald config` and in Debug output.
    for shown in [loaded.describe(), format!("{config:?}")] {
        assert!(!shown.contains("S3cret"), "{shown}");
    }
}
