//! HTTP MJPEG: a live source served by a test server that dies and returns.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use vigil_core::config::Pacing;
use vigil_video::{Backoff, CameraIngest, IngestConfig, IngestEvent, SourceKind, SourceSpec};

/// A multipart/x-mixed-replace server on 127.0.0.1 sending `jpegs` in a loop at 10 fps.
struct MjpegServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MjpegServer {
    fn start(port: u16, jpegs: Arc<Vec<Vec<u8>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the test server");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut clients: Vec<JoinHandle<()>> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (jpegs, flag) = (Arc::clone(&jpegs), Arc::clone(&flag));
                        clients.push(std::thread::spawn(move || serve(conn, &jpegs, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            drop(listener);
            for c in clients {
                let _ = c.join();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MjpegServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(mut conn: TcpStream, jpegs: &[Vec<u8>], stop: &AtomicBool) {
    let mut request = [0u8; 2048];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.read(&mut request);
    let head = "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    for jpeg in jpegs.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let part = format!(
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let ok = conn.write_all(part.as_bytes()).is_ok()
            && conn.write_all(jpeg).is_ok()
            && conn.write_all(b"\r\n").is_ok();
        if !ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn jpegs(dir: &std::path::Path) -> Arc<Vec<Vec<u8>>> {
    let pattern = dir.join("f-%02d.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=10",
        "-frames:v",
        "10",
        pattern.to_str().expect("utf-8"),
    ]);
    Arc::new(
        (1..=10)
            .map(|i| std::fs::read(dir.join(format!("f-{i:02}.jpg"))).expect("jpeg"))
            .collect(),
    )
}

/// Waits for an event matching `pred`, collecting frames meanwhile.
fn wait_for(
    ingest: &CameraIngest,
    limit: Duration,
    pred: impl Fn(&IngestEvent) -> bool,
) -> IngestEvent {
    let deadline = Instant::now() + limit;
    loop {
        while ingest.frames().try_recv().is_ok() {}
        if let Ok(e) = ingest.events().recv_timeout(Duration::from_millis(50)) {
            if pred(&e) {
                return e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no matching event within {limit:?}"
        );
    }
}

#[test]
fn http_mjpeg_streams_reconnects_and_records_the_gap() {
    let dir = tempfile::tempdir().expect("tmp");
    let frames = jpegs(dir.path());
    let port = free_port();
    let mut server = MjpegServer::start(port, Arc::clone(&frames));
    let backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(800),
        jitter: 0.2,
    };
    let spec = SourceSpec {
        camera: "gate".into(),
        kind: SourceKind::HttpMjpeg {
            url: format!("http://127.0.0.1:{port}/video"),
        },
        pacing: Pacing::Realtime,
        recorded_at_us: None,
        io_timeout: Duration::from_secs(2),
    };
    let ingest = CameraIngest::spawn(
        spec,
        IngestConfig {
            backoff,
            ..lossless()
        },
    );

    wait_for(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Connected { .. })
    });
    // Let some frames flow, then check them.
    std::thread::sleep(Duration::from_millis(700));
    let first: Vec<_> = ingest.frames().try_iter().collect();
    assert!(first.len() >= 3, "only {} frames in 0.7 s", first.len());
    assert!(first
        .iter()
        .all(|f| (f.width, f.height) == (320, 240) && f.rgb.is_some()));
    assert!(first.windows(2).all(|w| w[1].meta.seq == w[0].meta.seq + 1));
    assert!(first
        .windows(2)
        .all(|w| w[1].meta.time_us > w[0].meta.time_us));

    server.kill();
    let killed = Instant::now();
    wait_for(&ingest, Duration::from_secs(10), |e| {
        matches!(e, IngestEvent::Disconnected { .. })
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let restarted = Instant::now();
    let _server = MjpegServer::start(port, frames);
    let IngestEvent::Gap(gap) = wait_for(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Gap(_))
    }) else {
        unreachable!()
    };
    let resumed_after = restarted.elapsed();
    assert!(
        resumed_after <= backoff.bound() + Duration::from_secs(2),
        "resumed {resumed_after:?} after the restart; backoff bound {:?}",
        backoff.bound()
    );
    let outage = gap.end_us - gap.start_us;
    assert!(
        outage >= 1_500_000,
        "gap of {outage} µs is shorter than the outage"
    );
    assert!(
        outage as u128 <= (killed.elapsed().as_micros() + 1_000_000),
        "gap {outage} µs too long"
    );
    let stats = ingest.stats();
    assert_eq!(stats.gaps, vec![gap]);
    assert!(stats.reconnects >= 1);
    // Sequence numbers continue across the reconnect.
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<_> = ingest.frames().try_iter().collect();
    assert!(!after.is_empty());
    assert!(after.windows(2).all(|w| w[1].meta.seq == w[0].meta.seq + 1));
}
