//! Package intake end to end: the edge's real uploader and HTTP sink send
//! real packages to the real server, stored in SQLite and (when a server
//! is reachable) PostgreSQL.

mod common;

use std::path::Path;
use std::time::Duration;

use vigil_case::server::{bind, serve};
use vigil_case::Store;
use vigil_evidence::keys::DeviceKey;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::uploader::{HttpSink, PackageSink, SendError, UploadConfig, Uploader};
use vigil_evidence::Spool;

const DEVICE: &str = "edge-case-1";

fn key() -> DeviceKey {
    DeviceKey::from_seed(DEVICE, [3; 32])
}

fn commit(spool: &mut Spool, camera: &str, n: u64) -> vigil_evidence::Spooled {
    let c = red_light_content(DEVICE, camera, n, 160, 90, b"clip bytes").expect("content");
    spool.commit(c, &key()).expect("commit").0
}

fn flip_copy(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(to, bytes).expect("write");
}

/// The whole intake story against one database.
async fn intake_story(db_url: &str, dir: &Path) {
    let store = Store::connect(db_url, &dir.join("media"))
        .await
        .expect("store");
    store
        .register_device(&key().public())
        .await
        .expect("register");
    let (listener, addr) = bind("127.0.0.1:0").await.expect("bind");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(store.clone(), listener, async {
        let _ = stop_rx.await;
    }));
    let url = format!("http://{addr}/api/v1/packages");

    let spool_dir = dir.join("spool");
    let (url2, spool_dir2) = (url.clone(), spool_dir.clone());
    // The edge side keeps to its own thread, driving the uploader's
    // futures on this runtime one at a time.
    let rt = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut spool = Spool::open(&spool_dir2, 1 << 30).expect("spool");
        let mut edge = Vec::new();
        for n in 1..=3 {
            edge.push(commit(&mut spool, "cam-a", n));
        }
        let sink = HttpSink::new(&url2, key(), Duration::from_secs(10)).expect("sink");
        let mut up = Uploader::new(sink, UploadConfig::default());
        let round = rt.block_on(up.run_once(&spool)).expect("round");
        assert_eq!(round.delivered.len(), 3, "{round:?}");

        let mut sink = HttpSink::new(&url2, key(), Duration::from_secs(10)).expect("sink");
        // A duplicate is an idempotent success.
        let again =
            std::fs::read(spool.delivered().expect("delivered")[1].path.clone()).expect("tar");
        rt.block_on(sink.send(&edge[1], &again))
            .expect("a duplicate is accepted");

        // A tampered package is refused, naming the reason.
        let p4 = commit(&mut spool, "cam-a", 4);
        let bad = spool_dir2.join("tampered.tar");
        flip_copy(&p4.path, &bad);
        let refused = rt
            .block_on(sink.send(&p4, &std::fs::read(&bad).expect("read")))
            .expect_err("tampered");
        let SendError::Rejected(reason) = refused else {
            panic!("expected a rejection, got {refused:?}")
        };
        assert!(reason.contains("package refused"), "{reason}");

        // An unknown device is not authenticated (and retried, not dropped).
        let mut stranger = HttpSink::new(
            &url2,
            DeviceKey::from_seed("intruder", [9; 32]),
            Duration::from_secs(10),
        )
        .expect("sink");
        let p4_tar = std::fs::read(&p4.path).expect("read");
        assert!(matches!(
            rt.block_on(stranger.send(&p4, &p4_tar)),
            Err(SendError::Retry(_))
        ));

        // Package 5 arrives while 4 is lost: stored, with a gap alert.
        let p5 = commit(&mut spool, "cam-a", 5);
        rt.block_on(sink.send(&p5, &std::fs::read(&p5.path).expect("read")))
            .expect("a package after a gap is stored");
        // Package 4 arrives late: it chains to 3 and 5, so it fills the gap.
        rt.block_on(sink.send(&p4, &p4_tar))
            .expect("a late package that fills its gap is stored");
        // Package 4 again, signed anew by the device but with other content,
        // cannot take the place that is now filled.
        let other = red_light_content(DEVICE, "cam-a", 40, 160, 90, b"other clip").expect("content");
        let forged_dir = spool_dir2.join("forged");
        let mut forged_spool = Spool::open(&forged_dir, 1 << 30).expect("spool");
        for n in 1..=4 {
            let c = if n == 4 { other.clone() } else {
                red_light_content(DEVICE, "cam-a", n, 160, 90, b"x").expect("content")
            };
            let (s, _) = forged_spool.commit(c, &key()).expect("commit");
            if n == 4 {
                let refused = rt.block_on(sink.send(&s, &std::fs::read(&s.path).expect("read"))).expect_err("replaced");
                assert!(matches!(refused, SendError::Rejected(ref r) if r.contains("does not fill a gap")), "{refused:?}");
            }
        }
    })
    .await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }

    assert_eq!(store.package_count().await.expect("count"), 5);
    let alerts = store.alerts().await.expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "sequence_gap" && a.detail.contains("after sequence 3 came 5")),
        "{alerts:?}"
    );
    let media = std::fs::read_dir(dir.join("media").join(DEVICE).join("cam-a"))
        .expect("media")
        .count();
    assert_eq!(media, 5, "every stored row has its media");
    assert!(alerts.iter().any(|a| a.kind == "gap_filled"), "{alerts:?}");
    // The dashboard's figures: the gap was seen and is closed now.
    let health = store.camera_health().await.expect("health");
    assert_eq!(health.len(), 1);
    let h = &health[0];
    assert_eq!(
        (h.camera.as_str(), h.packages, h.last_sequence, h.gaps),
        ("cam-a", 5, 5, 0)
    );
    assert_eq!(h.gap_alerts, 1);
    assert_eq!(h.other_alerts, 1, "the refused replacement of 4: {h:?}");
    assert_eq!(h.clock_sync.as_deref(), Some("replay"));
    assert!(
        alerts.iter().any(|a| a.kind == "out_of_order"),
        "{alerts:?}"
    );
    let _ = stop_tx.send(());
    server.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verifies_stores_deduplicates_and_alerts() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("case.db").display());
    intake_story(&url, dir.path()).await;
}

/// A fresh database on the local PostgreSQL server (the machine's, or one
/// `./dev.sh test` starts), dropped afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_verifies_stores_deduplicates_and_alerts() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = common::database("postgres", dir.path(), "ingest").await;
    intake_story(&db.url, dir.path()).await;
}
