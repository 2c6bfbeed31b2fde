//! The operators' pages and their form handlers.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use vigil_core::time::{days_from_civil, format_local};
use vigil_evidence::manifest::Manifest;

use super::charts::{signal_chart, trajectory_view};
use super::files::package_entries;
use super::html::{self, csrf, may_review, ok, page, review_problem, status_badge, store_problem};
use super::{cookie, same_secret, App, SessionToken, Staff, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::auth::{random_token, Role, SESSION_TTL};
use crate::review::{violation_label, Proposal, QueueFilter, ReviewError, REASON_CODES, SEVERITY};

fn when(app: &App, us: i64) -> String {
    format_local(us, &app.options.utc_offset)
}

fn cookie_header(app: &App, name: &str, value: &str, max_age_s: u64) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if app.options.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

fn back_to_event(id: &str) -> Response {
    Redirect::to(&format!("/events/{id}")).into_response()
}

/// A path the login may send the user on to: local only.
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
}

pub async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = match cookie(&headers, SESSION_COOKIE) {
        Some(t) => app.store.session(&t).await.ok().flatten(),
        None => None,
    };
    match session.map(|s| s.role) {
        Some(Role::Admin) => Redirect::to("/admin/users").into_response(),
        Some(_) => Redirect::to("/queue").into_response(),
        None => Redirect::to("/lookup").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(State(app): State<App>, Query(q): Query<NextQuery>) -> Response {
    login_form(&app, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

fn login_form(app: &App, next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_token();
    let body = page(
        "Log in",
        None,
        html! {
            h1 { "Staff login" }
            @if let Some(e) = error { p.problem role="alert" { (e) } }
            form.login method="post" action="/login" {
                input type="hidden" name="login_csrf" value=(token);
                input type="hidden" name="next" value=(next.unwrap_or("/"));
                label { "User name" input name="username" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    );
    (
        status,
        [(
            header::SET_COOKIE,
            cookie_header(app, LOGIN_CSRF_COOKIE, &token, 3600),
        )],
        axum::response::Html(body.into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    login_csrf: String,
    next: Option<String>,
}

pub async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    req_ext: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    // Double-submit: the form's token must match the cookie set with it,
    // which another site can neither read nor set (SameSite=Strict).
    if !cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| same_secret(&c, &f.login_csrf)) {
        return login_form(
            &app,
            next,
            Some("The login form expired; please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let client = super::client_of(&req_ext);
    if let Some(wait) = app.limiter.retry_after(&client, &f.username) {
        let _ = app
            .store
            .audit(crate::audit::AuditEntry::new(
                "public",
                "login_refused",
                "user:?",
                format!("rate limit, client {client}"),
            ))
            .await;
        let mut res = login_form(
            &app,
            next,
            Some(&format!(
                "Too many failed logins; try again in {} minutes.",
                wait.as_secs().div_ceil(60)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = wait.as_secs().to_string().parse() {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    match app.store.login(&f.username, &f.password, &client).await {
        Ok(Some((token, session))) => {
            app.limiter.succeeded(&client, &f.username);
            let to = next.filter(|n| *n != "/").map_or_else(
                || match session.role {
                    Role::Admin => "/admin/users".to_owned(),
                    _ => "/queue".to_owned(),
                },
                str::to_owned,
            );
            (
                [(
                    header::SET_COOKIE,
                    cookie_header(&app, SESSION_COOKIE, &token, SESSION_TTL.as_secs()),
                )],
                Redirect::to(&to),
            )
                .into_response()
        }
        Ok(None) => {
            app.limiter.failed(&client, &f.username);
            login_form(
                &app,
                next,
                Some("Wrong user name or password."),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => store_problem(&e, None),
    }
}

pub async fn logout(
    State(app): State<App>,
    Extension(session): Staff,
    Extension(token): Extension<SessionToken>,
) -> Response {
    if let Err(e) = app.store.logout(&token.0, &session.username).await {
        return store_problem(&e, Some(&session));
    }
    (
        [(
            header::SET_COOKIE,
            cookie_header(&app, SESSION_COOKIE, "", 0),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    plate: Option<String>,
}

/// The public lookup: a plate's confirmed violations, nothing else.
pub async fn lookup(State(app): State<App>, Query(q): Query<LookupQuery>) -> Response {
    let plate = q.plate.unwrap_or_default();
    let results = if plate.trim().is_empty() {
        None
    } else {
        match app.store.confirmed_for_plate(&plate).await {
            Ok(r) => Some(r),
            Err(e) => return store_problem(&e, None),
        }
    };
    ok(page(
        "Plate lookup",
        None,
        html! {
            h1 { "Look up a plate" }
            p { "Confirmed traffic violations recorded by the province's cameras." }
            form.lookup method="get" action="/lookup" {
                label { "Plate" input name="plate" value=(plate) placeholder="30A-123.45" required; }
                button type="submit" { "Look up" }
            }
            @if let Some(results) = results {
                @if results.is_empty() {
                    p #no-results { "No confirmed violations for " strong { (plate) } "." }
                } @else {
                    table #results {
                        thead { tr { th { "Time" } th { "Place" } th { "Violation" } th { "Evidence" } } }
                        tbody {
                            @for c in &results {
                                tr {
                                    td { (when(&app, c.event_at_us)) }
                                    td { (c.place.as_deref().unwrap_or(&c.camera)) }
                                    td { (violation_label(&c.current_type)) }
                                    td { a href={"/public/events/" (c.event_id) "/sheet"} { "Evidence sheet" } }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    camera: Option<String>,
    #[serde(rename = "type")]
    violation_type: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    assigned: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `YYYY-MM-DD` at local midnight (`offset` like `+07:00`) as Unix µs.
fn local_date_us(field: &str, date: &str, offset: &str) -> Result<i64, String> {
    let parts: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else {
        return Err(format!("{field}: {date:?} is not a date like 2026-11-27"));
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(format!("{field}: {date:?} is not a date like 2026-11-27"));
    }
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let hm: Vec<i64> = offset
        .trim_start_matches(['+', '-'])
        .split(':')
        .filter_map(|p| p.parse().ok())
        .collect();
    let offset_s = sign * (hm.first().unwrap_or(&0) * 3600 + hm.get(1).unwrap_or(&0) * 60);
    Ok((days_from_civil(y, m, d) * 86_400 - offset_s) * 1_000_000)
}

const STATUSES: [(&str, &str); 7] = [
    ("open", "Open (to review or approve)"),
    ("new", "New"),
    ("dismissal_pending", "Dismissal pending"),
    ("downgrade_pending", "Downgrade pending"),
    ("confirmed", "Confirmed"),
    ("dismissed", "Dismissed"),
    ("downgraded", "Downgraded"),
];

pub async fn queue(
    State(app): State<App>,
    Extension(session): Staff,
    Query(q): Query<QueueQuery>,
) -> Response {
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    let mut filter = QueueFilter {
        camera: nonempty(&q.camera),
        violation_type: nonempty(&q.violation_type),
        status: (status != "any").then(|| status.clone()),
        limit: 500,
        ..QueueFilter::default()
    };
    for (field, value, slot) in [
        ("from", &q.from, &mut filter.from_us),
        ("to", &q.to, &mut filter.to_us),
    ] {
        if let Some(v) = nonempty(value) {
            match local_date_us(field, &v, &app.options.utc_offset) {
                // "to" includes its whole day.
                Ok(us) => {
                    *slot = Some(if field == "to" {
                        us + 86_400_000_000
                    } else {
                        us
                    })
                }
                Err(e) => {
                    return html::problem(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Please correct",
                        &e,
                        Some(&session),
                    )
                }
            }
        }
    }
    match q.assigned.as_deref() {
        Some("me") => filter.assigned_to = Some(session.username.clone()),
        Some(a) if !a.is_empty() && a != "any" => filter.assigned_to = Some(a.to_owned()),
        _ => {}
    }
    let (cases, cameras) = match tokio::try_join!(app.store.queue(&filter), app.store.cameras()) {
        Ok(x) => x,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    let selected = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
    ok(page(
        "Review queue",
        Some(&session),
        html! {
            h1 { "Review queue" }
            form.filters method="get" action="/queue" {
                label { "Camera" select name="camera" {
                    option value="" { "any" }
                    @for c in &cameras { option value=(c) selected[selected(&q.camera, c)] { (c) } }
                } }
                label { "Type" select name="type" {
                    option value="" { "any" }
                    @for t in SEVERITY { option value=(t) selected[selected(&q.violation_type, t)] { (violation_label(t)) } }
                } }
                label { "Status" select name="status" {
                    @for (s, label) in STATUSES { option value=(s) selected[status == s] { (label) } }
                    option value="any" selected[status == "any"] { "Any" }
                } }
                label { "From" input type="date" name="from" value=(q.from.clone().unwrap_or_default()); }
                label { "To" input type="date" name="to" value=(q.to.clone().unwrap_or_default()); }
                label { "Assigned" select name="assigned" {
                    option value="any" { "anyone" }
                    option value="me" selected[q.assigned.as_deref() == Some("me")] { "me" }
                } }
                button type="submit" { "Filter" }
            }
            p.count { (cases.len()) " events" }
            table #queue.queue {
                thead { tr { th { "Time" } th { "Camera" } th { "Violation" } th { "Plate" } th { "Status" } th { "Assigned" } th {} } }
                tbody {
                    @for c in &cases {
                        tr data-href={"/events/" (c.event_id)} {
                            td { (when(&app, c.event_at_us)) }
                            td { (c.camera) }
                            td { (violation_label(&c.current_type)) }
                            td.plate { (c.reviewed_plate.as_deref().unwrap_or("unread")) @if c.agency_flag { " " span.badge.agency { "agency" } } }
                            td { (status_badge(&c.status)) }
                            td { (c.assigned_to.as_deref().unwrap_or("")) }
                            td { a.open href={"/events/" (c.event_id)} { "Open" } }
                        }
                    }
                }
            }
            p.hint { "Keys: j / k move, Enter opens, ? shows all shortcuts." }
        },
    ))
}

pub async fn event(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
) -> Response {
    let case = match html::case_or_problem(&app.store, &id, &session).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let loaded = async {
        let files = app.store.package_files(&id).await?;
        let decisions = app.store.decisions(&id).await?;
        let edits = app.store.plate_edits(&id).await?;
        let next = app.store.next_open(&case).await?;
        let users = app.store.users().await.unwrap_or_default();
        app.store.record_view(&session.username, &id).await?;
        let audit = app.store.audit_for(&id).await?;
        Ok::<_, crate::StoreError>((files, decisions, edits, next, users, audit))
    }
    .await;
    let (files, decisions, edits, next, users, audit) = match loaded {
        Ok(x) => x,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    let manifest: Option<Manifest> = files
        .as_ref()
        .and_then(|(m, _)| serde_json::from_str(m).ok());
    let entries = match &files {
        Some((_, locator)) => package_entries(&app, locator).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let file_of = |role: &str| {
        manifest
            .as_ref()
            .and_then(|m| m.files.iter().find(|f| f.role == role))
            .map(|f| format!("/events/{id}/files/{}", f.path))
    };
    let scene = manifest.as_ref().and_then(|m| {
        let still = m
            .files
            .iter()
            .find(|f| f.role == "still_stop_line")
            .or_else(|| m.files.iter().find(|f| f.role.starts_with("still")))?;
        let bytes = entries.iter().find(|(p, _)| *p == still.path)?;
        let dims = image::ImageReader::new(std::io::Cursor::new(&bytes.1))
            .with_guessed_format()
            .ok()?
            .into_dimensions()
            .ok()?;
        Some((format!("/events/{id}/files/{}", still.path), dims))
    });
    let pending = decisions.iter().find(|d| d.approval.is_none());
    let reviewer = may_review(&session);
    let lighter: Vec<&str> = SEVERITY
        .iter()
        .skip_while(|k| **k != case.current_type)
        .skip(1)
        .copied()
        .collect();
    let stills = ["still_before", "still_stop_line", "still_clearance"];
    ok(page(
        &format!("Event {}", case.sequence),
        Some(&session),
        html! {
            div.event data-event=(case.event_id) {
            div.event-grid {
            aside.side-col {
            h1 { (violation_label(&case.current_type)) " " (status_badge(&case.status)) }
            @if case.agency_flag {
                p.agency-banner {
                    "State-agency plate: the owning agency is to be notified. "
                    @if let Some(by) = &case.agency_notified_by { "Notified (recorded by " (by) ")." }
                }
            }
            dl.facts {
                dt { "Time" } dd { (when(&app, case.event_at_us)) }
                dt { "Place" } dd { (case.place.as_deref().unwrap_or("")) }
                dt { "Camera" } dd { (case.camera) " on " (case.device_id) ", sequence " (case.sequence) }
                @if case.current_type != case.violation_type {
                    dt { "Detected as" } dd { (violation_label(&case.violation_type)) }
                }
                @if let Some(m) = &manifest {
                    dt { "Signal" } dd {
                        (m.signal.phase_at_event) " (" (m.signal.source) ")"
                        @if let Some(t) = m.signal.time_into_red_s { ", " (format!("{t:.2}")) " s into red" }
                        @if let Some(a) = m.signal.amber_before_s { ", amber " (format!("{a:.2}")) " s" }
                    }
                    @if let Some(v) = m.violation.speed_kmh { dt { "Speed" } dd { (format!("{v:.1}")) " km/h" } }
                    dt { "Clock" } dd { (m.times.clock_sync) }
                }
                dt { "Assigned" } dd { (case.assigned_to.as_deref().unwrap_or("nobody")) }
                dt { "Manifest" } dd.hash { (case.manifest_sha256) }
            }
            @if reviewer && case.is_open() {
                form.assign method="post" action={"/events/" (id) "/assign"} {
                    (csrf(&session))
                    @if session.role == Role::Supervisor {
                        select name="to" aria-label="Assign to" {
                            @for (u, r, active) in &users {
                                @if *active && matches!(r, Role::Operator | Role::Supervisor) {
                                    option value=(u) selected[case.assigned_to.as_deref() == Some(u.as_str())] { (u) }
                                }
                            }
                        }
                        button type="submit" { "Assign" }
                    } @else {
                        input type="hidden" name="to" value=(session.username);
                        button type="submit" { "Take this event" }
                    }
                }
            }

            section.decide {
                h2 { "Decision" }
                @if let Some(d) = pending {
                    p.pending {
                        (d.decided_by) " proposed to " (d.kind)
                        @if let Some(t) = &d.to_type { " to " (violation_label(t)) }
                        ": " strong { (d.reason_code.as_deref().unwrap_or("")) } " — " (d.reason_text.as_deref().unwrap_or(""))
                    }
                    @if session.role == Role::Supervisor && d.decided_by != session.username {
                        form.approve method="post" action={"/decisions/" (d.id) "/approve"} {
                            (csrf(&session))
                            label { "Note" input name="note"; }
                            button #approve type="submit" { "Approve " (d.kind) }
                        }
                        form.reject method="post" action={"/decisions/" (d.id) "/reject"} {
                            (csrf(&session))
                            input type="hidden" name="note" value="";
                            button #reject type="submit" { "Reject (reopen)" }
                        }
                    } @else {
                        p.waiting { "Waiting for a different supervisor to approve or reject it." }
                    }
                } @else if case.status == "new" && reviewer {
                    form #confirm-form.confirm method="post" action={"/events/" (id) "/confirm"} {
                        (csrf(&session))
                        button #confirm type="submit" { "Confirm violation" } " " kbd { "c" }
                    }
                    details #dismiss-box {
                        summary { "Dismiss… " kbd { "d" } }
                        form #dismiss-form method="post" action={"/events/" (id) "/dismiss"} {
                            (csrf(&session))
                            (reason_select("dismiss-reason"))
                            label { "Explain" textarea name="reason_text" required minlength="5" {} }
                            button #dismiss type="submit" { "Propose dismissal" }
                        }
                    }
                    @if !lighter.is_empty() {
                        details #downgrade-box {
                            summary { "Downgrade… " kbd { "g" } }
                            form #downgrade-form method="post" action={"/events/" (id) "/downgrade"} {
                                (csrf(&session))
                                label { "To" select name="to_type" { @for t in &lighter { option value=(t) { (violation_label(t)) } } } }
                                (reason_select("downgrade-reason"))
                                label { "Explain" textarea name="reason_text" required minlength="5" {} }
                                button #downgrade type="submit" { "Propose downgrade" }
                            }
                        }
                    }
                    p.hint { "A dismissal or downgrade waits for a different supervisor's approval." }
                } @else {
                    p { "Closed: " (status_badge(&case.status)) }
                }
                @if case.agency_flag && case.agency_notified_by.is_none() && session.role == Role::Supervisor {
                    form method="post" action={"/events/" (id) "/agency-notified"} {
                        (csrf(&session))
                        label { "Agency notified (reference)" input name="note" required; }
                        button type="submit" { "Record notification" }
                    }
                }
                @if let Some(n) = &next { p { a #next href={"/events/" (n)} { "Next open event →" } " " kbd { "n" } } }
            }

            section.plate {
                h2 { "Plate" }
                @if let Some(src) = file_of("plate_crop") { img.plate-crop src=(src) alt="plate crop"; }
                p {
                    "Current: " strong #plate-current { (case.reviewed_plate.as_deref().unwrap_or("unread")) }
                    @if let Some(c) = &case.plate_colour { " (" (c) ")" }
                }
                @if let Some(p) = manifest.as_ref().and_then(|m| m.plate.as_ref()) {
                    p.reading { "Read by the edge: " (p.text) " at " (format!("{:.0}%", p.confidence * 100.0))
                        @if !p.valid { " (not a valid plate)" } ", " (p.reads) " reads" }
                    @if !p.candidates.is_empty() {
                        ul.candidates { @for c in &p.candidates { li { (c.text) " " (format!("{:.0}%", c.confidence * 100.0)) } } }
                    }
                }
                @if reviewer && case.is_open() {
                    form #plate-form method="post" action={"/events/" (id) "/plate"} {
                        (csrf(&session))
                        label { "Correct plate " kbd { "e" } input #plate-input name="plate" value=(case.reviewed_plate.as_deref().unwrap_or("")) required; }
                        button type="submit" { "Save plate" }
                    }
                }
                @if !edits.is_empty() {
                    table.edits {
                        thead { tr { th { "When" } th { "By" } th { "From" } th { "To" } } }
                        tbody { @for e in &edits { tr { td { (when(&app, e.edited_at_us)) } td { (e.edited_by) } td { (e.old_plate.as_deref().unwrap_or("(none)")) } td { (e.new_plate) } } } }
                    }
                }
            }

            }
            div.main-col {
            section.media {
                h2 { "Evidence" }
                @if let Some(src) = file_of("clip") {
                    video #clip controls preload="metadata" src=(src) {}
                    p.hint { "Space plays or pauses the clip." }
                }
                div.stills {
                    @for role in stills {
                        @if let Some(src) = file_of(role) {
                            figure { img src=(src) alt=(role) loading="lazy"; figcaption { (role.replace('_', " ")) } }
                        }
                    }
                }
                @if let Some(src) = file_of("evidence_sheet") { p { a href=(src) target="_blank" { "Evidence sheet" } } }
            }

            @if let Some(m) = &manifest {
                section.signal { h2 { "Signal" } (signal_chart(m)) }
                @if let Some((src, (w, h))) = &scene {
                    section.trajectory { h2 { "Trajectory" } (trajectory_view(m, src, *w, *h)) }
                }
            }

            }
            }
            section.history {
                h2 { "Decisions" }
                @if decisions.is_empty() { p { "None yet." } } @else {
                    table.decisions {
                        thead { tr { th { "When" } th { "By" } th { "Decision" } th { "Reason" } th { "Approval" } } }
                        tbody { @for d in &decisions { tr {
                            td { (when(&app, d.decided_at_us)) } td { (d.decided_by) }
                            td { (d.kind) @if let Some(t) = &d.to_type { " → " (violation_label(t)) } }
                            td { (d.reason_code.as_deref().unwrap_or("")) " " (d.reason_text.as_deref().unwrap_or("")) }
                            td { (d.approval.as_deref().unwrap_or("pending")) @if let Some(by) = &d.approved_by { " by " (by) } }
                        } } }
                    }
                }
                h2 { "Audit trail" }
                table.audit {
                    thead { tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Detail" } } }
                    tbody { @for a in &audit { tr { td { (a.seq) } td { (when(&app, a.at_us)) } td { (a.actor) } td { (a.action) } td { (a.detail) } } } }
                }
            }
            }
            div #help.help hidden {
                h2 { "Shortcuts" }
                ul {
                    li { kbd { "c" } " confirm" } li { kbd { "d" } " dismiss" } li { kbd { "g" } " downgrade" }
                    li { kbd { "e" } " edit the plate" } li { kbd { "Space" } " play or pause the clip" }
                    li { kbd { "n" } " next open event" } li { kbd { "q" } " back to the queue" } li { kbd { "?" } " this help" }
                }
            }
        },
    ))
}

fn reason_select(id: &str) -> Markup {
    html! {
        label { "Reason" select id=(id) name="reason_code" required {
            option value="" { "choose…" }
            @for (code, label) in REASON_CODES { option value=(code) { (label) } }
        } }
    }
}

#[derive(Debug, Deserialize)]
pub struct PlateForm {
    plate: String,
}

pub async fn edit_plate(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
    Form(f): Form<PlateForm>,
) -> Response {
    match app.store.edit_plate(&session, &id, &f.plate).await {
        Ok(_) => back_to_event(&id),
        Err(e) => review_problem(&e, &session),
    }
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    to: String,
}

pub async fn assign(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
    Form(f): Form<AssignForm>,
) -> Response {
    match app.store.assign(&session, &id, &f.to).await {
        Ok(()) => back_to_event(&id),
        Err(e) => review_problem(&e, &session),
    }
}

/// After a decision, on to the next open event (or back to the queue).
async fn onward(app: &App, id: &str) -> Response {
    match app.store.case(id).await {
        Ok(Some(c)) => match app.store.next_open(&c).await {
            Ok(Some(next)) => Redirect::to(&format!("/events/{next}")).into_response(),
            _ => Redirect::to("/queue").into_response(),
        },
        _ => Redirect::to("/queue").into_response(),
    }
}

pub async fn confirm(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
) -> Response {
    match app.store.confirm(&session, &id).await {
        Ok(()) => onward(&app, &id).await,
        Err(e) => review_problem(&e, &session),
    }
}

#[derive(Debug, Deserialize)]
pub struct ProposalForm {
    reason_code: String,
    reason_text: String,
    to_type: Option<String>,
}

async fn propose(
    app: &App,
    session: &crate::auth::Session,
    id: &str,
    p: Proposal,
    f: &ProposalForm,
) -> Response {
    match app
        .store
        .propose(session, id, &p, &f.reason_code, &f.reason_text)
        .await
    {
        Ok(_) => back_to_event(id),
        Err(e) => review_problem(&e, session),
    }
}

pub async fn dismiss(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
    Form(f): Form<ProposalForm>,
) -> Response {
    propose(&app, &session, &id, Proposal::Dismiss, &f).await
}

pub async fn downgrade(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
    Form(f): Form<ProposalForm>,
) -> Response {
    let Some(to_type) = f.to_type.clone().filter(|t| !t.is_empty()) else {
        return review_problem(
            &ReviewError::BadInput("choose the violation to downgrade to".into()),
            &session,
        );
    };
    propose(&app, &session, &id, Proposal::Downgrade { to_type }, &f).await
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

pub async fn agency_notified(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    match app.store.mark_agency_notified(&session, &id, &f.note).await {
        Ok(()) => back_to_event(&id),
        Err(e) => review_problem(&e, &session),
    }
}

pub async fn approvals(State(app): State<App>, Extension(session): Staff) -> Response {
    let pending = match app.store.pending_decisions().await {
        Ok(p) => p,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    ok(page(
        "Approvals",
        Some(&session),
        html! {
            h1 { "Dismissals and downgrades awaiting approval" }
            @if pending.is_empty() { p { "Nothing is waiting." } } @else {
                table #approvals {
                    thead { tr { th { "Proposed" } th { "By" } th { "Decision" } th { "Reason" } th { "Event" } } }
                    tbody { @for d in &pending { tr {
                        td { (when(&app, d.decided_at_us)) } td { (d.decided_by) }
                        td { (d.kind) @if let Some(t) = &d.to_type { " → " (violation_label(t)) } }
                        td { (d.reason_code.as_deref().unwrap_or("")) ": " (d.reason_text.as_deref().unwrap_or("")) }
                        td { a href={"/events/" (d.event_id)} { "Review" }
                             @if d.decided_by == session.username { " (yours: another supervisor must approve)" } }
                    } } }
                }
            }
        },
    ))
}

async fn settle(
    app: &App,
    session: &crate::auth::Session,
    id: i64,
    approve: bool,
    note: &str,
) -> Response {
    match app.store.settle(session, id, approve, note).await {
        Ok(event) => back_to_event(&event),
        Err(e) => review_problem(&e, session),
    }
}

pub async fn approve(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<i64>,
    Form(f): Form<NoteForm>,
) -> Response {
    settle(&app, &session, id, true, &f.note).await
}

pub async fn reject(
    State(app): State<App>,
    Extension(session): Staff,
    Path(id): Path<i64>,
    Form(f): Form<NoteForm>,
) -> Response {
    settle(&app, &session, id, false, &f.note).await
}

pub async fn dashboard(State(app): State<App>, Extension(session): Staff) -> Response {
    let loaded = async {
        Ok::<_, crate::StoreError>((
            app.store.camera_health().await?,
            app.store.alerts().await?,
            app.store.agency_cases().await?,
        ))
    }
    .await;
    let (health, alerts, agency) = match loaded {
        Ok(x) => x,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    let now = crate::store::now_us();
    ok(page(
        "Integrity",
        Some(&session),
        html! {
            h1 { "Integrity dashboard" }
            table #cameras {
                thead { tr { th { "Device" } th { "Camera" } th { "Packages" } th { "Last sequence" } th { "Missing" } th { "Last contact" } th { "Clock" } th { "Signal conflicts" } th { "Other alerts" } } }
                tbody { @for h in &health { tr {
                    td { (h.device_id) } td { (h.camera) } td { (h.packages) } td { (h.last_sequence) }
                    td class={ @if h.gaps > 0 { "bad" } } { (h.gaps) }
                    td { (when(&app, h.last_contact_us)) " (" (ago(now - h.last_contact_us)) ")" }
                    td class={ @if !matches!(h.clock_sync.as_deref(), Some("synced" | "replay")) { "warn" } } { (h.clock_sync.as_deref().unwrap_or("unknown")) }
                    td class={ @if h.signal_conflicts > 0 { "warn" } } { (h.signal_conflicts) }
                    td class={ @if h.other_alerts > 0 { "bad" } } { (h.other_alerts) }
                } } }
            }
            h2 { "State-agency vehicles" }
            @if agency.is_empty() { p { "None." } } @else {
                table #agency {
                    thead { tr { th { "Time" } th { "Plate" } th { "Violation" } th { "Status" } th { "Agency notified" } } }
                    tbody { @for c in &agency { tr {
                        td { (when(&app, c.event_at_us)) } td { (c.reviewed_plate.as_deref().unwrap_or("")) }
                        td { (violation_label(&c.current_type)) } td { (status_badge(&c.status)) }
                        td { @if let Some(by) = &c.agency_notified_by { "yes (" (by) ")" } @else { strong { "not yet" } } }
                    } } }
                }
            }
            h2 { "Alerts" }
            @if alerts.is_empty() { p { "None." } } @else {
                ul.alerts { @for a in alerts.iter().rev().take(200) { li { strong { (a.kind) } " " (a.device_id) " / " (a.camera.as_deref().unwrap_or("-")) ": " (a.detail) } } }
            }
        },
    ))
}

fn ago(us: i64) -> String {
    let s = us / 1_000_000;
    match s {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

pub async fn audit(State(app): State<App>, Extension(session): Staff) -> Response {
    let loaded = async {
        Ok::<_, crate::StoreError>((
            app.store.verify_audit().await?,
            app.store.audit_recent(500).await?,
        ))
    }
    .await;
    let (report, rows) = match loaded {
        Ok(x) => x,
        Err(e) => return store_problem(&e, Some(&session)),
    };
    ok(page(
        "Audit log",
        Some(&session),
        html! {
            h1 { "Audit log" }
            @if report.is_intact() {
                p #chain-status.good { "Chain intact: " (report.rows) " rows, each hash checked, ending at the anchor." }
            } @else {
                div #chain-status.bad { p { "Chain NOT intact:" } ul { @for p in &report.problems { li { (p) } } } }
            }
            table.audit {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Detail" } } }
                tbody { @for a in &rows { tr { td { (a.seq) } td { (when(&app, a.at_us)) } td { (a.actor) } td { (a.action) } td { (a.target) } td { (a.detail) } } } }
            }
        },
    ))
}

pub async fn users(State(app): State<App>, Extension(session): Staff) -> Response {
    users_page(&app, &session, None).await
}

async fn users_page(app: &App, session: &crate::auth::Session, error: Option<String>) -> Response {
    let list = match app.store.users().await {
        Ok(l) => l,
        Err(e) => return store_problem(&e, Some(session)),
    };
    let body = page(
        "Users",
        Some(session),
        html! {
            h1 { "Users" }
            @if let Some(e) = &error { p.problem role="alert" { (e) } }
            table #users { thead { tr { th { "User" } th { "Role" } th { "Active" } } }
                tbody { @for (u, r, a) in &list { tr { td { (u) } td { (r) } td { (if *a { "yes" } else { "no" }) } } } } }
            h2 { "Add a user or reset a password" }
            form method="post" action="/admin/users" {
                (csrf(session))
                label { "User name" input name="username" required; }
                label { "Password" input type="password" name="password" required minlength="10" autocomplete="new-password"; }
                label { "Role" select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r) } } } }
                button type="submit" { "Save" }
            }
        },
    );
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, axum::response::Html(body.into_string())).into_response()
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    username: String,
    password: String,
    role: String,
}

pub async fn add_user(
    State(app): State<App>,
    Extension(session): Staff,
    Form(f): Form<UserForm>,
) -> Response {
    let role = match f.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => return users_page(&app, &session, Some(e)).await,
    };
    match app
        .store
        .upsert_user(&session.username, &f.username, &f.password, role)
        .await
    {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(crate::auth::AuthError::BadInput(e)) => users_page(&app, &session, Some(e)).await,
        Err(e) => store_problem(&e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_local_midnight() {
        // 2026-11-27 00:00 at +07:00 is 2026-11-26 17:00 UTC.
        let us = local_date_us("from", "2026-11-27", "+07:00").expect("date");
        assert_eq!(
            format_local(us, "+00:00"),
            "2026-11-26 17:00:00.000 (+00:00)"
        );
        assert!(local_date_us("from", "27/11/2026", "+07:00")
            .unwrap_err()
            .contains("from: \"27/11/2026\""));
    }

    #[test]
    fn login_only_forwards_to_local_paths() {
        assert_eq!(
            safe_next(Some("/queue?status=new")),
            Some("/queue?status=new")
        );
        assert_eq!(safe_next(Some("//evil.example")), None);
        assert_eq!(safe_next(Some("https://evil.example")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
    }
}
