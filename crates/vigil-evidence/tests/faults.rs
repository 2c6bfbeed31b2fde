//! Fault tests with real processes and real files: a writer killed with
//! SIGKILL at random points, a receiver that is down and comes back, a
//! full disk (a small tmpfs), and the spool quota.
//!
//! The writer is the `vigil-evidence-writer` binary. The receiver is a small
//! HTTP server in the test standing in for the case system: it checks each
//! request's signature, verifies each package with `verify_package`, and
//! stores it by event id, counting duplicates and invalid packages.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use vigil_evidence::keys::{DeviceKey, Keyring};
use vigil_evidence::manifest::{sha256_hex, Manifest};
use vigil_evidence::package::{read_package, PackageContent, MANIFEST_FILE};
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::uploader::{
    check_authorization, decode_header, HEADER_CAMERA, HEADER_DEVICE, HEADER_EVENT_ID,
    HEADER_SEQUENCE,
};
use vigil_evidence::{
    verify_all, verify_package, HttpSink, Spool, SpoolError, UploadConfig, Uploader,
};

const WRITER: &str = env!("CARGO_BIN_EXE_vigil-evidence-writer");
/// The writer's defaults: device `edge-test-1`, key seed `[7; 32]`.
const DEVICE: &str = "edge-test-1";
const CLIP: &[u8] = b"a stand-in for a clip's MP4 bytes";
const PATH: &str = "/api/v1/packages";

fn key() -> DeviceKey {
    DeviceKey::from_seed(DEVICE, [7; 32])
}

fn keyring() -> Keyring {
    let mut k = Keyring::default();
    k.insert(key().public());
    k
}

/// The writer's template package (160x90 stills), generated once per run
/// of this test binary: rendering an evidence sheet takes about a second
/// in a debug build, committing takes milliseconds.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // Per process (a template from an older build must not be reused);
        // those of processes that are gone are removed.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("vigil-evidence-faults-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = root.join(format!("vigil-evidence-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("template dir");
        let clip = dir.join("clip.bin");
        std::fs::write(&clip, CLIP).expect("clip");
        let path = dir.join("template.tar");
        let out = writer_with(
            &dir.join("scratch-spool"),
            &path,
            &["--count", "0", "--clip"],
        )
        .arg(&clip)
        .output()
        .expect("run the writer");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(path.exists());
        path
    })
}

/// A writer command on `spool` with its template cache at `cache`.
fn writer_with(spool: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(WRITER);
    c.arg("--spool")
        .arg(spool)
        .arg("--template-cache")
        .arg(cache)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A writer command on `spool` using the shared template.
fn writer(spool: &Path, args: &[&str]) -> Command {
    writer_with(spool, template(), args)
}

/// `committed <camera> <sequence> <event_id>` lines (complete lines only).
fn committed(stdout: &[u8]) -> Vec<(String, u64, String)> {
    let text = String::from_utf8_lossy(stdout);
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            assert!(
                parts.len() == 4 && parts[0] == "committed",
                "odd line {l:?}"
            );
            (
                parts[1].to_owned(),
                parts[2].parse().expect("sequence"),
                parts[3].to_owned(),
            )
        })
        .collect()
}

fn run_writer(spool: &Path, args: &[&str]) -> Output {
    writer(spool, args).output().expect("run the writer")
}

/// SplitMix64, for reproducible kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ------------------------------------------------------------------ receiver

#[derive(Default)]
struct Received {
    /// event id -> stored package path.
    stored: BTreeMap<String, PathBuf>,
    /// (camera, sequence) in the order stored.
    arrivals: Vec<(String, u64)>,
    duplicates: usize,
    /// Why each invalid request was refused.
    invalid: Vec<String>,
    /// Answer 503 to everything while set.
    unavailable: bool,
    /// Requests answered, any status.
    requests: usize,
}

/// The case system's stand-in.
struct Receiver {
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<Received>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, store: &Path) -> Self {
        let server =
            Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind the test receiver"));
        let state = Arc::new(Mutex::new(Received::default()));
        let (s, st, dir) = (server.clone(), state.clone(), store.to_path_buf());
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                handle(request, &st, &dir);
            }
        });
        Self {
            server,
            state,
            thread: Some(thread),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Received> {
        self.state.lock().expect("receiver state")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_owned())
}

