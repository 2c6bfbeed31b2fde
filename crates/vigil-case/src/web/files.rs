//! Media, exports and static files.
//!
//! Media are served out of the stored package tar by the name the signed
//! manifest lists, never by a path the request builds, so no request can
//! reach a file outside its own package.

use std::path::Path as FsPath;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use vigil_evidence::manifest::Manifest;

use super::html::{self, store_problem};
use super::{App, Staff};
use crate::audit::AuditEntry;
use crate::review::violation_label;

/// The OpenAPI document of this service, committed beside the crate.
pub const OPENAPI: &str = include_str!("../../openapi.json");

const APP_JS: &str = include_str!("../../static/app.js");
const APP_CSS: &str = include_str!("../../static/app.css");

/// Every file of a stored package, `(path, bytes)`.
pub async fn package_entries(app: &App, locator: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bytes = app
        .store
        .media()
        .get(locator)
        .await
        .map_err(|e| e.to_string())?;
    let name = FsPath::new(locator).to_path_buf();
    tokio::task::spawn_blocking(move || {
        vigil_evidence::package::read_tar(bytes.as_slice(), &name).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("mp4") => "video/mp4",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// One file of one package: the manifest must list it.
async fn package_file(app: &App, id: &str, name: &str) -> Result<Option<Vec<u8>>, String> {
    let Some((manifest, tar)) = app
        .store
        .package_files(id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let manifest: Manifest = serde_json::from_str(&manifest).map_err(|e| e.to_string())?;
    if !manifest.files.iter().any(|f| f.path == name) {
        return Ok(None);
    }
    Ok(package_entries(app, &tar)
        .await?
        .into_iter()
        .find(|(p, _)| p == name)
        .map(|(_, bytes)| bytes))
}

/// A body, or the single byte range asked for (video seeking).
fn ranged(headers: &HeaderMap, name: &str, bytes: Vec<u8>) -> Response {
    let ct = content_type(name);
    let len = bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let start: usize = a.parse().ok()?;
            let end: usize = if b.is_empty() {
                len.checked_sub(1)?
            } else {
                b.parse().ok()?
            };
            (start <= end && end < len).then_some((start, end))
        });
    match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, ct.to_owned()),
                (header::ACCEPT_RANGES, "bytes".to_owned()),
                (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
            ],
            bytes[start..=end].to_vec(),
        )
            .into_response(),
        None => (
            [
                (header::CONTENT_TYPE, ct.to_owned()),
                (header::ACCEPT_RANGES, "bytes".to_owned()),
            ],
            bytes,
        )
            .into_response(),
    }
}

pub async fn event_file(
    State(app): State<App>,
    Extension(session): Staff,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match package_file(&app, &id, &name).await {
        Ok(Some(bytes)) => ranged(&headers, &name, bytes),
        Ok(None) => html::problem(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("Event {id} has no file {name:?}."),
            Some(&session),
        ),
        Err(e) => store_problem(&e, Some(&session)),
    }
}

/// The evidence sheet of a confirmed violation, for the public lookup.
pub async fn public_sheet(State(app): State<App>, Path(id): Path<String>) -> Response {
    let not_found = || {
        html::problem(
            StatusCode::NOT_FOUND,
            "Not found",
            "No confirmed violation with this evidence sheet.",
            None,
        )
    };
    let case = match app.store.case(&id).await {
        Ok(Some(c)) if matches!(c.status.as_str(), "confirmed" | "downgraded") => c,
        Ok(_) => return not_found(),
        Err(e) => return store_problem(&e, None),
    };
    let sheet = match app.store.package_files(&case.event_id).await {
        Ok(Some((m, _))) => serde_json::from_str::<Manifest>(&m).ok().and_then(|m| {
            m.files
                .iter()
                .find(|f| f.role == "evidence_sheet")
                .map(|f| f.path.clone())
        }),
        Ok(None) => None,
        Err(e) => return store_problem(&e, None),
    };
    let Some(name) = sheet else {
        return not_found();
    };
    match package_file(&app, &id, &name).await {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type(&name))], bytes).into_response(),
        Ok(None) => not_found(),
        Err(e) => store_problem(&e, None),
    }
}

pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    let mut res = ([(header::CONTENT_TYPE, ct)], body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    res
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The case bundle of a confirmed event: its package as received, its
/// decisions and its audit rows (with their hashes, to check against the
/// chain), as one tar.
pub async fn bundle(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
) -> Response {
    let case = match html::case_or_problem(&app.store, &id, &session).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    if !matches!(case.status.as_str(), "confirmed" | "downgraded") {
        return html::problem(
            StatusCode::CONFLICT,
            "Not confirmed",
            &format!(
                "Event {id} is {}; case bundles are made for confirmed violations.",
                case.status
            ),
            Some(&session),
        );
    }
    let loaded = async {
        app.store
            .audit(AuditEntry::new(
                &session.username,
                "export_bundle",
                &id,
                "case bundle",
            ))
            .await?;
        Ok::<_, crate::StoreError>((
            app.store.package_files(&id).await?,
            app.store.decisions(&id).await?,
            app.store.audit_for(&id).await?,
        ))
    }
    .await;
    let (files, decisions, audit) = match loaded {
        Ok(x) => x,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    let Some((_, tar_path)) = files else {
        return store_problem(&"package row vanished", Some(&session));
    };
    let package = match app.store.media().get(&tar_path).await {
        Ok(b) => b,
        Err(e) => return store_problem(&format!("{tar_path}: {e}"), Some(&session)),
    };
    let decisions_json = serde_json::to_vec_pretty(
        &decisions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id, "kind": d.kind, "reason_code": d.reason_code,
                    "reason_text": d.reason_text, "from_type": d.from_type, "to_type": d.to_type,
                    "decided_by": d.decided_by, "decided_at_us": d.decided_at_us,
                    "approval": d.approval, "approved_by": d.approved_by,
                    "approved_at_us": d.approved_at_us, "approval_note": d.approval_note,
                })
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    let audit_json = serde_json::to_vec_pretty(&audit).unwrap_or_default();
    let readme = format!(
        "Vigil case bundle\n\nEvent {id}: {} at {}, status {}.\n\n\
         package.tar     the evidence package as the edge signed it (check with `vigil verify`)\n\
         decisions.json  every decision on the event\n\
         audit.json      the event's audit rows; each hash chains into the case system's log\n",
        violation_label(&case.current_type),
        case.place.as_deref().unwrap_or(&case.camera),
        case.status
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime((case.received_at_us / 1_000_000).max(0) as u64);
        h.set_cksum();
        builder.append_data(&mut h, name, bytes)
    };
    let built = add("README.txt", readme.as_bytes())
        .and_then(|()| add("package.tar", &package))
        .and_then(|()| add("decisions.json", &decisions_json))
        .and_then(|()| add("audit.json", &audit_json));
    let bytes = match built.and_then(|()| builder.into_inner()) {
        Ok(b) => b,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"case-{id}.tar\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Every decision as CSV.
pub async fn decisions_csv(State(app): State<App>, Extension(session): Staff) -> Response {
    let decisions = match app.store.all_decisions().await {
        Ok(d) => d,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    if let Err(e) = app
        .store
        .audit(AuditEntry::new(
            &session.username,
            "export_csv",
            "decisions",
            format!("{} decisions", decisions.len()),
        ))
        .await
    {
        return store_problem(&e, Some(&session));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let header_row = [
        "decision_id",
        "event_id",
        "kind",
        "from_type",
        "to_type",
        "reason_code",
        "reason_text",
        "decided_by",
        "decided_at_us",
        "approval",
        "approved_by",
        "approved_at_us",
    ];
    let mut result = w.write_record(header_row);
    for d in &decisions {
        if result.is_err() {
            break;
        }
        result = w.write_record([
            d.id.to_string(),
            d.event_id.clone(),
            d.kind.clone(),
            d.from_type.clone(),
            d.to_type.clone().unwrap_or_default(),
            d.reason_code.clone().unwrap_or_default(),
            d.reason_text.clone().unwrap_or_default(),
            d.decided_by.clone(),
            d.decided_at_us.to_string(),
            d.approval.clone().unwrap_or_default(),
            d.approved_by.clone().unwrap_or_default(),
            d.approved_at_us.map(|t| t.to_string()).unwrap_or_default(),
        ]);
    }
    let bytes = match result
        .map_err(|e| e.to_string())
        .and_then(|()| w.into_inner().map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"decisions.csv\"",
            ),
        ],
        bytes,
    )
        .into_response()
}
