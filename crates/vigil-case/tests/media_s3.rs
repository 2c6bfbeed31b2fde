//! Media on S3-compatible object storage: the same ingest, review pages and
//! exports with the tars in a bucket. The S3 service is moto's server (an
//! S3 stand-in from PyPI, outside the project), which `./dev.sh test`
//! installs into target/s3-venv; VIGIL_TEST_MOTO names another binary.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ingest_packages, session};
use vigil_case::media::Media;
use vigil_case::{Role, Store};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_binary() -> String {
    std::env::var("VIGIL_TEST_MOTO").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/s3-venv/bin/moto_server"
        )
        .to_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_stored_in_a_bucket_are_served_back() {
    let moto = moto_binary();
    if !std::path::Path::new(&moto).exists() {
        panic!("{moto} is missing: ./dev.sh test installs moto[server] into target/s3-venv (or set VIGIL_TEST_MOTO)");
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let _server = Moto(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Create the bucket (moto takes unauthenticated requests).
    loop {
        match ureq::put(&format!("{endpoint}/vigil-media")).send_empty() {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("moto at {endpoint} did not come up: {e}"),
        }
    }
    // The same configuration an operator would give: URL and AWS_* variables.
    // SAFETY: this test binary has this one test; nothing reads the
    // environment concurrently.
    for (k, v) in [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        std::env::set_var(k, v);
    }
    let media = Media::from_location("s3://vigil-media/lang-son/case").expect("media");

    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("case.db").display());
    let store = Store::connect_with_media(&url, &dir.path().join("state"), media)
        .await
        .expect("store");
    store
        .register_device(&common::key().public())
        .await
        .expect("register");
    let ids = ingest_packages(&store, dir.path(), "cam-s3", 2, |_| false).await;

    // Rows point into the bucket; nothing was written to local media.
    let (_, locator) = store
        .package_files(&ids[0])
        .await
        .expect("row")
        .expect("stored");
    assert!(locator.starts_with("object:lang-son/case/"), "{locator}");
    let listed = ureq::get(&format!("{endpoint}/vigil-media?list-type=2"))
        .call()
        .expect("list")
        .body_mut()
        .read_to_string()
        .expect("xml");
    assert_eq!(listed.matches("<Key>lang-son/case/").count(), 2, "{listed}");
    let local_tars = walk(&dir.path().join("state"))
        .into_iter()
        .filter(|p| p.ends_with(".tar"))
        .count();
    assert_eq!(local_tars, 0);

    // The tar in the bucket is the package as sent: it verifies.
    let tar = store.media().get(&locator).await.expect("get");
    let mut ring = vigil_evidence::keys::Keyring::default();
    ring.insert(common::key().public());
    let report = vigil_evidence::verify_tar_bytes(std::path::Path::new("bucket"), &tar, &ring);
    assert!(report.is_valid(), "{:?}", report.problems);

    // Review and the public sheet read from the bucket too.
    store
        .confirm(&session("op1", Role::Operator), &ids[0])
        .await
        .expect("confirm");
    let app = vigil_case::web::router(store.clone());
    use tower::ServiceExt;
    let res = app
        .oneshot(
            axum::http::Request::builder()
                .uri(format!("/public/events/{}/sheet", ids[0]))
                .body(axum::body::Body::empty())
                .expect("req"),
        )
        .await
        .expect("res");
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}
