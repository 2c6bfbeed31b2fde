//! Sustained package ingest (a benchmark, not a test): edge uploaders
//! send real signed packages over HTTP to the real case server for a fixed
//! time, on SQLite and on PostgreSQL; every package is fully verified and
//! stored (media fsynced, row and audit row committed) before its 201.
//!
//! ```text
//! cargo bench -p vigil-case --bench ingest -- [--seconds 60] [--clients 4]
//!     [--backend sqlite|postgres|both] [--clip-kb 1024] [--json OUT]
//! ```
//!
//! Each client is one camera of one device, sending in sequence order as
//! the edge's uploader does; the packages are 3 stills at 1280x720, a plate
//! crop, an evidence sheet and a clip of `--clip-kb` incompressible bytes.
//! Clients seal their packages on the same 2 cores as the server, so the
//! figures are a lower bound of what a server with remote edges sustains.
//! Reports packages/s, MB/s, and latency p50/p90/p99/max per backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Executor;
use vigil_case::web::{bind, serve_app, App, WebOptions};
use vigil_case::Store;
use vigil_evidence::keys::DeviceKey;
use vigil_evidence::package::event_id;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::uploader::{HttpSink, PackageSink};
use vigil_evidence::Spooled;

struct Options {
    seconds: u64,
    clients: usize,
    backends: Vec<String>,
    clip_kb: usize,
    json: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let backend = value("--backend").unwrap_or_else(|| "both".into());
    Options {
        seconds: value("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
        clients: value("--clients").and_then(|v| v.parse().ok()).unwrap_or(4),
        backends: match backend.as_str() {
            "both" => vec!["sqlite".into(), "postgres".into()],
            b => vec![b.to_owned()],
        },
        clip_kb: value("--clip-kb")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024),
        json: value("--json"),
    }
}

#[derive(Debug, serde::Serialize)]
struct Figures {
    backend: String,
    seconds: f64,
    clients: usize,
    packages: usize,
    package_kb: f64,
    errors: usize,
    packages_per_s: f64,
    mb_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Pseudo-random bytes (xorshift): a clip does not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn database(
    backend: &str,
    dir: &std::path::Path,
) -> Option<(String, Option<(String, String)>)> {
    if backend == "sqlite" {
        return Some((
            format!("sqlite://{}?mode=rwc", dir.join("case.db").display()),
            None,
        ));
    }
    sqlx::any::install_default_drivers();
    let admin_url = std::env::var("VIGIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = match sqlx::AnyPool::connect(&admin_url).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("postgres: {admin_url} not reachable ({e}); skipped");
            return None;
        }
    };
    let db = format!("vigil_bench_{}", std::process::id());
    let _ = admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await;
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .ok()?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    Some((format!("{base}/{db}"), Some((admin_url.clone(), db))))
}

