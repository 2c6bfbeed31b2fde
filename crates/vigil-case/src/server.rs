//! The HTTP API (axum). Today: package intake and health; the operator UI
//! and review API join it (issue 7).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::ingest::{ingest, IngestRequest};
use crate::store::Store;

/// Packages larger than this are refused before they are read.
pub const MAX_PACKAGE_BYTES: usize = 512 << 20;

pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v1/packages", post(intake))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
        .with_state(store)
}

async fn intake(
    State(store): State<Store>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match ingest(
        &store,
        IngestRequest {
            authorization,
            path,
            body: &body,
        },
    )
    .await
    {
        Ok(outcome) => (
            StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            outcome.reason + "\n",
        ),
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            // 503: the edge keeps the package and retries.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot store now: {e}\n"),
            )
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    store: Store,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` (port 0 picks one) and returns the listener and its address.
pub async fn bind(addr: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
