//! Operators' identities: users with argon2id password hashes, four roles,
//! login sessions and a login rate limit.
//!
//! A session is a random 256-bit token in an HttpOnly, SameSite=Strict
//! cookie; the database keeps only its SHA-256, so a copy of the database
//! does not hand out live sessions. Each session has its own CSRF token,
//! which every form posts back.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::Row;
use vigil_evidence::manifest::sha256_hex;

use crate::audit::AuditEntry;
use crate::store::{now_us, Store, StoreError};

/// What a user may do; the route table in `web::access` says where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reviews events: edits plates, confirms, proposes dismissals.
    Operator,
    /// An operator who also approves or rejects other people's dismissals
    /// and downgrades, and exports.
    Supervisor,
    /// Reads everything, the audit log included; changes nothing.
    Auditor,
    /// Manages users; does not review events.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Operator, Role::Supervisor, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: use operator, supervisor, auditor or admin")
            })
    }
}

/// A logged-in user, as a request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

/// How long a session lasts: one working shift.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadInput(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Store(e.into())
    }
}

/// A random token, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to check against when the user does not exist, so that a wrong
/// user name costs as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// User names are plain: letters, digits, `.`, `_`, `-`, 2 to 64 of them.
pub fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadInput(format!(
            "user name {name:?}: use 2 to 64 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Minimum password length.
pub const MIN_PASSWORD_LEN: usize = 10;

impl Store {
    /// Creates a user (or replaces their password and role), audited as
    /// done by `actor`.
    pub async fn upsert_user(
        &self,
        actor: &str,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(), AuthError> {
        check_username(username)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(AuthError::BadInput(format!(
                "password for {username}: at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let phc = hash_password(password)?;
        let mut tx = self.begin_audited().await?;
        let existed = sqlx::query("SELECT role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(tx.conn())
            .await?
            .is_some();
        if existed {
            sqlx::query(
                "UPDATE users SET password_hash = $1, role = $2, active = 1 WHERE username = $3",
            )
            .bind(&phc)
            .bind(role.as_str())
            .bind(username)
            .execute(tx.conn())
            .await?;
            // A new password ends the user's sessions.
            sqlx::query("DELETE FROM sessions WHERE username = $1")
                .bind(username)
                .execute(tx.conn())
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO users (username, password_hash, role, active, created_at_us) \
                 VALUES ($1, $2, $3, 1, $4)",
            )
            .bind(username)
            .bind(&phc)
            .bind(role.as_str())
            .bind(now_us())
            .execute(tx.conn())
            .await?;
        }
        tx.record(AuditEntry::new(
            actor,
            if existed {
                "user_updated"
            } else {
                "user_created"
            },
            format!("user:{username}"),
            format!("role {role}"),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every user and role, by name.
    pub async fn users(&self) -> Result<Vec<(String, Role, bool)>, AuthError> {
        let rows = sqlx::query("SELECT username, role, active FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let role: String = r.try_get(1)?;
            let active: i64 = r.try_get(2)?;
            out.push((
                r.try_get(0)?,
                role.parse().map_err(AuthError::BadInput)?,
                active != 0,
            ));
        }
        Ok(out)
    }

    /// Checks a password; on success opens a session and returns its
    /// cookie token. Both outcomes are audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<Option<(String, Session)>, AuthError> {
        let row =
            sqlx::query("SELECT password_hash, role FROM users WHERE username = $1 AND active = 1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        let (phc, role) = match &row {
            Some(r) => (r.try_get::<String, _>(0)?, Some(r.try_get::<String, _>(1)?)),
            None => (decoy_hash().to_owned(), None),
        };
        // argon2 is deliberately slow: keep it off the async workers.
        let (pw, hash) = (password.to_owned(), phc.clone());
        let matches = tokio::task::spawn_blocking(move || password_matches(&pw, &hash))
            .await
            .unwrap_or(false);
        let role = match (matches, role) {
            (true, Some(role)) => role.parse::<Role>().map_err(AuthError::BadInput)?,
            _ => {
                let target = if check_username(username).is_ok() {
                    format!("user:{username}")
                } else {
                    "user:?".to_owned()
                };
                self.audit(AuditEntry::new("public", "login_failed", target, client))
                    .await?;
                return Ok(None);
            }
        };
        let token = random_token();
        let session = Session {
            username: username.to_owned(),
            role,
            csrf_token: random_token(),
        };
        let now = now_us();
        let mut tx = self.begin_audited().await?;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, username, csrf_token, created_at_us, expires_at_us) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(username)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(now + SESSION_TTL.as_micros() as i64)
        .execute(tx.conn())
        .await?;
        tx.record(AuditEntry::new(
            username,
            "login",
            format!("user:{username}"),
            client,
        ))
        .await?;
        tx.commit().await?;
        Ok(Some((token, session)))
    }

    /// The live session of a cookie token, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, AuthError> {
        let row = sqlx::query(
            "SELECT s.username, u.role, s.csrf_token FROM sessions s \
             JOIN users u ON u.username = s.username \
             WHERE s.token_sha256 = $1 AND s.expires_at_us > $2 AND u.active = 1",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(now_us())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: String = r.try_get(1)?;
        Ok(Some(Session {
            username: r.try_get(0)?,
            role: role.parse().map_err(AuthError::BadInput)?,
            csrf_token: r.try_get(2)?,
        }))
    }

    pub async fn logout(&self, token: &str, username: &str) -> Result<(), AuthError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(sha256_hex(token.as_bytes()))
            .execute(tx.conn())
            .await?;
        tx.record(AuditEntry::new(
            username,
            "logout",
            format!("user:{username}"),
            "",
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Failed logins allowed per client address and per user name in
/// [`LoginLimiter::WINDOW`] before further attempts are refused.
#[derive(Debug, Clone, Default)]
pub struct LoginLimiter {
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginLimiter {
    pub const MAX_FAILURES: usize = 5;
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);

    fn keys(client: &str, username: &str) -> [String; 2] {
        [format!("client:{client}"), format!("user:{username}")]
    }

    /// How long until `client` may try `username` again, if it must wait.
    pub fn retry_after(&self, client: &str, username: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(client, username)
            .iter()
            .filter_map(|k| {
                let q = map.get_mut(k)?;
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > Self::WINDOW)
                {
                    q.pop_front();
                }
                (q.len() >= Self::MAX_FAILURES)
                    .then(|| {
                        q.front()
                            .map(|t| Self::WINDOW.saturating_sub(now.duration_since(*t)))
                    })
                    .flatten()
            })
            .max()
    }

    pub fn failed(&self, client: &str, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(client, username) {
            map.entry(k).or_default().push_back(Instant::now());
        }
    }

    pub fn succeeded(&self, client: &str, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("user:{username}"));
        let _ = client;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &a));
        assert!(!password_matches("correct horse batterz", &a));
        assert!(!password_matches("x", "not a phc string"));
    }

    #[test]
    fn the_limiter_refuses_after_five_failures_per_user_and_per_client() {
        let l = LoginLimiter::default();
        for _ in 0..LoginLimiter::MAX_FAILURES {
            assert!(l.retry_after("1.2.3.4", "an").is_none());
            l.failed("1.2.3.4", "an");
        }
        assert!(l.retry_after("1.2.3.4", "an").is_some());
        // Another client guessing the same user is refused too...
        assert!(l.retry_after("5.6.7.8", "an").is_some());
        // ...and the same client guessing another user.
        assert!(l.retry_after("1.2.3.4", "binh").is_some());
        assert!(l.retry_after("5.6.7.8", "binh").is_none());
    }

    #[test]
    fn roles_round_trip_and_unknown_ones_are_named() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().unwrap_err().contains("\"root\""));
        assert!(check_username("../x").is_err());
        assert!(check_username("lan.nguyen").is_ok());
    }
}
