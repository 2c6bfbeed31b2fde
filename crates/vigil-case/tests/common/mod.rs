//! Shared test set-up: a store on SQLite or a fresh PostgreSQL database,
//! users of every role, and real signed packages ingested the way an edge
//! sends them.
#![allow(dead_code)]

use std::path::Path;

use vigil_case::auth::Session;
use vigil_case::{ingest, IngestRequest, Role, Store};
use vigil_evidence::keys::DeviceKey;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::uploader::authorization;
use vigil_evidence::Spool;

pub const DEVICE: &str = "edge-review-1";
pub const PASSWORD: &str = "a long test password";

pub fn key() -> DeviceKey {
    DeviceKey::from_seed(DEVICE, [5; 32])
}

/// A database URL for `backend` ("sqlite" or "postgres") and a guard that
/// drops the PostgreSQL database afterwards.
pub struct Db {
    pub url: String,
    drop_url: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, db)) = self.drop_url.take() {
            // Best effort, on a runtime of its own (Drop is synchronous).
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        use sqlx::Executor;
                        if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                            let _ = pool
                                .execute(
                                    format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str(),
                                )
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub async fn database(backend: &str, dir: &Path, name: &str) -> Db {
    match backend {
        "sqlite" => Db {
            url: format!("sqlite://{}?mode=rwc", dir.join("case.db").display()),
            drop_url: None,
        },
        _ => {
            use sqlx::Executor;
            sqlx::any::install_default_drivers();
            let admin_url = std::env::var("VIGIL_TEST_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} is not reachable ({e}); start it (./dev.sh test does) or set VIGIL_TEST_POSTGRES")
            });
            let db = format!("vigil_{name}_{}", std::process::id());
            admin
                .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
                .await
                .expect("drop");
            admin
                .execute(format!("CREATE DATABASE {db}").as_str())
                .await
                .expect("create");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            Db {
                url: format!("{base}/{db}"),
                drop_url: Some((admin_url.clone(), db)),
            }
        }
    }
}

/// A store with the test device registered and one user per role:
/// op1, op2 (operators), sup1, sup2 (supervisors), aud1, adm1.
pub async fn store(url: &str, dir: &Path) -> Store {
    let store = Store::connect(url, &dir.join("media"))
        .await
        .expect("store");
    store
        .register_device(&key().public())
        .await
        .expect("register");
    for (name, role) in [
        ("op1", Role::Operator),
        ("op2", Role::Operator),
        ("sup1", Role::Supervisor),
        ("sup2", Role::Supervisor),
        ("aud1", Role::Auditor),
        ("adm1", Role::Admin),
    ] {
        store
            .upsert_user("setup", name, PASSWORD, role)
            .await
            .expect("user");
    }
    store
}

pub fn session(name: &str, role: Role) -> Session {
    Session {
        username: name.into(),
        role,
        csrf_token: "unused".into(),
    }
}

/// Commits `count` packages of `camera` in a spool under `dir` and ingests
/// them as the edge would; returns their event ids. `blue` gives package
/// `n` a state-agency plate when `blue(n)`.
pub async fn ingest_packages(
    store: &Store,
    dir: &Path,
    camera: &str,
    count: u64,
    blue: impl Fn(u64) -> bool,
) -> Vec<String> {
    let spool_dir = dir.join(format!("spool-{camera}"));
    let mut spool = Spool::open(&spool_dir, 1 << 30).expect("spool");
    let mut ids = Vec::new();
    for n in 1..=count {
        let mut content =
            red_light_content(DEVICE, camera, n, 320, 180, b"not really an mp4").expect("content");
        if blue(n) {
            if let Some(p) = content.manifest.plate.as_mut() {
                p.text = "80A-123.45".into();
                p.colour = Some("blue".into());
            }
        }
        let (spooled, manifest) = spool.commit(content, &key()).expect("commit");
        let body = std::fs::read(&spooled.path).expect("tar");
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let path = "/api/v1/packages";
        let auth = authorization(&key(), "POST", path, ts, &body);
        let outcome = ingest(
            store,
            IngestRequest {
                authorization: Some(&auth),
                path,
                body: &body,
            },
        )
        .await
        .expect("ingest");
        assert_eq!(outcome.status, 201, "{outcome:?}");
        ids.push(manifest.event_id);
    }
    ids
}
