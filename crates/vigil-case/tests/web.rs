//! The web layer through the real router: who reaches which route (every
//! role against every route), CSRF, cookies, the login rate limit, media
//! serving without path traversal, escaping, exports and the public lookup.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use common::{database, ingest_packages, session, store, PASSWORD};
use tower::ServiceExt;
use vigil_case::review::Proposal;
use vigil_case::web::access::{Access, ROUTES};
use vigil_case::Role;

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_owned())
        }
        None => Body::empty(),
    };
    let res = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, 64 << 20)
            .await
            .expect("body")
            .to_vec(),
    }
}

fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .map(|i| i + marker.len())
        .expect("hidden field");
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).expect("enc")[2..].to_owned()
}

/// Logs in through the form; returns (cookie header, session CSRF token).
async fn login(app: &Router, user: &str, home: &str) -> (String, String) {
    let page = call(app, "GET", "/login", None, None).await;
    let login_cookie = set_cookie(&page, "vigil_login_csrf").expect("login cookie");
    let token = hidden(&page.text(), "login_csrf");
    let cookie = login_cookie.split(';').next().expect("pair").to_owned();
    let form = format!(
        "username={user}&password={}&login_csrf={token}&next=%2F",
        enc(PASSWORD)
    );
    let res = call(app, "POST", "/login", Some(&cookie), Some(&form)).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{user}: {}", res.text());
    let session = set_cookie(&res, "vigil_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    let cookie = session.split(';').next().expect("pair").to_owned();
    let page = call(app, "GET", home, Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK, "{user} {home}");
    let csrf = hidden(&page.text(), "csrf");
    (cookie, csrf)
}

/// The access policy, written out independently of the router's table.
fn expected() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    const ANYONE: &[&str] = &["anonymous", "operator", "supervisor", "auditor", "admin"];
    const DEVICE: &[&str] = &[];
    vec![
        ("GET", "/", ANYONE),
        ("GET", "/healthz", ANYONE),
        ("GET", "/login", ANYONE),
        ("POST", "/login", ANYONE),
        ("GET", "/lookup", ANYONE),
        ("GET", "/public/events/{id}/sheet", ANYONE),
        ("GET", "/static/{file}", ANYONE),
        ("GET", "/api/v1/openapi.json", ANYONE),
        ("POST", "/api/v1/packages", DEVICE),
        (
            "POST",
            "/logout",
            &["operator", "supervisor", "auditor", "admin"],
        ),
        ("GET", "/queue", &["operator", "supervisor", "auditor"]),
        (
            "GET",
            "/events/{id}",
            &["operator", "supervisor", "auditor"],
        ),
        (
            "GET",
            "/events/{id}/files/{*name}",
            &["operator", "supervisor", "auditor"],
        ),
        ("POST", "/events/{id}/plate", &["operator", "supervisor"]),
        ("POST", "/events/{id}/assign", &["operator", "supervisor"]),
        ("POST", "/events/{id}/confirm", &["operator", "supervisor"]),
        ("POST", "/events/{id}/dismiss", &["operator", "supervisor"]),
        (
            "POST",
            "/events/{id}/downgrade",
            &["operator", "supervisor"],
        ),
        ("GET", "/approvals", &["supervisor"]),
        ("POST", "/decisions/{id}/approve", &["supervisor"]),
        ("POST", "/decisions/{id}/reject", &["supervisor"]),
        ("POST", "/events/{id}/agency-notified", &["supervisor"]),
        ("GET", "/events/{id}/bundle", &["supervisor", "auditor"]),
        ("GET", "/exports/decisions.csv", &["supervisor", "auditor"]),
        ("GET", "/dashboard", &["supervisor", "auditor", "admin"]),
        ("GET", "/audit", &["auditor", "admin"]),
        ("GET", "/admin/users", &["admin"]),
        ("POST", "/admin/users", &["admin"]),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: vigil_case::Store,
    app: Router,
    /// new, confirmed, blue-plate, pending-dismissal events.
    new: Vec<String>,
    confirmed: String,
    blue: String,
    decision: i64,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let db = database("sqlite", dir.path(), "web").await;
    let store = store(&db.url, dir.path()).await;
    let ids = ingest_packages(&store, dir.path(), "cam-w", 8, |n| n == 8).await;
    store
        .confirm(&session("op1", Role::Operator), &ids[0])
        .await
        .expect("confirm");
    let decision = store
        .propose(
            &session("op2", Role::Operator),
            &ids[1],
            &Proposal::Dismiss,
            "emergency_vehicle",
            "ambulance with lights on",
        )
        .await
        .expect("propose");
    let app = vigil_case::web::router(store.clone());
    Fixture {
        new: ids[2..7].to_vec(),
        confirmed: ids[0].clone(),
        blue: ids[7].clone(),
        decision,
        store,
        app,
        _dir: dir,
    }
}

fn concrete(f: &Fixture, method: &str, path: &str) -> (String, Option<String>) {
    let event = match path {
        p if p.contains("bundle") || p.contains("/sheet") || p.contains("/files/") => {
            f.confirmed.clone()
        }
        p if p.contains("agency") => f.blue.clone(),
        _ => f.new[0].clone(),
    };
    let uri = path
        .replace("{id}/approve", &format!("{}/approve", f.decision))
        .replace("{id}/reject", &format!("{}/reject", f.decision))
        .replace("{id}", &event)
        .replace("{*name}", "sheet.jpg")
        .replace("{file}", "app.js");
    let form = (method == "POST").then(|| match path {
        "/events/{id}/plate" => "plate=29B112345".to_owned(),
        "/events/{id}/dismiss" => {
            "reason_code=not_a_violation&reason_text=no+crossing+seen".to_owned()
        }
        "/events/{id}/downgrade" => {
            "reason_code=lesser_violation&reason_text=over+the+line+only&to_type=speeding"
                .to_owned()
        }
        "/admin/users" => format!("username=newop&password={}&role=operator", enc(PASSWORD)),
        _ => "note=checked".to_owned(),
    });
    (uri, form)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_exactly_its_routes() {
    let f = fixture().await;
    let table: BTreeSet<(&str, &str)> = expected().iter().map(|(m, p, _)| (*m, *p)).collect();
    let routes: BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(
        table, routes,
        "the test's policy and the router's table list the same routes"
    );

    // Logout last: it ends the session.
    let mut order = expected();
    order.sort_by_key(|(m, p, _)| (*p == "/logout", *m, *p));
    for (user, role, home) in [
        ("anonymous", "anonymous", ""),
        ("op1", "operator", "/queue"),
        ("sup1", "supervisor", "/queue"),
        ("aud1", "auditor", "/queue"),
        ("adm1", "admin", "/admin/users"),
    ] {
        let (cookie, csrf) = if role == "anonymous" {
            (String::new(), String::new())
        } else {
            login(&f.app, user, home).await
        };
        for (method, path, allowed) in &order {
            let (uri, mut form) = concrete(&f, method, path);
            let mut cookie = cookie.clone();
            if *path == "/events/{id}/assign" {
                form = Some(format!("to={user}"));
            }
            if (*method, *path) == ("POST", "/login") {
                // A real login (as op2), with the login form's own token.
                let page = call(&f.app, "GET", "/login", None, None).await;
                let pair = set_cookie(&page, "vigil_login_csrf").expect("cookie");
                cookie = [cookie.as_str(), pair.split(';').next().expect("pair")]
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                form = Some(format!(
                    "username=op2&password={}&login_csrf={}",
                    enc(PASSWORD),
                    hidden(&page.text(), "login_csrf")
                ));
            }
            let form = form.map(|b| format!("{b}&csrf={csrf}"));
            let cookie = (!cookie.is_empty()).then_some(cookie.as_str());
            let res = call(&f.app, method, &uri, cookie, form.as_deref()).await;
            let rule = ROUTES
                .iter()
                .find(|r| r.method == *method && r.path == *path)
                .expect("rule");
            let what = format!("{role} {method} {uri} -> {} {}", res.status, res.location());
            if rule.access == Access::Device {
                assert_eq!(
                    res.status,
                    StatusCode::UNAUTHORIZED,
                    "{what}: only signed devices"
                );
            } else if allowed.contains(&role) {
                assert!(
                    res.status != StatusCode::FORBIDDEN
                        && res.status != StatusCode::UNAUTHORIZED
                        && !res.location().starts_with("/login?"),
                    "{what}: should be allowed\n{}",
                    res.text()
                );
            } else if role == "anonymous" {
                if *method == "GET" {
                    assert!(res.location().starts_with("/login?next="), "{what}");
                } else {
                    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
                }
            } else {
                assert_eq!(
                    res.status,
                    StatusCode::FORBIDDEN,
                    "{what}: should be refused"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_csrf_token() {
    let f = fixture().await;
    let (cookie, csrf) = login(&f.app, "op1", "/queue").await;
    let uri = format!("/events/{}/confirm", f.new[0]);
    for form in ["", "csrf=", "csrf=0000"] {
        let res = call(&f.app, "POST", &uri, Some(&cookie), Some(form)).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{form:?}");
    }
    assert_eq!(
        f.store.case(&f.new[0]).await.expect("c").expect("r").status,
        "new"
    );
    let res = call(
        &f.app,
        "POST",
        &uri,
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        f.store.case(&f.new[0]).await.expect("c").expect("r").status,
        "confirmed"
    );

    // The login form has its own token, bound to a cookie.
    let res = call(
        &f.app,
        "POST",
        "/login",
        None,
        Some(&format!(
            "username=op1&password={}&login_csrf=abc",
            enc(PASSWORD)
        )),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&res, "vigil_session").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_and_audited() {
    let f = fixture().await;
    let page = call(&f.app, "GET", "/login", None, None).await;
    let cookie = set_cookie(&page, "vigil_login_csrf")
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let token = hidden(&page.text(), "login_csrf");
    for i in 0..5 {
        let res = call(
            &f.app,
            "POST",
            "/login",
            Some(&cookie),
            Some(&format!(
                "username=sup2&password=guess{i}&login_csrf={token}"
            )),
        )
        .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(res.text().contains("Wrong user name or password"));
    }
    let res = call(
        &f.app,
        "POST",
        "/login",
        Some(&cookie),
        Some(&format!(
            "username=sup2&password={}&login_csrf={token}",
            enc(PASSWORD)
        )),
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(res.headers.get(header::RETRY_AFTER).is_some());
    let rows = f.store.audit_rows().await.expect("audit");
    assert_eq!(
        rows.iter().filter(|r| r.action == "login_failed").count(),
        5
    );
    assert!(rows.iter().any(|r| r.action == "login_refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_come_only_from_the_event_package() {
    let f = fixture().await;
    let (cookie, _) = login(&f.app, "aud1", "/queue").await;
    let ok = call(
        &f.app,
        "GET",
        &format!("/events/{}/files/stills/stop_line.jpg", f.new[0]),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(&ok.body[..2], &[0xFF, 0xD8], "a JPEG");
    let clip = call(
        &f.app,
        "GET",
        &format!("/events/{}/files/clip.mp4", f.new[0]),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(clip.body, b"not really an mp4");
    let mut req = Request::builder()
        .uri(format!("/events/{}/files/clip.mp4", f.new[0]))
        .header(header::COOKIE, &cookie)
        .header(header::RANGE, "bytes=4-9");
    req = req.header("x-test", "range");
    let res = f
        .app
        .clone()
        .oneshot(req.body(Body::empty()).expect("req"))
        .await
        .expect("res");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        axum::body::to_bytes(res.into_body(), 1024)
            .await
            .expect("body")
            .as_ref(),
        b"really"
    );
    for bad in [
        "../../../../etc/passwd",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/case.db",
        "/etc/passwd",
        "signature",
        "stills/../manifest.json",
    ] {
        let res = call(
            &f.app,
            "GET",
            &format!("/events/{}/files/{bad}", f.new[0]),
            Some(&cookie),
            None,
        )
        .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(!res.text().contains("root:"), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_what_people_type() {
    let f = fixture().await;
    let (cookie, csrf) = login(&f.app, "op1", "/queue").await;
    let evil = "<script>alert(1)</script> seen on camera";
    let form = format!(
        "reason_code=detection_error&reason_text={}&csrf={csrf}",
        enc(evil)
    );
    let res = call(
        &f.app,
        "POST",
        &format!("/events/{}/dismiss", f.new[1]),
        Some(&cookie),
        Some(&form),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let page = call(
        &f.app,
        "GET",
        &format!("/events/{}", f.new[1]),
        Some(&cookie),
        None,
    )
    .await;
    let html = page.text();
    assert!(!html.contains("<script>alert(1)"), "escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_and_the_public_lookup() {
    let f = fixture().await;
    let (cookie, _) = login(&f.app, "sup1", "/queue").await;
    let csv = call(&f.app, "GET", "/exports/decisions.csv", Some(&cookie), None).await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.text();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .expect("header")
        .starts_with("decision_id,event_id,kind"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows
        .iter()
        .any(|r| r.contains(&f.confirmed) && r.contains(",confirm,")));
    assert!(rows
        .iter()
        .any(|r| r.contains("emergency_vehicle") && r.contains("ambulance with lights on")));

    // The bundle: the package as signed, its decisions, its audit rows.
    let refused = call(
        &f.app,
        "GET",
        &format!("/events/{}/bundle", f.new[0]),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "only confirmed events"
    );
    let bundle = call(
        &f.app,
        "GET",
        &format!("/events/{}/bundle", f.confirmed),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(bundle.status, StatusCode::OK);
    let dir = tempfile::tempdir().expect("tmp");
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(bundle.body.as_slice());
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        entry.unpack(dir.path().join(&name)).expect("unpack");
        names.push(name);
    }
    assert_eq!(
        names,
        ["README.txt", "package.tar", "decisions.json", "audit.json"]
    );
    let mut ring = vigil_evidence::keys::Keyring::default();
    ring.insert(common::key().public());
    let report = vigil_evidence::verify_package(&dir.path().join("package.tar"), &ring);
    assert!(report.is_valid(), "{:?}", report.problems);
    let audit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("audit.json")).expect("audit"))
            .expect("json");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["ingest", "confirm", "export_bundle"]);

    // The public page shows the confirmed event of a plate, and only that.
    let found = call(&f.app, "GET", "/lookup?plate=12-B1+234.56", None, None).await;
    let html = found.text();
    assert_eq!(html.matches("/public/events/").count(), 1, "{html}");
    assert!(html.contains(&format!("/public/events/{}/sheet", f.confirmed)));
    assert!(
        !html.contains("ambulance"),
        "no decisions or reasons in public"
    );
    let sheet = call(
        &f.app,
        "GET",
        &format!("/public/events/{}/sheet", f.confirmed),
        None,
        None,
    )
    .await;
    assert_eq!(
        (sheet.status, &sheet.body[..2]),
        (StatusCode::OK, &[0xFF, 0xD8][..])
    );
    let hidden_sheet = call(
        &f.app,
        "GET",
        &format!("/public/events/{}/sheet", f.new[0]),
        None,
        None,
    )
    .await;
    assert_eq!(
        hidden_sheet.status,
        StatusCode::NOT_FOUND,
        "unconfirmed evidence is not public"
    );
    let none = call(&f.app, "GET", "/lookup?plate=99Z99999", None, None).await;
    assert!(none.text().contains("No confirmed violations"));
}

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let doc: serde_json::Value =
        serde_json::from_str(vigil_case::web::OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.replace("{*", "{")))
        .collect();
    assert_eq!(documented, routed);
}
