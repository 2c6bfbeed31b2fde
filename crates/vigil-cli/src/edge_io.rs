//! The edge's network I/O on one small tokio runtime, beside the analysis
//! thread that does the CPU work.
//!
//! `vigil run` spends its cores on decoding and inference; the network side
//! (evidence uploads, Prometheus scrapes, health checks) waits almost all
//! the time and must never hold up a frame. One runtime with a single
//! worker thread serves it: the uploader's requests and the metrics
//! connections are multiplexed on that thread instead of a thread each, and
//! the few blocking reads a scrape needs (the spool's directory, the kernel
//! clock) run on tokio's blocking pool. The runtime lives as long as the
//! [`EdgeIo`] value; dropping it stops every server and task.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use vigil_evidence::Spool;
use vigil_pipeline::Metrics;

/// The runtime that serves the edge's network endpoints.
pub struct EdgeIo {
    runtime: tokio::runtime::Runtime,
}

/// What `/metrics` and `/healthz` read at each request.
pub struct MetricsState {
    pub metrics: Arc<Metrics>,
    /// The evidence spool, whose pending packages are counted per scrape.
    pub spool: Option<Arc<Mutex<Spool>>>,
    /// Every camera replays a recording: the wall clock does not matter.
    pub replay: bool,
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

impl EdgeIo {
    pub fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("edge-io")
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the edge I/O runtime")?;
        Ok(Self { runtime })
    }

    /// Runs `future` as a task on the I/O runtime.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Waits, from outside the runtime, for `future` (a task's handle, say).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Serves `/metrics` (OpenMetrics text) and `/healthz` (200 `ok`, or 503
    /// with the reason) on `addr`; returns the address bound (port 0 picks
    /// one).
    pub fn serve_metrics(&self, addr: &str, state: MetricsState) -> anyhow::Result<SocketAddr> {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let local = listener
            .local_addr()
            .context("the metrics listener has no address")?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, TEXT)],
                    "try /metrics or /healthz\n",
                )
            })
            .with_state(Arc::new(state));
        self.runtime.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("metrics server stopped: {e}");
            }
        });
        Ok(local)
    }
}

async fn metrics(State(state): State<Arc<MetricsState>>) -> impl IntoResponse {
    let gauges = Arc::clone(&state);
    // Directory listing and a system call: off the I/O thread.
    let body = tokio::task::spawn_blocking(move || {
        if let Some(spool) = &gauges.spool {
            let pending = crate::run_cmd::count(spool, false);
            gauges.metrics.spool_pending.set(pending as i64);
        }
        let synced = gauges.replay || crate::run_cmd::kernel_clock_synced();
        gauges.metrics.clock_synced.set(i64::from(synced));
        gauges.metrics.encode()
    })
    .await;
    match body {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, TEXT)],
            format!("metrics unavailable: {e}\n"),
        ),
    }
}

async fn healthz(State(state): State<Arc<MetricsState>>) -> impl IntoResponse {
    match state.metrics.unhealthy() {
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT)],
            "ok\n".to_owned(),
        ),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            format!("{why}\n"),
        ),
    }
}
