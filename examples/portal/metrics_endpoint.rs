//! `/metrics` for operators: the portal's step and audit-event metrics
//! ([`kenpo_auth::observe`]) as Prometheus text, on a loopback port of their own — never
//! on the member-facing listener (the durations would tell members what the answer floor
//! hides, SEC-07).
//!
//! `METRICS_ADDR=127.0.0.1:9090 cargo run --example portal --features sqlite,metrics`,
//! then `curl http://127.0.0.1:9090/metrics`. Without the `metrics` feature the library
//! records nothing and the page stays empty.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often the recorder drops what it no longer needs (histogram samples already
/// folded into buckets).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus exporter's settings for the portal's metrics: histogram buckets for
/// the step durations (without them the exporter renders summaries).
pub fn builder() -> Result<PrometheusBuilder, Box<dyn Error>> {
    Ok(PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full(kenpo_auth::observe::STEP_DURATION_SECONDS.to_owned()),
        kenpo_auth::observe::STEP_DURATION_BUCKETS,
    )?)
}

/// The router that answers `GET /metrics` with what `handle` renders.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

/// Installs the Prometheus recorder as the process's global `metrics` recorder and
/// serves `/metrics` on `addr`, which must be a loopback address (port 0 picks a free
/// one). Returns the address it listens on. Call it once, inside the Tokio runtime.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, Box<dyn Error>> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "METRICS_ADDR {addr} is not a loopback address: /metrics is for the operators' \
             own scraper only"
        )
        .into());
    }
    let handle = builder()?.install_recorder()?;
    #[cfg(feature = "metrics")]
    kenpo_auth::observe::describe();
    #[cfg(not(feature = "metrics"))]
    tracing::warn!("built without the `metrics` feature: /metrics stays empty");

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = router(handle);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the /metrics listener stopped");
        }
    });
    Ok(bound)
}
