//! Serving the portal over TCP with a deadline for each request's headers.
//!
//! `axum::serve` sets no timer, so hyper's header timeout never fires: an idle
//! connection, or one that trickles a header a byte at a time (slowloris), stays open for
//! ever, and a few hundred of them exhaust the server's sockets. Here every connection
//! gets [`HEADER_READ_TIMEOUT`] (10 s by default, `HEADER_TIMEOUT_SECS` in `main`) to
//! deliver each request's complete headers — the first request, and each later one on a
//! kept-alive connection. A connection that does not is closed. Bodies are small and
//! capped (16 KiB, read in the session layer). Behind a reverse proxy the proxy's own
//! timeouts apply first.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long a client has to send a request's headers, on a new connection and between
/// requests on a kept-alive one.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The router, told which peer each request came from (for the rate limit and the
/// library's per-requester budgets), as `axum::serve` with connect info does.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl<B> tower::Service<Request<B>> for WithPeer
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<axum::extract::Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.call(req)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, closing every connection
/// that takes longer than `header_timeout` to send a request's headers.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(WithPeer {
            router: router.clone(),
            peer,
        });
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            if let Err(e) = builder.serve_connection(TokioIo::new(tcp), service).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}
