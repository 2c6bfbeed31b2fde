//! Page frame and small pieces shared by the pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::auth::{Role, Session};
use crate::review::ReviewError;
use crate::web::access;

/// A whole page: header with the links the user's role may follow.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    let links: &[(&str, &str)] = &[
        ("/queue", "Queue"),
        ("/approvals", "Approvals"),
        ("/dashboard", "Integrity"),
        ("/audit", "Audit log"),
        ("/admin/users", "Users"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Vigil" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Vigil" }
                    @if let Some(s) = session {
                        nav {
                            @for (href, label) in links {
                                @if access::rule_for("GET", href).is_some_and(|r| access::allows(r, s.role)) {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            span.who { (s.username) " (" (s.role) ")" }
                            button type="submit" { "Log out" }
                        }
                    } @else {
                        nav { a href="/lookup" { "Plate lookup" } a href="/login" { "Staff login" } }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error page that names the problem.
pub fn problem(
    status: StatusCode,
    title: &str,
    message: &str,
    session: Option<&Session>,
) -> Response {
    let body = page(
        title,
        session,
        html! { h1 { (title) } p.problem { (message) } },
    );
    (status, Html(body.into_string())).into_response()
}

/// A review error as the page that explains it.
pub fn review_problem(e: &ReviewError, session: &Session) -> Response {
    let (status, title) = match e {
        ReviewError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        ReviewError::Conflict(_) => (StatusCode::CONFLICT, "Not possible now"),
        ReviewError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        ReviewError::BadInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Please correct"),
        ReviewError::Store(err) => {
            tracing::error!(error = %err, "case store");
            (StatusCode::SERVICE_UNAVAILABLE, "Unavailable")
        }
    };
    problem(status, title, &e.to_string(), Some(session))
}

pub fn store_problem(e: &dyn std::fmt::Display, session: Option<&Session>) -> Response {
    tracing::error!(error = %e, "case store");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The case store cannot be read now; try again.",
        session,
    )
}

pub fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Hidden CSRF field of a staff form.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

pub fn status_badge(status: &str) -> Markup {
    let label = match status {
        "new" => "New",
        "confirmed" => "Confirmed",
        "dismissal_pending" => "Dismissal awaiting approval",
        "downgrade_pending" => "Downgrade awaiting approval",
        "dismissed" => "Dismissed",
        "downgraded" => "Downgraded",
        other => other,
    };
    html! { span class={"badge " (status)} { (label) } }
}

pub fn may_review(session: &Session) -> bool {
    matches!(session.role, Role::Operator | Role::Supervisor)
}

/// The case of `id`, or the page that says why there is none.
pub async fn case_or_problem(
    store: &crate::Store,
    id: &str,
    session: &Session,
) -> Result<crate::review::Case, Response> {
    match store.case(id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("No event {id}."),
            Some(session),
        )),
        Err(e) => Err(store_problem(&e, Some(session))),
    }
}
