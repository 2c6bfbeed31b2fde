//! The HTTP side of the case system (axum): the edge's package intake, the
//! operators' server-rendered review UI, exports and the public lookup.
//!
//! Every route is listed in [`access::ROUTES`] with who may use it; one
//! middleware ([`guard`]) enforces that table, resolves the session cookie
//! and checks the CSRF token of every staff POST before a handler runs.
//! Pages are rendered on the server with `maud` (escaped by default); the
//! only script is a small keyboard-shortcut file, and the Content Security
//! Policy allows nothing inline.

pub mod access;
pub use files::OPENAPI;
mod charts;
pub(crate) mod files;
mod html;
mod pages;

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{LoginLimiter, Session};
use crate::ingest::{ingest, IngestRequest};
use crate::store::Store;
use access::Access;

/// Packages larger than this are refused before they are read.
pub const MAX_PACKAGE_BYTES: usize = 512 << 20;
/// Staff forms are small.
const MAX_FORM_BYTES: usize = 64 << 10;

pub const SESSION_COOKIE: &str = "vigil_session";
pub const LOGIN_CSRF_COOKIE: &str = "vigil_login_csrf";

/// How the UI is served.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Mark cookies `Secure` (serve behind TLS in production).
    pub secure_cookies: bool,
    /// UTC offset the UI shows times in (`+07:00` for Vietnam).
    pub utc_offset: String,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            utc_offset: "+07:00".into(),
        }
    }
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub limiter: LoginLimiter,
    pub options: WebOptions,
}

/// The cookie token of the request's session, for logout.
#[derive(Debug, Clone)]
pub(crate) struct SessionToken(pub String);

pub fn router(store: Store) -> Router {
    router_with(App {
        store,
        limiter: LoginLimiter::default(),
        options: WebOptions::default(),
    })
}

pub fn router_with(app: App) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lookup", get(pages::lookup))
        .route("/public/events/{id}/sheet", get(files::public_sheet))
        .route("/static/{file}", get(files::static_file))
        .route("/api/v1/openapi.json", get(files::openapi))
        .route(
            "/api/v1/packages",
            post(intake).layer(axum::extract::DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route("/queue", get(pages::queue))
        .route("/events/{id}", get(pages::event))
        .route("/events/{id}/files/{*name}", get(files::event_file))
        .route("/events/{id}/plate", post(pages::edit_plate))
        .route("/events/{id}/assign", post(pages::assign))
        .route("/events/{id}/confirm", post(pages::confirm))
        .route("/events/{id}/dismiss", post(pages::dismiss))
        .route("/events/{id}/downgrade", post(pages::downgrade))
        .route("/events/{id}/agency-notified", post(pages::agency_notified))
        .route("/events/{id}/bundle", get(files::bundle))
        .route("/approvals", get(pages::approvals))
        .route("/decisions/{id}/approve", post(pages::approve))
        .route("/decisions/{id}/reject", post(pages::reject))
        .route("/exports/decisions.csv", get(files::decisions_csv))
        .route("/dashboard", get(pages::dashboard))
        .route("/audit", get(pages::audit))
        .route("/admin/users", get(pages::users).post(pages::add_user))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// The client's address, for the login rate limit and the audit log.
pub(crate) fn client_of(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string())
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Enforces [`access::ROUTES`]: session, role and CSRF token.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(rule) = matched.and_then(|p| access::rule_for(method.as_str(), &p)) else {
        return html::problem(StatusCode::NOT_FOUND, "Not found", "No such page.", None);
    };
    let roles = match rule.access {
        Access::Public | Access::Device => return next.run(req).await,
        Access::Roles(roles) => roles,
    };
    let token = cookie(req.headers(), SESSION_COOKIE);
    let session = match &token {
        Some(t) => match app.store.session(t).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return html::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The case store cannot be read now; try again.",
                    None,
                );
            }
        },
        None => None,
    };
    let (Some(session), Some(token)) = (session, token) else {
        if method == Method::GET {
            let next_path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let to = format!(
                "/login?{}",
                serde_urlencoded::to_string([("next", next_path)]).unwrap_or_default()
            );
            return Redirect::to(&to).into_response();
        }
        return html::problem(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "Log in first.",
            None,
        );
    };
    if !roles.contains(&session.role) {
        return html::problem(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("The {} role may not use this page.", session.role),
            Some(&session),
        );
    }
    let mut req = req;
    if method == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return html::problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Form too large",
                    &format!("Forms are limited to {} KiB.", MAX_FORM_BYTES >> 10),
                    Some(&session),
                )
            }
        };
        if !csrf_ok(&bytes, &session.csrf_token) {
            return html::problem(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form's security token is missing or wrong; reload the page and try again.",
                Some(&session),
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(session);
    req.extensions_mut().insert(SessionToken(token));
    next.run(req).await
}

fn csrf_ok(form: &Bytes, expected: &str) -> bool {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(form)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf"))
        .is_some_and(|(_, v)| same_secret(&v, expected))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; \
         script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    res
}

async fn intake(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match ingest(
        &app.store,
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
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            // 503: the edge keeps the package and retries.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot store now: {e}\n"),
            )
                .into_response()
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    store: Store,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(
        App {
            store,
            limiter: LoginLimiter::default(),
            options: WebOptions::default(),
        },
        listener,
        shutdown,
    )
    .await
}

/// Serves `app` until `shutdown` resolves, with client addresses known.
pub async fn serve_app(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router_with(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Binds `addr` (port 0 picks one) and returns the listener and its address.
pub async fn bind(addr: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// The session a guarded handler runs for.
pub(crate) type Staff = axum::Extension<Session>;
