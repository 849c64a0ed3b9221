//! The `herald` binary as a user runs it: a real process, real ports, real output.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// A fresh SQLite file for one server.
fn database_url() -> String {
    let dir = std::env::temp_dir().join(format!("herald-cli-{}-{}", std::process::id(), line!()));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}/herald.db", dir.display())
}

/// A `herald serve` child process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start() -> Server {
        let mut command = Command::new(HERALD);
        command.args(serve_args().iter());
        Server::spawn(command)
    }

    /// Runs `command` (a `herald serve` on port 0) and waits for its address.
    fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("herald listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("herald prints its address within 30 s");
        Server { child, base }
    }
}

/// `serve` on a free port with a fresh SQLite file.
fn serve_args() -> [String; 5] {
    [
        "serve".into(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--database-url".into(),
        database_url(),
    ]
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url` and return the response. reqwest is built with rustls and no default crypto
/// provider (herald installs ring itself), so a test process installs it too.
async fn get(url: &str) -> reqwest::Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(url).await.unwrap()
}

#[test]
fn openapi_prints_the_default_apps_document() {
    let output = Command::new(HERALD).arg("openapi").output().unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let document = herald_example_seed::app().build().unwrap().openapi;
    assert_eq!(printed, serde_json::to_value(&document).unwrap());
    assert!(printed["paths"]["/users/"]["get"].is_object());
    assert!(printed["webhooks"]["new-subscription"]["post"].is_object());
    let herald_paths: Vec<&String> = printed["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|path| path.starts_with("/api/"))
        .collect();
    assert!(herald_paths.is_empty(), "{herald_paths:?}");
}

#[test]
fn openapi_api_prints_heralds_own_document() {
    let output = Command::new(HERALD)
        .args(["openapi", "--api"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let document = herald_server::api_document(herald_example_seed::app().declared()).unwrap();
    assert_eq!(printed, serde_json::to_value(&document).unwrap());
    assert_eq!(printed["info"]["title"], "herald");
    assert!(printed["paths"]["/api/v1/tenants/{tenant}/events"]["post"].is_object());
    assert!(printed["paths"].get("/users/").is_none());
}

#[test]
fn asyncapi_prints_the_document_serve_publishes() {
    let output = Command::new(HERALD).arg("asyncapi").output().unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let document = herald_example_seed::app().build().unwrap().asyncapi;
    assert_eq!(printed, document);
    assert_eq!(printed["asyncapi"], "3.0.0");
    assert!(printed["channels"]["new-subscription"].is_object());
}

#[tokio::test]
async fn serve_answers_the_seed_route_and_the_docs() {
    let server = Server::start();
    let users: serde_json::Value = get(&format!("{}/users/", server.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users, serde_json::json!(["Rick", "Morty"]));
    for path in [
        "/openapi.json",
        "/docs",
        "/redoc",
        "/docs/swagger-ui-bundle.js",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs/swagger-ui-bundle.js",
    ] {
        let status = get(&format!("{}{path}", server.base)).await.status();
        assert_eq!(status, 200, "{path}");
    }
}

#[test]
fn a_bad_address_is_one_line_and_a_failure() {
    let output = Command::new(HERALD)
        .args(["serve", "--addr", "localhost:eighty"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("addr (from --addr): \"localhost:eighty\" is not an address"),
        "{stderr}"
    );
}

#[test]
fn a_taken_port_is_one_line_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(HERALD)
        .args(["serve", "--addr", &addr, "--database-url", &database_url()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("herald: cannot listen on {addr}: ")),
        "{stderr}"
    );
}

#[test]
fn a_database_that_cannot_be_opened_is_a_failure_never_announced_as_listening() {
    let output = Command::new(HERALD)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            "sqlite:///nonexistent-herald-dir/herald.db",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|line| line.starts_with("herald: cannot open sqlite://")),
        "{stderr}"
    );
}

#[test]
fn a_database_password_is_never_printed() {
    // Nothing listens on port 1: opening fails, and the message names the database.
    let url = "postgres://herald:S3cretPW@127.0.0.1:1/herald";
    for args in [
        vec!["serve", "--addr", "127.0.0.1:0", "--database-url", url],
        vec![
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            "mysql://herald:S3cretPW@db/h",
        ],
    ] {
        let output = Command::new(HERALD).args(&args).output().unwrap();
        assert!(!output.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(all.contains("herald:****@"), "{all}");
        assert!(!all.contains("S3cretPW"), "{all}");
    }
}

#[test]
fn logs_carry_no_colour_codes_into_a_pipe_and_are_json_when_asked() {
    for format in ["text", "json"] {
        let mut child = Command::new(HERALD)
            .args(["serve", "--addr", "127.0.0.1:0", "--database-url"])
            .arg(database_url())
            .env("HERALD_LOG__FORMAT", format)
            .env("HERALD_ADMIN_TOKEN", "log-test")
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("delivery worker started") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30));
        let _ = child.kill();
        let _ = child.wait();
        let line = line.expect("the worker's start is logged");
        assert!(
            !line.contains('\u{1b}'),
            "{format}: colour codes in a pipe: {line:?}"
        );
        if format == "json" {
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                parsed["fields"]["message"], "delivery worker started",
                "{line}"
            );
            assert_eq!(parsed["level"], "INFO");
        }
    }
}

#[test]
fn an_unknown_log_format_is_refused_before_anything_starts() {
    let output = Command::new(HERALD)
        .args(["config"])
        .env("HERALD_LOG__FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("log.format"), "{stderr}");
}

#[tokio::test]
async fn a_failed_list_prints_nothing_on_stdout() {
    let server = Server::start();
    let output = Command::new(HERALD)
        .args(["endpoints", "list", "--url", &server.base])
        .args(["--token", "not-a-token", "--tenant", "acme"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "",
        "no table header"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// `herald serve` started by `sh` with `limit` (`ulimit` arguments) in force, its stderr kept.
fn serve_with_ulimit(limit: &str) -> Child {
    let script = format!("ulimit {limit} && exec \"$0\" \"$@\"");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(HERALD)
        .args(serve_args().iter())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The soft and hard limits on open files of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

/// Reads `child`'s stdout until it says it listens; returns the address.
fn listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("herald prints its address").unwrap();
        if let Some(url) = line.strip_prefix("herald listening on ") {
            std::thread::spawn(move || lines.for_each(drop));
            return url.to_owned();
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn serve_raises_its_soft_limit_on_open_files_to_the_hard_one() {
    let hard = open_files_limits(std::process::id()).1;
    let mut child = serve_with_ulimit("-Sn 256");
    listening(&mut child);
    let (soft, now_hard) = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(now_hard, hard);
    assert_eq!(soft, hard, "the soft limit was 256, the hard one {hard}");
}

#[test]
#[cfg(target_os = "linux")]
fn serve_warns_when_the_limit_on_open_files_is_lower_than_its_configuration_can_use() {
    // 600 files against 1,024 connections and 512 deliveries by default.
    let mut child = serve_with_ulimit("-n 600");
    listening(&mut child);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the limit on open files is lower than"),
        "{stderr}"
    );
}

#[test]
#[cfg(unix)]
fn sigterm_stops_serve_though_a_client_is_halfway_through_a_request() {
    use std::io::Write as _;
    let mut command = Command::new(HERALD);
    command
        .args(serve_args().iter())
        .env("HERALD_HTTP__SHUTDOWN_TIMEOUT_SECONDS", "1");
    let mut server = Server::spawn(command);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut client = std::net::TcpStream::connect(&addr).unwrap();
    client
        .write_all(b"GET /docs HTTP/1.1\r\nhost: her")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = exited.expect("herald exits within 20 s of SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited {:?} after SIGTERM, with a shutdown timeout of 1 s",
        started.elapsed()
    );
}
