//! Proxies and the SSRF guard, as a table: the environment's proxy variables are never used,
//! and a configured proxy receives only requests whose target the guard allows.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_delivery::client::{Client, ClientConfig, Request};
use herald_signature::{Secret, Signer};

/// An HTTP proxy that answers 200 to everything and records the targets it was asked for.
async fn proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&asked);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let log = Arc::clone(&log);
        async move { log.lock().unwrap().push(uri.to_string()) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, asked)
}

async fn send(client: &Client, url: &str) -> Result<u16, String> {
    let secrets = [Signer::from(Secret::generate().unwrap())];
    let response = client
        .send(Request {
            url,
            event_id: "evt_1",
            payload: "{}",
            secrets: &secrets,
            headers: &BTreeMap::new(),
        })
        .await;
    response
        .status
        .ok_or_else(|| response.error.unwrap_or_default())
}

fn client(proxy: Option<&str>) -> Client {
    Client::new(ClientConfig {
        timeout: Duration::from_secs(2),
        proxy: proxy.map(|p| p.parse().unwrap()),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// Set in the copy of this test that runs with the proxy variables set.
const CHILD: &str = "HERALD_TEST_PROXY_FROM_ENVIRONMENT";

#[tokio::test]
async fn a_proxy_never_carries_a_request_the_guard_refuses() {
    if let Ok(port) = std::env::var(CHILD) {
        // With HTTP_PROXY & co. pointing at the parent's proxy: every target is refused here,
        // which it would not be if the request went to the proxy.
        for target in [
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{port}/"),
        ] {
            let error = send(&client(None), &target).await.unwrap_err();
            assert!(error.contains("target refused"), "{target}: {error}");
        }
        // Not resolvable here (or a link-local address on a cloud VM): not sent either way.
        let metadata = send(&client(None), "http://metadata.google.internal/x").await;
        assert!(metadata.is_err(), "{metadata:?}");
        return;
    }
    let (port, asked) = proxy().await;
    let at = format!("http://127.0.0.1:{port}");
    // The environment is the process's: set it in a copy of this test, not in this one.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.args([
        "--exact",
        "a_proxy_never_carries_a_request_the_guard_refuses",
    ]);
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "all_proxy",
    ] {
        child.env(name, &at);
    }
    let ran = child
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env(CHILD, port.to_string())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
    assert!(
        asked.lock().unwrap().is_empty(),
        "the environment's proxy was used"
    );

    let by_address = client(Some(&at));
    let by_name = client(Some(&format!("http://localhost:{port}")));
    let public = "http://93.184.216.34/hook";
    // (client, target, whether it reaches the proxy)
    let cases: &[(&str, &Client, &str, bool)] = &[
        ("by address", &by_address, "http://localhost:1/", false),
        ("by address", &by_address, "http://127.0.0.1:1/", false),
        ("by address", &by_address, "http://[::1]:1/", false),
        ("by address", &by_address, "http://10.0.0.1/", false),
        (
            "by address",
            &by_address,
            "http://169.254.169.254/latest/",
            false,
        ),
        (
            "by address",
            &by_address,
            "http://[::ffff:127.0.0.1]/",
            false,
        ),
        (
            "by address",
            &by_address,
            "http://metadata.google.internal/x",
            false,
        ),
        ("by address", &by_address, public, true),
        ("by name", &by_name, "http://localhost:1/", false),
        ("by name", &by_name, public, true),
    ];
    for (proxy, client, target, through) in cases {
        let before = asked.lock().unwrap().len();
        let result = send(client, target).await;
        let reached = asked.lock().unwrap().len() > before;
        assert_eq!(reached, *through, "proxy {proxy}, {target}: {result:?}");
        if *through {
            assert_eq!(result, Ok(200), "proxy {proxy}, {target}");
        } else {
            let error = result.unwrap_err();
            assert!(
                error.contains("target refused"),
                "proxy {proxy}, {target}: {error}"
            );
        }
    }
    assert_eq!(asked.lock().unwrap().first().unwrap(), public);
}

/// Set in the copy of the next test that runs in namespaces of its own.
const DNS_CHILD: &str = "HERALD_TEST_DNS_NEVER_ANSWERS";

/// With a proxy, herald resolves a target itself before handing it over. A name server that
/// never answers must cost the attempt its timeout, not the resolver's own (10 s and more),
/// or the attempt outlives its lease's margin and another process sends the delivery too.
#[tokio::test]
async fn a_name_server_that_never_answers_costs_a_proxied_attempt_its_timeout_and_no_more() {
    if std::env::var(DNS_CHILD).is_ok() {
        // In a network of our own whose name server (127.0.0.1:53) reads and never answers.
        let dns = tokio::net::UdpSocket::bind("127.0.0.1:53").await.unwrap();
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while dns.recv_from(&mut buffer).await.is_ok() {}
        });
        let (port, asked) = proxy().await;
        let client = Client::new(ClientConfig {
            timeout: Duration::from_secs(1),
            proxy: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
            ..ClientConfig::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let result = send(&client, "http://never-answered.example.com/hook").await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "the attempt took {took:?} with a timeout of 1 s: {result:?}"
        );
        let error = result.unwrap_err();
        assert!(error.contains("timed out"), "{error}");
        assert!(
            asked.lock().unwrap().is_empty(),
            "nothing reached the proxy"
        );
        return;
    }
    // A user and mount namespace (to put another resolv.conf in place) and a network namespace
    // (its own 127.0.0.1), where this test runs again.
    let dir = std::env::temp_dir().join(format!("herald-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n",
    )
    .unwrap();
    let script = "ip link set lo up && mount --bind \"$1\" /etc/resolv.conf && \
                  exec \"$0\" --exact \"$2\" --nocapture";
    let ran = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "--net",
            "sh",
            "-c",
            script,
        ])
        .arg(std::env::current_exe().unwrap())
        .arg(&resolv)
        .arg("a_name_server_that_never_answers_costs_a_proxied_attempt_its_timeout_and_no_more")
        .env(DNS_CHILD, "1")
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let ran = match ran {
        Ok(ran) if ran.status.success() || !ran.stderr.starts_with(b"unshare:") => ran,
        // No namespaces here (a container that forbids them): nothing to run this in.
        other => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run this test: unshare failed: {other:?}"
            );
            eprintln!("skipped: cannot make namespaces ({other:?})");
            return;
        }
    };
    assert!(
        ran.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
}
