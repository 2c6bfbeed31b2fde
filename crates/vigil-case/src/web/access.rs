//! Who may reach which route: one table, enforced by one middleware.
//!
//! The router refuses (404) any matched route that is missing here, so a
//! new route is unreachable until someone decides who may use it. The
//! table-driven test in `tests/web.rs` checks every role against every row.

use crate::auth::Role;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login page, the public lookup, health.
    Public,
    /// Edge devices, authenticated by their signed request in the handler.
    Device,
    /// Logged-in staff with one of these roles; POSTs carry the session's
    /// CSRF token.
    Roles(&'static [Role]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    /// The route as the router spells it (`{id}` for a parameter).
    pub path: &'static str,
    pub access: Access,
}

use Role::{Admin, Auditor, Operator, Supervisor};

const REVIEWERS: &[Role] = &[Operator, Supervisor];
const READERS: &[Role] = &[Operator, Supervisor, Auditor];
const OVERSIGHT: &[Role] = &[Supervisor, Auditor];
const ALL_STAFF: &[Role] = &[Operator, Supervisor, Auditor, Admin];

const fn rule(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

/// Every route of the case system.
pub const ROUTES: &[Rule] = &[
    rule("GET", "/", Access::Public),
    rule("GET", "/healthz", Access::Public),
    rule("GET", "/login", Access::Public),
    rule("POST", "/login", Access::Public),
    rule("GET", "/lookup", Access::Public),
    rule("GET", "/public/events/{id}/sheet", Access::Public),
    rule("GET", "/static/{file}", Access::Public),
    rule("GET", "/api/v1/openapi.json", Access::Public),
    rule("POST", "/api/v1/packages", Access::Device),
    rule("POST", "/logout", Access::Roles(ALL_STAFF)),
    rule("GET", "/queue", Access::Roles(READERS)),
    rule("GET", "/events/{id}", Access::Roles(READERS)),
    rule("GET", "/events/{id}/files/{*name}", Access::Roles(READERS)),
    rule("POST", "/events/{id}/plate", Access::Roles(REVIEWERS)),
    rule("POST", "/events/{id}/assign", Access::Roles(REVIEWERS)),
    rule("POST", "/events/{id}/confirm", Access::Roles(REVIEWERS)),
    rule("POST", "/events/{id}/dismiss", Access::Roles(REVIEWERS)),
    rule("POST", "/events/{id}/downgrade", Access::Roles(REVIEWERS)),
    rule("GET", "/approvals", Access::Roles(&[Supervisor])),
    rule(
        "POST",
        "/decisions/{id}/approve",
        Access::Roles(&[Supervisor]),
    ),
    rule(
        "POST",
        "/decisions/{id}/reject",
        Access::Roles(&[Supervisor]),
    ),
    rule(
        "POST",
        "/events/{id}/agency-notified",
        Access::Roles(&[Supervisor]),
    ),
    rule("GET", "/events/{id}/bundle", Access::Roles(OVERSIGHT)),
    rule("GET", "/exports/decisions.csv", Access::Roles(OVERSIGHT)),
    rule(
        "GET",
        "/dashboard",
        Access::Roles(&[Supervisor, Auditor, Admin]),
    ),
    rule("GET", "/audit", Access::Roles(&[Auditor, Admin])),
    rule("GET", "/admin/users", Access::Roles(&[Admin])),
    rule("POST", "/admin/users", Access::Roles(&[Admin])),
];

/// The rule of a matched route.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether `role` may use the route.
pub fn allows(rule: &Rule, role: Role) -> bool {
    match rule.access {
        Access::Public => true,
        Access::Device => false,
        Access::Roles(roles) => roles.contains(&role),
    }
}