fn handle(mut request: tiny_http::Request, state: &Mutex<Received>, dir: &Path) {
    let (status, text) = answer(&mut request, state, dir);
    state.lock().expect("state").requests += 1;
    let _ = request.respond(tiny_http::Response::from_string(text).with_status_code(status));
}

fn answer(request: &mut tiny_http::Request, state: &Mutex<Received>, dir: &Path) -> (u16, String) {
    let mut body = Vec::new();
    if let Err(e) = request.as_reader().read_to_end(&mut body) {
        return (400, format!("reading the body: {e}"));
    }
    if state.lock().expect("state").unavailable {
        return (503, "down for maintenance".into());
    }
    let refuse = |status: u16, why: String| {
        state.lock().expect("state").invalid.push(why.clone());
        (status, why)
    };
    if request.method() != &tiny_http::Method::Post || request.url() != PATH {
        return refuse(404, format!("{} {}", request.method(), request.url()));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let auth = header(request, "Authorization").unwrap_or_default();
    let device = match check_authorization(&auth, "POST", PATH, &body, &keyring(), now, 300) {
        Ok(d) => d,
        Err(e) => return refuse(401, e),
    };
    let head = |name| header(request, name).and_then(|v| decode_header(&v).ok());
    let (Some(h_device), Some(camera), Some(sequence), Some(event)) = (
        head(HEADER_DEVICE),
        head(HEADER_CAMERA),
        head(HEADER_SEQUENCE),
        head(HEADER_EVENT_ID),
    ) else {
        return refuse(400, "an X-Vigil header is missing".into());
    };
    let incoming = dir.join("incoming");
    std::fs::create_dir_all(&incoming).expect("incoming dir");
    let temp = incoming.join(format!("{event}.tar"));
    std::fs::write(&temp, &body).expect("write incoming");
    let report = verify_package(&temp, &keyring());
    if !report.is_valid() {
        return refuse(422, report.problems.join("; "));
    }
    let Some(m) = report.manifest else {
        return refuse(422, "no manifest".into());
    };
    if (m.device_id.as_str(), m.camera.as_str(), m.event_id.as_str())
        != (device.as_str(), camera.as_str(), event.as_str())
        || h_device != device
        || sequence != m.sequence.to_string()
    {
        return refuse(400, "headers do not match the manifest".into());
    }
    let mut st = state.lock().expect("state");
    if st.stored.contains_key(&event) {
        st.duplicates += 1;
        return (409, format!("event {event} is already stored"));
    }
    let cam_dir = dir.join("store").join(&camera);
    std::fs::create_dir_all(&cam_dir).expect("store dir");
    let target = cam_dir.join(format!("{:012}-{event}.tar", m.sequence));
    std::fs::rename(&temp, &target).expect("store");
    st.stored.insert(event, target);
    st.arrivals.push((camera, m.sequence));
    (201, "stored".into())
}

/// Drives an uploader future to the end on a runtime of the test's own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn uploader(port: u16) -> Uploader<HttpSink> {
    let sink = HttpSink::new(
        &format!("http://127.0.0.1:{port}{PATH}"),
        key(),
        Duration::from_secs(10),
    )
    .expect("sink");
    Uploader::new(
        sink,
        UploadConfig {
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            poll: Duration::from_millis(20),
            jitter_seed: Some(11),
        },
    )
}

