//! Serving a router on a listener with limits on what one client may hold: how long it may
//! take to send a request's head (and how long a kept-alive connection may sit idle), how long
//! a whole request may take (a body sent a byte at a time), how many connections are open at
//! once, and how long a stop waits for the connections still open.
//!
//! `axum::serve` has none of these: a client that sends half a request line and then nothing
//! holds its connection, its task and a file descriptor for ever, and a stop waits for it, so
//! the process never exits and its worker keeps claiming.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::problem::Problem;

/// What one client may hold of the server; [`Service::serve`](crate::Service::serve) applies
/// them to every connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpLimits {
    /// How long a client may take to send a request's head, and how long a kept-alive
    /// connection may wait for its next request, before it is closed (default 30 s).
    pub header_timeout: Duration,
    /// How long a whole request may take, its body included, before it is answered `408`
    /// (default 60 s).
    pub request_timeout: Duration,
    /// Connections open at once, at least one; more wait to be accepted (default 1,024).
    pub max_connections: usize,
    /// On stop, how long requests in progress may finish before their connections are closed
    /// (default 10 s); the worker stops at the same time.
    pub shutdown_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, lets requests in progress finish for up to `limits.shutdown_timeout`, and
/// closes whatever is still open.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = std::sync::Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then the accept: a connection past the limit waits in the kernel's
        // backlog, holding nothing here.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = std::sync::Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most often: wait for connections to close
                    // rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap the connections that ended, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(
            stream,
            Within {
                inner: router.clone(),
                timeout: limits.request_timeout,
            },
            limits.header_timeout,
            stop.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            open = connections.len(),
            "closing connections still open at the end of the shutdown timeout"
        );
        connections.shutdown().await;
    }
}

/// One HTTP/1 connection (upgrades included, for an app's WebSockets), until it ends or, after
/// `stop`, its request in progress is answered.
///
/// Not HTTP/2: hyper holds an HTTP/2 connection that sends nothing for ever (it has no timeout
/// for an idle one), so a client could take every connection the limit allows and keep them;
/// herald is reached over HTTP/1.1, or through a proxy that terminates TLS and HTTP/2.
async fn connection(
    stream: tokio::net::TcpStream,
    routes: Within,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(
        routes.map_request(|request: Request<hyper::body::Incoming>| request.map(Body::new)),
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let served = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut served = std::pin::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    served.as_mut().graceful_shutdown();
    let _ = served.await;
}

/// The router, answering `408` to a request (its body included) not done within `timeout`.
#[derive(Clone)]
struct Within {
    inner: Router,
    timeout: Duration,
}

impl tower::Service<Request> for Within {
    type Response = Response;
    type Error = Infallible;
    type Future = Timed<<Router as tower::Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Timed {
            inner: self.inner.call(request),
            timeout: self.timeout,
            deadline: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, or `408` at its deadline. The timer is made only if the answer is
    /// not ready at the first poll, and counts from then.
    struct Timed<F> {
        #[pin]
        inner: F,
        timeout: Duration,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Timed<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        let timeout = *this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(too_slow(timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn too_slow(timeout: Duration) -> Response {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "https://herald.rs/problems/request-timeout",
        "Request Timeout",
        format!(
            "the request was not done within {} s (its body arrived too slowly?)",
            timeout.as_secs()
        ),
    )
    .into_response()
}