fn run_backend(backend: &str, o: &Options) -> Option<Figures> {
    let dir = tempfile::tempdir().ok()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .ok()?;
    let (url, drop_db) = rt.block_on(database(backend, dir.path()))?;
    let key_of = |i: usize| DeviceKey::from_seed(&format!("bench-edge-{i}"), [i as u8 + 1; 32]);
    let keys: Vec<DeviceKey> = (0..o.clients).map(key_of).collect();
    let store = rt
        .block_on(Store::connect(&url, &dir.path().join("media")))
        .ok()?;
    for k in &keys {
        rt.block_on(store.register_device(&k.public())).ok()?;
    }
    let (listener, addr) = rt.block_on(bind("127.0.0.1:0")).ok()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = App {
        store: store.clone(),
        limiter: Default::default(),
        options: WebOptions::default(),
    };
    let server = rt.spawn(serve_app(app, listener, async {
        let _ = stop_rx.await;
    }));
    let url_ingest = format!("http://{addr}/api/v1/packages");

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let (stop, url, clip_kb) = (stop.clone(), url_ingest.clone(), o.clip_kb);
            // Each edge device sends one package at a time, as the uploader does.
            let edge = rt.handle().clone();
            std::thread::spawn(move || {
                let camera = format!("cam-{i}");
                let device = key.device_id.clone();
                let template = red_light_content(
                    &device,
                    &camera,
                    0,
                    1280,
                    720,
                    &noise(clip_kb << 10, i as u64 + 7),
                )
                .expect("template package");
                let signer = DeviceKey::from_seed(&device, [i as u8 + 1; 32]);
                let mut sink = HttpSink::new(&url, signer, Duration::from_secs(30)).expect("sink");
                let (mut latencies, mut errors, mut bytes) = (Vec::new(), 0usize, 0usize);
                let mut prev: Option<String> = None;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut content = template.clone();
                    let at_us = content.manifest.times.event_at_us + n as i64 * 1_000_000;
                    content.manifest.times.event_at_us = at_us;
                    content.manifest.violation.track_id = n;
                    content.manifest.event_id = event_id(&device, &camera, n, "red_light", at_us);
                    let sealed = content.seal(n, prev.clone(), &key).expect("seal");
                    let tar = sealed.to_tar().expect("tar");
                    let spooled = Spooled {
                        camera: camera.clone(),
                        sequence: n,
                        event_id: sealed.manifest.event_id.clone(),
                        path: Default::default(),
                        bytes: tar.len() as u64,
                    };
                    let t = Instant::now();
                    match edge.block_on(sink.send(&spooled, &tar)) {
                        Ok(()) => {
                            latencies.push(t.elapsed().as_secs_f64() * 1e3);
                            bytes += tar.len();
                            prev = Some(sealed.manifest_sha256());
                        }
                        Err(e) => {
                            errors += 1;
                            eprintln!("{camera} #{n}: {e:?}");
                            n -= 1;
                        }
                    }
                }
                (latencies, errors, bytes)
            })
        })
        .collect();
    // Progress, once a second.
    while started.elapsed() < Duration::from_secs(o.seconds) {
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(count) = rt.block_on(store.package_count()) {
            eprint!(
                "\r{backend}: {:>3} s, {count} packages stored",
                started.elapsed().as_secs()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let (mut errors, mut bytes) = (0, 0);
    for h in handles {
        let (l, e, b) = h.join().ok()?;
        latencies.extend(l);
        errors += e;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();
    let stored = rt.block_on(store.package_count()).ok()? as usize;
    assert_eq!(
        stored,
        latencies.len(),
        "every acknowledged package is stored"
    );
    let audit = rt.block_on(store.verify_audit()).ok()?;
    assert!(audit.is_intact(), "{:?}", audit.problems);
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    drop(store);
    if let Some((admin, db)) = drop_db {
        rt.block_on(async {
            if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                let _ = pool
                    .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
                    .await;
            }
        });
    }
    latencies.sort_by(f64::total_cmp);
    let n = latencies.len();
    Some(Figures {
        backend: backend.to_owned(),
        seconds: elapsed,
        clients: o.clients,
        packages: n,
        package_kb: if n > 0 {
            bytes as f64 / n as f64 / 1024.0
        } else {
            0.0
        },
        errors,
        packages_per_s: n as f64 / elapsed,
        mb_per_s: bytes as f64 / elapsed / 1e6,
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}

fn main() {
    let o = options();
    let mut all = Vec::new();
    for backend in &o.backends {
        match run_backend(backend, &o) {
            Some(f) => all.push(f),
            None => eprintln!("{backend}: not run"),
        }
    }
    println!(
        "{:<9} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "backend",
        "seconds",
        "packages",
        "pkg/s",
        "MB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors"
    );
    for f in &all {
        println!(
            "{:<9} {:>7.1} {:>8} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>6}",
            f.backend,
            f.seconds,
            f.packages,
            f.packages_per_s,
            f.mb_per_s,
            f.p50_ms,
            f.p90_ms,
            f.p99_ms,
            f.max_ms,
            f.errors
        );
    }
    if let Some(f) = all.first() {
        println!(
            "({} clients, {:.0} KiB per package)",
            f.clients, f.package_kb
        );
    }
    if let Some(path) = &o.json {
        let text = serde_json::to_string_pretty(&all).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {path}: {e}");
        }
    }
}