/// Delivers everything pending (the receiver is up).
fn deliver_all(spool: &Spool, up: &mut Uploader<HttpSink>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let round = block_on(up.run_once(spool)).expect("round");
        assert!(round.rejected.is_empty(), "rejected: {:?}", round.rejected);
        if round.waiting == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "delivery did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ------------------------------------------------------------- spool state

/// A package file seen in `pending/` or `delivered/`.
#[derive(Debug, Clone)]
struct Seen {
    camera: String,
    sequence: u64,
    event_id: String,
    path: PathBuf,
}

/// Every package in the spool, by the directory listing alone.
fn scan(spool: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    for state in ["pending", "delivered"] {
        let Ok(cams) = std::fs::read_dir(spool.join(state)) else {
            continue;
        };
        for cam in cams.flatten() {
            for f in std::fs::read_dir(cam.path()).expect("camera dir").flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let (seq, event) = name
                    .strip_suffix(".tar")
                    .and_then(|s| s.split_once('-'))
                    .unwrap_or_else(|| panic!("unexpected file {name} in {state}/"));
                out.push(Seen {
                    camera: cam.file_name().to_string_lossy().into_owned(),
                    sequence: seq.parse().expect("sequence"),
                    event_id: event.to_owned(),
                    path: f.path(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.camera, a.sequence).cmp(&(&b.camera, b.sequence)));
    out
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Per camera: sequences 1..=n, each once.
fn assert_no_gap(seen: &[Seen]) -> BTreeMap<String, u64> {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for s in seen {
        let prev = last.insert(s.camera.clone(), s.sequence).unwrap_or(0);
        assert_eq!(
            s.sequence,
            prev + 1,
            "camera {}: sequence {} after {prev}",
            s.camera,
            s.sequence
        );
    }
    last
}

/// A whole package: a readable tar whose manifest names the spool entry
/// and whose every listed file is there with its SHA-256 (the signature is
/// checked by the receiver, which verifies every package it gets).
fn assert_whole(s: &Seen) {
    let files = read_package(&s.path).unwrap_or_else(|e| panic!("{}: {e}", s.path.display()));
    let m = manifest_of(&s.path);
    assert_eq!(
        (&m.camera, m.sequence, &m.event_id),
        (&s.camera, s.sequence, &s.event_id)
    );
    assert_eq!(files.len(), m.files.len() + 2, "{}", s.path.display());
    for entry in &m.files {
        let bytes = &files
            .iter()
            .find(|(p, _)| *p == entry.path)
            .unwrap_or_else(|| panic!("{}: {} missing", s.path.display(), entry.path))
            .1;
        assert_eq!(sha256_hex(bytes), entry.sha256, "{}", s.path.display());
    }
}

/// A package's manifest.
fn manifest_of(tar: &Path) -> Manifest {
    let files = read_package(tar).expect("read package");
    let bytes = &files
        .iter()
        .find(|(p, _)| p == MANIFEST_FILE)
        .expect("manifest")
        .1;
    serde_json::from_slice(bytes).expect("manifest json")
}

// ---------------------------------------------------------------------- tests

#[test]
fn kill_9_at_random_points_loses_no_committed_event_and_the_chain_verifies() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool_dir = dir.path().join("spool");
    let port = free_port();
    let receiver = Receiver::start(port, &dir.path().join("receiver"));
    let mut up = uploader(port);
    let mut rng = Rng(0x5EED_0009);
    // event id -> (camera, sequence) of every printed commit.
    let mut printed: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut checked: BTreeSet<PathBuf> = BTreeSet::new();
    let mut next = 1u64;
    let (mut partials_seen, mut kills_mid_run) = (0, 0);
    const KILLS: usize = 60;
    for round in 0..KILLS {
        let mut child: Child = writer(
            &spool_dir,
            &["--cameras", "cam-a,cam-b", "--count", "1000000", "--start"],
        )
        .arg(next.to_string())
        .spawn()
        .expect("spawn the writer");
        // Log-uniform from 3 to 200 ms: kills during start-up and recovery
        // as often as during a stream of commits.
        let ms = (3f64.ln() + (200f64 / 3.0).ln() * rng.unit()).exp();
        std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(
            status.code().is_none(),
            "the writer ended by itself: {status}"
        );
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_end(&mut stdout)
            .expect("read stdout");
        let lines = committed(&stdout);
        for (camera, sequence, event) in &lines {
            let before = printed.insert(event.clone(), (camera.clone(), *sequence));
            // A repeated event (restart) got its committed package back.
            assert!(
                before
                    .as_ref()
                    .is_none_or(|b| *b == (camera.clone(), *sequence)),
                "event {event} committed twice: {before:?} and {sequence}"
            );
        }
        next += lines.len() as u64;
        if !lines.is_empty() {
            kills_mid_run += 1;
        }

        // What the kill left, before any restart cleans up.
        let partial = files_in(&spool_dir.join("tmp"));
        assert!(
            partial.iter().all(|n| n.ends_with(".part")),
            "unexpected files in tmp/: {partial:?}"
        );
        partials_seen += usize::from(!partial.is_empty());
        let seen = scan(&spool_dir);
        let last = assert_no_gap(&seen);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &seen {
            *count.entry(&s.event_id).or_default() += 1;
            if checked.insert(s.path.clone()) {
                assert_whole(s);
            }
        }
        for (event, (camera, sequence)) in &printed {
            assert_eq!(count.get(event.as_str()), Some(&1), "printed event {event}");
            assert!(last.get(camera).is_some_and(|l| l >= sequence));
        }
        // A head on disk trails by one at most (a kill between the rename
        // and the head write): a restart recovers it from the packages and
        // writes it back, so it never depends on a package the quota may free.
        for (camera, last) in &last {
            if let Ok(text) = std::fs::read(spool_dir.join("heads").join(format!("{camera}.json")))
            {
                let head: serde_json::Value = serde_json::from_slice(&text).expect("head json");
                let seq = head["sequence"].as_u64().expect("head sequence");
                assert!(
                    seq == *last || seq + 1 == *last,
                    "{camera}: head {seq}, last {last}"
                );
            }
        }
        // Deliver now and then, so restarts chain onto delivered packages too.
        if round % 10 == 9 {
            let spool = Spool::open(&spool_dir, 1 << 32).expect("open");
            deliver_all(&spool, &mut up);
        }
    }
    eprintln!(
        "{KILLS} kills: {} events committed, {kills_mid_run} kills after at least one commit, \
         {partials_seen} left a partial write in tmp/",
        printed.len()
    );
    assert!(printed.len() >= 30, "too few commits: {}", printed.len());

    // Restart once more: tmp/ is cleared, heads match the packages.
    let spool = Spool::open(&spool_dir, 1 << 32).expect("open");
    assert!(files_in(&spool_dir.join("tmp")).is_empty());
    let seen = scan(&spool_dir);
    let last = assert_no_gap(&seen);
    for (camera, last) in &last {
        assert_eq!(spool.head(camera), *last);
    }
    deliver_all(&spool, &mut up);
    assert!(spool.pending().expect("pending").is_empty());

    let r = receiver.state();
    assert_eq!(r.invalid, Vec::<String>::new(), "invalid packages received");
    assert_eq!(r.stored.len(), seen.len(), "every package stored once");
    for event in printed.keys() {
        assert!(
            r.stored.contains_key(event),
            "committed event {event} not delivered"
        );
    }
    // The receiver's packages, in sequence order per camera, form intact chains.
    let mut stored: Vec<PathBuf> = r.stored.values().cloned().collect();
    stored.sort();
    let problems: Vec<String> = verify_all(&stored, &keyring())
        .into_iter()
        .flat_map(|r| r.problems)
        .collect();
    assert_eq!(problems, Vec::<String>::new());
    let cameras: BTreeSet<&str> = seen.iter().map(|s| s.camera.as_str()).collect();
    assert_eq!(cameras.len(), 2);
}

#[test]
fn receiver_down_then_failing_then_up_delivers_everything_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool_dir = dir.path().join("spool");
    let out = run_writer(&spool_dir, &["--cameras", "n,e,s", "--count", "12"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(committed(&out.stdout).len(), 12);

    let port = free_port();
    let spool = Arc::new(Mutex::new(Spool::open(&spool_dir, 1 << 30).expect("open")));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (spool, stop) = (spool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut up = uploader(port);
            block_on(up.run(&spool, &stop));
        })
    };
    // Down: connection refused; nothing moves, the uploader keeps trying.
    std::thread::sleep(Duration::from_millis(800));
    let pending = |s: &Mutex<Spool>| s.lock().expect("spool").pending().expect("pending").len();
    assert_eq!(pending(&spool), 12);

    // Up but failing (503): still nothing delivered.
    let receiver = Receiver::start(port, &dir.path().join("receiver"));
    receiver.state().unavailable = true;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.state().requests < 3 {
        assert!(Instant::now() < deadline, "the uploader did not retry");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pending(&spool), 12);
    assert!(receiver.state().stored.is_empty());

    // Healthy: everything arrives.
    receiver.state().unavailable = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.state().stored.len() < 12 {
        assert!(Instant::now() < deadline, "not everything was delivered");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().expect("uploader thread");

    let r = receiver.state();
    assert_eq!(r.invalid, Vec::<String>::new());
    assert_eq!(r.duplicates, 0);
    for camera in ["n", "e", "s"] {
        let order: Vec<u64> = r
            .arrivals
            .iter()
            .filter(|(c, _)| c == camera)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(order, vec![1, 2, 3, 4], "camera {camera}");
    }
    assert_eq!(pending(&spool), 0);
}

#[test]
fn duplicates_count_as_delivered_and_a_corrupt_package_is_rejected_aside() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool_dir = dir.path().join("spool");
    let out = run_writer(&spool_dir, &["--count", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let receiver = Receiver::start(port, &dir.path().join("receiver"));
    let spool = Spool::open(&spool_dir, 1 << 30).expect("open");
    let mut up = uploader(port);
    // The receiver already has package 1 (a crash after sending, before
    // marking it delivered); package 3 rots on disk.
    let pending = spool.pending().expect("pending");
    let first = std::fs::read(&pending[0].path).expect("read");
    {
        let mut sink = HttpSink::new(
            &format!("http://127.0.0.1:{port}{PATH}"),
            key(),
            Duration::from_secs(5),
        )
        .expect("sink");
        block_on(vigil_evidence::PackageSink::send(
            &mut sink,
            &pending[0],
            &first,
        ))
        .expect("send");
    }
    let mut rotten = std::fs::read(&pending[2].path).expect("read");
    let n = rotten.len();
    rotten[n / 2] ^= 0x40;
    std::fs::write(&pending[2].path, rotten).expect("write");

    let round = block_on(up.run_once(&spool)).expect("round");
    assert_eq!(round.delivered.len(), 3);
    assert_eq!(round.rejected.len(), 1);
    let rejected = &round.rejected[0];
    assert_eq!(rejected.sequence, 3);
    assert!(rejected.path.starts_with(spool_dir.join("rejected/cam-a")));
    let reason =
        std::fs::read_to_string(rejected.path.with_extension("tar.reason")).expect("reason file");
    assert!(
        reason.contains("HTTP 422") && reason.contains("was modified"),
        "{reason}"
    );
    let r = receiver.state();
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.stored.len(), 3);
    assert_eq!(r.invalid.len(), 1);
    assert!(spool.pending().expect("pending").is_empty());
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(Self(dir.to_path_buf()));
        }
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false);
        assert!(
            !root,
            "mount tmpfs failed as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_gives_a_clear_error_leaves_nothing_partial_and_recovers() {
    let dir = tempfile::tempdir().expect("tmp");
    let mnt = dir.path().join("small-disk");
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "2m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    // Filler to delete later, to give the space back.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 600 << 10]).expect("filler");
    let spool_dir = mnt.join("spool");
    let out = run_writer(&spool_dir, &["--count", "1000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains(&*mnt.to_string_lossy()),
        "the error must name the path and say the disk is full: {stderr}"
    );
    let lines = committed(&out.stdout);
    assert!(lines.len() >= 3, "only {} commits fit", lines.len());

    // Nothing partial: no temp file, every package whole, heads consistent.
    assert_eq!(files_in(&spool_dir.join("tmp")), Vec::<String>::new());
    let spool = Spool::open(&spool_dir, 1 << 30).expect("reopen on a full disk");
    let seen = scan(&spool_dir);
    assert_eq!(seen.len(), lines.len());
    let last = assert_no_gap(&seen);
    assert_eq!(spool.head("cam-a"), last["cam-a"]);
    for s in &seen {
        let report = verify_package(&s.path, &keyring());
        assert!(report.is_valid(), "{:?}", report.problems);
    }
    drop(spool);

    // Space comes back: the sequence goes on without a gap.
    std::fs::remove_file(&filler).expect("free space");
    let start = (lines.len() + 1).to_string();
    let out = run_writer(&spool_dir, &["--count", "2", "--start", &start]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let more = committed(&out.stdout);
    let seqs: Vec<u64> = more.iter().map(|l| l.1).collect();
    let n = lines.len() as u64;
    assert_eq!(seqs, vec![n + 1, n + 2]);
    let all: Vec<PathBuf> = scan(&spool_dir).into_iter().map(|s| s.path).collect();
    let problems: Vec<String> = verify_all(&all, &keyring())
        .into_iter()
        .flat_map(|r| r.problems)
        .collect();
    assert_eq!(problems, Vec::<String>::new());
}

/// A committed package's content again, as event `event_id` (for an
/// in-process commit of a known size).
fn content_like(tar: &Path, track_id: u64) -> PackageContent {
    let files = read_package(tar).expect("read");
    let mut manifest = manifest_of(tar);
    let entries = std::mem::take(&mut manifest.files);
    manifest.violation.track_id = track_id;
    manifest.event_id =
        vigil_evidence::package::event_id(DEVICE, "cam-a", track_id, "red_light", 0);
    let files = entries
        .into_iter()
        .map(|e| {
            let bytes = files
                .iter()
                .find(|(p, _)| *p == e.path)
                .expect("file")
                .1
                .clone();
            (e.path, e.role, bytes)
        })
        .collect();
    PackageContent { manifest, files }
}

#[test]
fn quota_frees_delivered_packages_oldest_first_and_never_an_undelivered_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool_dir = dir.path().join("spool");
    // Measure one package, then set the quota to 6.5 packages.
    let out = run_writer(&spool_dir, &["--count", "2"]);
    assert!(out.status.success());
    let size = scan(&spool_dir)[1].path.metadata().expect("size").len();
    let quota = size * 13 / 2;
    let q = quota.to_string();
    let commit = |start: u64, count: u64| {
        run_writer(
            &spool_dir,
            &[
                "--quota",
                &q,
                "--start",
                &start.to_string(),
                "--count",
                &count.to_string(),
            ],
        )
    };
    let sequences = |state: &str| -> Vec<u64> {
        let mut v: Vec<u64> = files_in(&spool_dir.join(state).join("cam-a"))
            .iter()
            .filter_map(|n| n.split_once('-').and_then(|(s, _)| s.parse().ok()))
            .collect();
        v.sort();
        v
    };
    assert!(commit(3, 2).status.success());
    let spool = Spool::open(&spool_dir, quota).expect("open");
    assert!(!spool.usage().expect("usage").near_full);
    // Delivered in order, with time between, so "oldest" is unambiguous.
    for p in spool.pending().expect("pending").iter().take(3) {
        spool.mark_delivered(p).expect("mark");
    }
    // One process writes a spool at a time: let the writer have it.
    drop(spool);
    assert!(commit(5, 3).status.success());
    // 7 packages would exceed 6.5: the oldest delivered one went.
    assert_eq!(sequences("delivered"), vec![2, 3]);
    assert_eq!(sequences("pending"), vec![4, 5, 6, 7]);
    assert!(commit(8, 2).status.success());
    assert_eq!(sequences("delivered"), Vec::<u64>::new());
    assert_eq!(sequences("pending"), vec![4, 5, 6, 7, 8, 9]);
    let usage = Spool::open(&spool_dir, quota)
        .expect("open")
        .usage()
        .expect("usage");
    assert!(usage.near_full, "{usage:?}");
    assert_eq!(usage.pending_packages, 6);

    // Undelivered packages alone would exceed the quota: refused, nothing written.
    let out = commit(10, 1);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spool full") && stderr.contains("never deleted"),
        "{stderr}"
    );
    let mut spool = Spool::open(&spool_dir, quota).expect("open");
    // A copy: the original is moved when it is delivered below.
    let template = &dir.path().join("like.tar");
    std::fs::copy(&spool.pending().expect("pending")[0].path, template).expect("copy");
    match spool.commit(content_like(template, 10), &key()) {
        Err(SpoolError::Full {
            pending, quota: q, ..
        }) => assert_eq!((pending, q), (6 * size, quota)),
        other => panic!("expected SpoolError::Full, got {other:?}"),
    }
    assert_eq!(sequences("pending"), vec![4, 5, 6, 7, 8, 9]);
    assert!(files_in(&spool_dir.join("tmp")).is_empty());

    // One delivered: room again, and it is the one freed.
    let oldest = spool.pending().expect("pending")[0].clone();
    spool.mark_delivered(&oldest).expect("mark");
    let (committed, _) = spool
        .commit(content_like(template, 10), &key())
        .expect("commit");
    assert_eq!(committed.sequence, 10);
    assert_eq!(sequences("delivered"), Vec::<u64>::new());
    assert_eq!(sequences("pending"), vec![5, 6, 7, 8, 9, 10]);
}

#[test]
fn the_template_writer_makes_what_red_light_content_makes() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool_dir = dir.path().join("spool");
    let out = run_writer(
        &spool_dir,
        &["--cameras", "cam-a,cam-b", "--start", "5", "--count", "1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_writer = manifest_of(&scan(&spool_dir)[0].path);
    let direct = red_light_content(DEVICE, "cam-b", 5, 160, 90, CLIP)
        .expect("content")
        .seal(1, None, &key())
        .expect("seal")
        .manifest;
    let strip = |mut m: Manifest| {
        m.times.packaged_at_us = 0;
        m
    };
    assert_eq!(strip(from_writer), strip(direct));
}
