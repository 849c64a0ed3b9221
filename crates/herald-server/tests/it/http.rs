//! Clients that hold a connection without finishing with it: one that stops halfway through
//! its request's head, one that keeps a connection open and idle, one that sends its body a
//! little at a time, and more connections than the server takes at once. Each must cost the
//! server a bounded time, and none may keep it from stopping.

use std::time::{Duration, Instant};

use herald_server::HttpLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// herald on a fresh SQLite file, its connections held to `limits`; the serve task and what
/// stops it.
async fn serve(limits: HttpLimits) -> (String, tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    serve_app(limits, herald_example_seed::app()).await
}

/// As [`serve`], serving `app` beside herald's routes.
async fn serve_app(
    limits: HttpLimits,
    app: herald_core::App,
) -> (String, tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!("herald-http-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = herald_server::Config::sqlite(dir.join("herald.db")).admin_token("admin");
    config.http = limits;
    let service = herald_server::Service::open(config, herald_example_seed::app().declared())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        service
            .serve(app, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, served)
}

fn limits(change: impl FnOnce(&mut HttpLimits)) -> HttpLimits {
    let mut limits = HttpLimits::default();
    change(&mut limits);
    limits
}

/// Everything the server sends until it closes the connection, or `None` if it has not closed
/// it within `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

const HEAD: &str = "GET /api/v1/openapi.json HTTP/1.1\r\nhost: herald\r\n\r\n";

#[tokio::test]
async fn a_client_that_stops_halfway_through_its_request_head_is_disconnected() {
    let (addr, _stop, _served) = serve(limits(|l| l.header_timeout = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: her")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        answer.is_some(),
        "the connection is still open 10 s after a header timeout of 1 s"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (addr, _stop, _served) = serve(limits(|l| l.header_timeout = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(HEAD.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the idle connection is closed within 10 s");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request before it was answered: {}",
        &answer[..answer.len().min(200)]
    );
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_is_answered_408_as_a_problem() {
    let (addr, _stop, _served) =
        serve(limits(|l| l.request_timeout = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/tenants HTTP/1.1\r\nhost: herald\r\nauthorization: Bearer admin\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\": ",
        )
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("an answer within 10 s of a request timeout of 1 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("application/problem+json"),
        "a problem: {answer}"
    );
    assert!(answer.contains("within 1 s"), "says why: {answer}");
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let (addr, _stop, _served) = serve(limits(|l| l.max_connections = 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // Served (so surely accepted) and then kept open, idle.
        stream.write_all(HEAD.as_bytes()).await.unwrap();
        let mut buffer = [0u8; 64];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let third = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream.write_all(HEAD.as_bytes()).await.unwrap();
            let mut buffer = [0u8; 64];
            let n = stream.read(&mut buffer).await.unwrap();
            String::from_utf8_lossy(&buffer[..n]).into_owned()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection is served while two are open and the limit is 2"
    );
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the third connection is served once one of the two closes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn any_connection_limit_is_taken() {
    for max in [0, usize::MAX] {
        let (addr, _stop, _served) = serve(limits(|l| l.max_connections = max)).await;
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(HEAD.as_bytes()).await.unwrap();
        let mut buffer = [0u8; 64];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(
            buffer[..n].starts_with(b"HTTP/1.1 200"),
            "max_connections {max}"
        );
    }
}

#[tokio::test]
async fn a_stop_does_not_wait_for_a_client_that_holds_a_request_open() {
    let (addr, stop, served) = serve(limits(|l| {
        l.header_timeout = Duration::from_secs(600);
        l.request_timeout = Duration::from_secs(600);
        l.shutdown_timeout = Duration::from_secs(1);
    }))
    .await;
    // One client halfway through a head, one halfway through a body.
    let mut head = TcpStream::connect(&addr).await.unwrap();
    head.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: her")
        .await
        .unwrap();
    let mut body = TcpStream::connect(&addr).await.unwrap();
    body.write_all(
        b"POST /api/v1/tenants HTTP/1.1\r\nhost: herald\r\nauthorization: Bearer admin\r\n\
          content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\": ",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("herald stops within 15 s with a shutdown timeout of 1 s and the worker's grace of 10 s")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}; nothing was in flight to wait for beyond the 1 s shutdown timeout",
        started.elapsed()
    );
    // Both were closed, not left open.
    assert!(
        until_closed(&mut head, Duration::from_secs(1))
            .await
            .is_some()
    );
    assert!(
        until_closed(&mut body, Duration::from_secs(1))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn an_http2_connection_that_sends_nothing_is_not_held() {
    let (addr, _stop, _served) = serve(limits(|l| l.header_timeout = Duration::from_secs(1))).await;
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then nothing.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    assert!(
        until_closed(&mut stream, Duration::from_secs(10))
            .await
            .is_some(),
        "an idle HTTP/2 connection is still open 10 s after a header timeout of 1 s"
    );
}

#[tokio::test]
async fn an_apps_upgraded_connection_still_works() {
    // The app served beside herald's routes may upgrade its connections (a WebSocket, say):
    // here to a protocol that echoes.
    async fn echo(mut request: axum::extract::Request) -> axum::response::Response {
        tokio::spawn(async move {
            let upgraded = hyper::upgrade::on(&mut request).await.unwrap();
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buffer = [0u8; 64];
            while let Ok(n @ 1..) = io.read(&mut buffer).await {
                if io.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
        axum::response::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(axum::body::Body::empty())
            .unwrap()
    }
    let app = herald_example_seed::app()
        .routes(utoipa_axum::router::OpenApiRouter::new().route("/echo", axum::routing::get(echo)));
    let (addr, _stop, _served) = serve_app(HttpLimits::default(), app).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nhost: herald\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    stream.write_all(b"hello").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buffer[..n], b"hello");
}
