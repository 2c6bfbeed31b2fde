//! Delivery: the uploader takes committed packages out of the spool and
//! hands them to a [`PackageSink`], in sequence order per camera, until the
//! receiver has acknowledged every one.
//!
//! - Per camera, packages go strictly in sequence: a package that could not
//!   be delivered holds back every later one of its camera (other cameras
//!   go on).
//! - A package is moved to `delivered/` ([`Spool::mark_delivered`]) only
//!   after the sink acknowledged it. A crash in between sends it again,
//!   which the receiver answers as a duplicate: delivery is at least once,
//!   storage exactly once (by event id).
//! - Transient failures ([`SendError::Retry`]) back off exponentially with
//!   full jitter, per camera (`delay = uniform(0, min(max, base * 2^n))`).
//! - A package the receiver will never take ([`SendError::Rejected`]) is
//!   moved to `rejected/<camera>/` beside `pending/`, with a
//!   `<name>.reason` text file, and an alarm is logged. It is never deleted;
//!   the receiver sees the sequence gap it leaves, so it cannot go unnoticed.
//!
//! # HTTP contract (the case system's intake, issue 7)
//!
//! ```text
//! POST /api/v1/packages HTTP/1.1
//! Content-Type: application/x-tar
//! X-Vigil-Device: edge-07
//! X-Vigil-Camera: cam-north
//! X-Vigil-Sequence: 42
//! X-Vigil-Event-Id: 019ceb25-1550-77d9-b44c-a70bebcdcdb9
//! Authorization: Vigil-Ed25519 device=edge-07,ts=1773471600,sig=<128 hex>
//!
//! <the package's .tar bytes, exactly as in the spool>
//! ```
//!
//! - The body is the package's deterministic tar (see [`crate::package`]);
//!   the server checks it with [`crate::verify_package`] against the
//!   device's registered public key, and chains it per (device, camera).
//! - `X-Vigil-*` values repeat the manifest's facts so the server can route
//!   and deduplicate before unpacking; the manifest is the authority, and a
//!   mismatch is a rejection. Device and camera ids are percent-encoded
//!   (UTF-8; letters, digits and `-._~` as they are), see [`encode_header`].
//! - `Authorization` signs the request: `sig` is the hex Ed25519 signature,
//!   by the device key, over [`signing_message`]:
//!   `"POST\n<path>\n<ts>\n<hex SHA-256 of the body>"`, where `<path>` is
//!   the request target as sent (path and query) and `<ts>` Unix seconds.
//!   The server should refuse a `ts` more than a few minutes from its clock
//!   (replayed requests). [`check_authorization`] does this check.
//!
//! Answers, and what the uploader does:
//!
//! | status | meaning | uploader |
//! | --- | --- | --- |
//! | 200, 201 | stored | delivered |
//! | 409 | this event id is already stored | delivered (idempotent by event id) |
//! | 401, 403 | the request's signature or device is not accepted | retried, alarm: a device-level problem (key not registered yet, clock skew) must not push packages out of the queue |
//! | 408, 429 | timeout, too many requests | retried |
//! | other 4xx (400, 413, 422, ...) | this package will never be accepted | rejected: moved aside with the reason |
//! | anything else (3xx, 5xx), no answer | transient | retried |
//!
//! The response body, if any, should be a short text reason; the uploader
//! logs it and keeps it in `.reason` files. Only plain `http://` URLs are
//! supported (no TLS stack on the edge yet); the signature authenticates
//! each request either way.
//!
//! # On tokio
//!
//! Sending is network I/O that mostly waits, so the uploader is async: `vigil
//! run` runs it as a task on the edge's small I/O runtime beside the metrics
//! server, not as a thread of its own. The spool's operations (a directory
//! listing, a rename and an fsync, under the lock the evidence writer
//! shares) are short blocking sections: on a multi-threaded runtime they run
//! in [`tokio::task::block_in_place`], so the runtime's other tasks move to
//! another thread meanwhile. Package files are read with `tokio::fs`.

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use crate::keys::{DeviceKey, Keyring};
use crate::spool::{Spool, SpoolError, Spooled};

pub const CONTENT_TYPE: &str = "application/x-tar";
pub const HEADER_DEVICE: &str = "X-Vigil-Device";
pub const HEADER_CAMERA: &str = "X-Vigil-Camera";
pub const HEADER_SEQUENCE: &str = "X-Vigil-Sequence";
pub const HEADER_EVENT_ID: &str = "X-Vigil-Event-Id";
pub const AUTH_SCHEME: &str = "Vigil-Ed25519";
/// Where rejected packages go, beside `pending/`.
pub const REJECTED_DIR: &str = "rejected";

/// Why a send did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Transient (network error, timeout, 5xx): try again later.
    #[error("not delivered, will retry: {0}")]
    Retry(String),
    /// The receiver will never accept this package.
    #[error("rejected by the receiver: {0}")]
    Rejected(String),
}

/// Where packages are delivered: the case system's HTTP API today, a
/// message broker later.
pub trait PackageSink: Send {
    /// Delivers one package; `Ok` only once the receiver has it (or already
    /// had it: sinks are idempotent by event id).
    fn send(
        &mut self,
        package: &Spooled,
        tar: &[u8],
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
    move |source| UploadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ------------------------------------------------------------ the contract

/// What the `Authorization` signature covers.
pub fn signing_message(method: &str, path: &str, ts: u64, body: &[u8]) -> Vec<u8> {
    format!(
        "{method}\n{path}\n{ts}\n{}",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// The `Authorization` header value for a request.
pub fn authorization(key: &DeviceKey, method: &str, path: &str, ts: u64, body: &[u8]) -> String {
    let sig = key.sign(&signing_message(method, path, ts, body));
    format!(
        "{AUTH_SCHEME} device={},ts={ts},sig={}",
        encode_header(&key.device_id),
        hex::encode(sig.to_bytes())
    )
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub device_id: String,
    pub ts: u64,
    pub signature: [u8; 64],
}

/// Parses `Vigil-Ed25519 device=<id>,ts=<secs>,sig=<hex>`.
pub fn parse_authorization(header: &str) -> Result<Authorization, String> {
    let rest = header
        .trim()
        .strip_prefix(AUTH_SCHEME)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| format!("expected the {AUTH_SCHEME} scheme"))?;
    let (mut device, mut ts, mut sig) = (None, None, None);
    for part in rest.trim().split(',') {
        match part.trim().split_once('=') {
            Some(("device", v)) => device = Some(decode_header(v)?),
            Some(("ts", v)) => ts = Some(v.parse::<u64>().map_err(|_| "ts is not a number")?),
            Some(("sig", v)) => {
                sig = Some(
                    hex::decode(v)
                        .ok()
                        .and_then(|b| <[u8; 64]>::try_from(b).ok())
                        .ok_or("sig must be 128 hex digits")?,
                )
            }
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    Ok(Authorization {
        device_id: device.ok_or("device= is missing")?,
        ts: ts.ok_or("ts= is missing")?,
        signature: sig.ok_or("sig= is missing")?,
    })
}

/// The server's check of a request: a known device, a fresh timestamp
/// (within `max_skew_s` of `now_s`) and a valid signature. Returns the
/// device id.
pub fn check_authorization(
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
    keys: &Keyring,
    now_s: u64,
    max_skew_s: u64,
) -> Result<String, String> {
    let auth = parse_authorization(header)?;
    if auth.ts.abs_diff(now_s) > max_skew_s {
        return Err(format!(
            "ts {} is more than {max_skew_s} s from the server's clock {now_s}",
            auth.ts
        ));
    }
    let key = keys
        .get(&auth.device_id)
        .ok_or_else(|| format!("device {:?} is not registered", auth.device_id))?;
    let message = signing_message(method, path, auth.ts, body);
    if !key.verify(&message, &Signature::from_bytes(&auth.signature)) {
        return Err("the request signature does not verify".into());
    }
    Ok(auth.device_id)
}

/// Percent-encodes an id for a header value: letters, digits and `-._~`
/// stay, every other UTF-8 byte becomes `%XX`, so any camera name travels.
pub fn encode_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_header`].
pub fn decode_header(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {value:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} is not UTF-8 once decoded"))
}

/// What a status code means for the uploader (see the module's table).
pub fn classify_status(status: u16, body: &str) -> Result<(), SendError> {
    let reason = || {
        let body = body.trim();
        if body.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {body}")
        }
    };
    match status {
        200 | 201 | 409 => Ok(()),
        401 | 403 => Err(SendError::Retry(format!(
            "{} (the device is not accepted: is its public key registered, is its clock right?)",
            reason()
        ))),
        408 | 429 => Err(SendError::Retry(reason())),
        400..=499 => Err(SendError::Rejected(reason())),
        _ => Err(SendError::Retry(reason())),
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------- HTTP sink

/// POSTs packages to the case system, one at a time (async; needs a tokio
/// runtime with I/O and timers enabled).
pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The request target that is signed: path and query.
    target: String,
    key: DeviceKey,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("url", &self.url)
            .field("device", &self.key.device_id)
            .finish()
    }
}

impl HttpSink {
    /// A sink for `url` (e.g. `http://case-system:8480/api/v1/packages`)
    /// that signs with `key`; `timeout` bounds one whole request.
    pub fn new(url: &str, key: DeviceKey, timeout: Duration) -> Result<Self, UploadError> {
        let bad = |reason: &str| UploadError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if !url.contains("://") {
            return Err(bad("no scheme; expected http://host:port/path"));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(bad(&format!(
                "scheme {} is not supported; use http:// (requests are signed)",
                parsed.scheme()
            )));
        }
        if parsed.host().is_none() {
            return Err(bad("no host"));
        }
        // The request target exactly as the client will send it.
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let client = reqwest::Client::builder()
            // A redirected POST could be replayed as a GET; a 3xx is an
            // answer, classified as transient.
            .redirect(reqwest::redirect::Policy::none())
            // The case system is reached directly; an inherited proxy variable
            // must not divert evidence.
            .no_proxy()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            client,
            url: parsed,
            target,
            key,
        })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }
}

/// The most of a response body kept as the reason: a reason is short text,
/// and a server must never flood the log.
const REASON_LIMIT: usize = 2048;

impl PackageSink for HttpSink {
    async fn send(&mut self, package: &Spooled, tar: &[u8]) -> Result<(), SendError> {
        let auth = authorization(&self.key, "POST", &self.target, unix_seconds(), tar);
        let response = self
            .client
            .post(self.url.clone())
            .header("Content-Type", CONTENT_TYPE)
            .header(HEADER_DEVICE, encode_header(&self.key.device_id))
            .header(HEADER_CAMERA, encode_header(&package.camera))
            .header(HEADER_SEQUENCE, package.sequence.to_string())
            .header(HEADER_EVENT_ID, encode_header(&package.event_id))
            .header("Authorization", auth)
            .body(tar.to_vec())
            .send()
            .await;
        match response {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let mut body = Vec::new();
                while body.len() < REASON_LIMIT {
                    match r.chunk().await {
                        Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                body.truncate(REASON_LIMIT);
                classify_status(status, &String::from_utf8_lossy(&body))
            }
            Err(e) => Err(SendError::Retry(format!("POST {}: {e}", self.url))),
        }
    }
}

/// Runs a short blocking section (spool listing, rename, fsync) without
/// stalling a multi-threaded runtime's other tasks; on a current-thread
/// runtime (tests) or outside one it simply runs.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

// ------------------------------------------------------------------ uploader

/// How the uploader reaches the spool: directly, or through the lock the
/// writer shares with it. The lock is held only to list and to move a
/// file, never during a send.
pub trait SpoolAccess {
    fn with_spool<R>(&self, f: impl FnOnce(&Spool) -> R) -> R;
}

impl SpoolAccess for Spool {
    fn with_spool<R>(&self, f: impl FnOnce(&Spool) -> R) -> R {
        f(self)
    }
}

impl SpoolAccess for Mutex<Spool> {
    fn with_spool<R>(&self, f: impl FnOnce(&Spool) -> R) -> R {
        // A panic elsewhere cannot leave the spool's files half-changed
        // (every change is a rename), so a poisoned lock is still usable.
        f(&self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SpoolAccess for RwLock<Spool> {
    fn with_spool<R>(&self, f: impl FnOnce(&Spool) -> R) -> R {
        f(&self.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<T: SpoolAccess> SpoolAccess for Arc<T> {
    fn with_spool<R>(&self, f: impl FnOnce(&Spool) -> R) -> R {
        (**self).with_spool(f)
    }
}

#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// First retry delay bound.
    pub backoff_base: Duration,
    /// Largest retry delay bound.
    pub backoff_max: Duration,
    /// How often `run` looks for new packages when nothing is waiting.
    pub poll: Duration,
    /// Seeds the jitter (tests); `None` seeds from the OS.
    pub jitter_seed: Option<u64>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            jitter_seed: None,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: Vec<Spooled>,
    pub rejected: Vec<Spooled>,
    /// Failed attempts that will be retried (at most one per camera).
    pub retries: usize,
    /// Packages still pending after the pass.
    pub waiting: usize,
}

#[derive(Debug, Default)]
struct CameraState {
    failures: u32,
    not_before: Option<Instant>,
}

/// SplitMix64: enough randomness for jitter, no dependency.
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, bound].
    fn upto(&mut self, bound: Duration) -> Duration {
        let nanos = bound.as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        Duration::from_nanos(self.next() % (nanos + 1))
    }
}

/// Delivers the spool's pending packages through a sink.
#[derive(Debug)]
pub struct Uploader<S: PackageSink> {
    sink: S,
    config: UploadConfig,
    cameras: BTreeMap<String, CameraState>,
    jitter: Jitter,
}

impl<S: PackageSink> Uploader<S> {
    pub fn new(sink: S, config: UploadConfig) -> Self {
        let seed = config.jitter_seed.unwrap_or_else(|| {
            use rand_core::RngCore;
            rand_core::OsRng.next_u64()
        });
        Self {
            sink,
            config,
            cameras: BTreeMap::new(),
            jitter: Jitter(seed),
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The retry delay after `failures` consecutive failures: full jitter
    /// over `min(max, base * 2^(failures - 1))`.
    fn backoff(&mut self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        let bound = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        self.jitter.upto(bound)
    }

    fn failed(&mut self, camera: &str, reason: &str) {
        let failures = self.cameras.get(camera).map_or(0, |s| s.failures) + 1;
        let delay = self.backoff(failures);
        tracing::warn!(camera, failures, retry_in_ms = delay.as_millis() as u64, %reason,
            "package not delivered; retrying later");
        let state = self.cameras.entry(camera.to_owned()).or_default();
        state.failures = failures;
        state.not_before = Some(Instant::now() + delay);
    }

    /// One pass: every camera that is not backing off delivers its pending
    /// packages in sequence until one fails.
    pub async fn run_once(
        &mut self,
        spool: &(impl SpoolAccess + Sync),
    ) -> Result<Round, UploadError> {
        let (pending, spool_dir) =
            blocking(|| spool.with_spool(|s| s.pending().map(|p| (p, s.dir().to_path_buf()))))?;
        let mut by_camera: BTreeMap<String, Vec<Spooled>> = BTreeMap::new();
        for p in pending {
            by_camera.entry(p.camera.clone()).or_default().push(p);
        }
        let mut round = Round::default();
        let now = Instant::now();
        for (camera, packages) in by_camera {
            let due = self
                .cameras
                .get(&camera)
                .and_then(|s| s.not_before)
                .is_none_or(|t| t <= now);
            if !due {
                round.waiting += packages.len();
                continue;
            }
            let mut left = packages.len();
            for package in &packages {
                // Ends this camera's turn; every later package waits behind it.
                let stop = match self.deliver(spool, &spool_dir, package, &mut round).await {
                    Ok(true) => false,
                    Ok(false) => true,
                    Err(e) => {
                        self.failed(&camera, &e.to_string());
                        round.retries += 1;
                        true
                    }
                };
                if stop {
                    break;
                }
                left -= 1;
            }
            round.waiting += left;
        }
        Ok(round)
    }

    /// Sends one package. `Ok(true)`: it left `pending/` (delivered or
    /// rejected); `Ok(false)`: it stays, and the camera backs off.
    async fn deliver(
        &mut self,
        spool: &(impl SpoolAccess + Sync),
        spool_dir: &Path,
        package: &Spooled,
        round: &mut Round,
    ) -> Result<bool, UploadError> {
        let tar = tokio::fs::read(&package.path)
            .await
            .map_err(io(&package.path))?;
        match self.sink.send(package, &tar).await {
            Ok(()) => {
                blocking(|| spool.with_spool(|s| s.mark_delivered(package)))?;
                self.cameras.remove(&package.camera);
                tracing::debug!(camera = %package.camera, sequence = package.sequence,
                    event_id = %package.event_id, "delivered");
                round.delivered.push(package.clone());
                Ok(true)
            }
            Err(SendError::Retry(reason)) => {
                self.failed(&package.camera, &reason);
                round.retries += 1;
                Ok(false)
            }
            Err(SendError::Rejected(reason)) => {
                let (path, reason_path) = blocking(|| move_rejected(spool_dir, package, &reason))?;
                tracing::error!(alarm = "evidence_rejected", camera = %package.camera,
                    sequence = package.sequence, event_id = %package.event_id,
                    path = %path.display(), reason_file = %reason_path.display(), %reason,
                    "ALARM: the receiver rejected an evidence package; it was moved aside, \
                     not deleted, and the receiver will see a sequence gap");
                self.cameras.remove(&package.camera);
                round.rejected.push(Spooled {
                    path,
                    ..package.clone()
                });
                Ok(true)
            }
        }
    }

    /// Delivers until `stop` is set: a pass, then a sleep until the next
    /// camera is due or `poll` has passed. Errors reading the spool are
    /// logged and retried; the loop ends only on `stop`.
    pub async fn run(&mut self, spool: &(impl SpoolAccess + Sync), stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let wait = match self.run_once(spool).await {
                Ok(_) => {
                    let now = Instant::now();
                    self.cameras
                        .values()
                        .filter_map(|s| s.not_before)
                        .map(|t| t.saturating_duration_since(now))
                        .min()
                        .map_or(self.config.poll, |d| d.min(self.config.poll))
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool; trying again");
                    self.config.poll
                }
            };
            sleep_unless_stopped(wait, stop).await;
        }
    }
}

async fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
    }
}

/// Moves a rejected package to `rejected/<camera>/` with a `.reason` file
/// beside it. The reason is written first: a crash in between leaves the
/// package pending, to be sent (and rejected) again.
fn move_rejected(
    spool_dir: &Path,
    package: &Spooled,
    reason: &str,
) -> Result<(PathBuf, PathBuf), UploadError> {
    let dir = spool_dir.join(REJECTED_DIR).join(&package.camera);
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let name = package
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{:012}-{}.tar", package.sequence, package.event_id));
    let target = dir.join(&name);
    let reason_path = dir.join(format!("{name}.reason"));
    let text = format!(
        "rejected at unix {}\ncamera {}\nsequence {}\nevent {}\nreason: {reason}\n",
        unix_seconds(),
        package.camera,
        package.sequence,
        package.event_id
    );
    let mut f = fs::File::create(&reason_path).map_err(io(&reason_path))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(&reason_path))?;
    fs::rename(&package.path, &target).map_err(io(&package.path))?;
    for d in [Some(dir.as_path()), package.path.parent()]
        .into_iter()
        .flatten()
    {
        fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(io(d))?;
    }
    Ok((target, reason_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageContent;
    use crate::synthetic::red_light_content;
    use std::collections::VecDeque;

    const DEVICE: &str = "edge-unit";

    fn key() -> DeviceKey {
        DeviceKey::from_seed(DEVICE, [3; 32])
    }

    /// Contents for events 1..=n on `cameras`, built from one generated
    /// package (a sheet takes a second to render unoptimised).
    fn contents(cameras: &[&str], n: u64) -> Vec<PackageContent> {
        let template = red_light_content(DEVICE, "x", 0, 32, 18, b"clip").expect("content");
        (1..=n)
            .map(|i| {
                let mut c = template.clone();
                let camera = cameras[(i % cameras.len() as u64) as usize];
                c.manifest.camera = camera.into();
                c.manifest.violation.track_id = i;
                c.manifest.event_id = crate::package::event_id(DEVICE, camera, i, "red_light", 0);
                c
            })
            .collect()
    }

    /// A sink that answers from a script, then succeeds; records each send.
    struct Scripted {
        answers: VecDeque<Result<(), SendError>>,
        sent: Vec<(String, u64)>,
    }

    impl PackageSink for Scripted {
        async fn send(&mut self, p: &Spooled, tar: &[u8]) -> Result<(), SendError> {
            assert_eq!(tar.len() as u64, p.bytes);
            self.sent.push((p.camera.clone(), p.sequence));
            self.answers.pop_front().unwrap_or(Ok(()))
        }
    }

    /// Drives a future to the end on a runtime of the test's own.
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn fast() -> UploadConfig {
        UploadConfig {
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            poll: Duration::from_millis(5),
            jitter_seed: Some(1),
        }
    }

    #[test]
    fn a_failed_package_holds_back_its_camera_only_and_a_rejected_one_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut spool = Spool::open(dir.path(), 1 << 30).expect("spool");
        for c in contents(&["a", "b"], 6) {
            spool.commit(c, &key()).expect("commit");
        }
        // a1 ok, a2 retry; b1 rejected, b2 ok, b3 ok.
        let sink = Scripted {
            answers: VecDeque::from([
                Ok(()),
                Err(SendError::Retry("503".into())),
                Err(SendError::Rejected("HTTP 422: bad".into())),
            ]),
            sent: Vec::new(),
        };
        let mut up = Uploader::new(sink, fast());
        let round = block_on(up.run_once(&spool)).expect("round");
        assert_eq!(
            up.sink().sent,
            vec![
                ("a".into(), 1),
                ("a".into(), 2),
                ("b".into(), 1),
                ("b".into(), 2),
                ("b".into(), 3)
            ]
        );
        assert_eq!(round.delivered.len(), 3);
        assert_eq!(round.rejected.len(), 1);
        assert_eq!((round.retries, round.waiting), (1, 2));
        let rejected = dir.path().join("rejected/b");
        let names: Vec<String> = fs::read_dir(&rejected)
            .expect("rejected dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let reason_file = names
            .iter()
            .find(|n| n.ends_with(".reason"))
            .expect("reason");
        let reason = fs::read_to_string(rejected.join(reason_file)).expect("read");
        assert!(reason.contains("HTTP 422: bad"), "{reason}");
        // After the backoff, camera a goes on from sequence 2.
        std::thread::sleep(Duration::from_millis(10));
        let round = block_on(up.run_once(&spool)).expect("round");
        assert_eq!(round.delivered.len(), 2);
        assert_eq!(up.sink().sent[5..], [("a".into(), 2), ("a".into(), 3)]);
        assert!(spool.pending().expect("pending").is_empty());
    }

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        let sink = Scripted {
            answers: VecDeque::new(),
            sent: Vec::new(),
        };
        let mut up = Uploader::new(
            sink,
            UploadConfig {
                backoff_base: Duration::from_millis(500),
                backoff_max: Duration::from_secs(60),
                ..fast()
            },
        );
        for failures in 1..40 {
            let bound = Duration::from_millis(500)
                .saturating_mul(1 << (failures - 1).min(31))
                .min(Duration::from_secs(60));
            let samples: Vec<Duration> = (0..200).map(|_| up.backoff(failures)).collect();
            assert!(samples.iter().all(|d| *d <= bound));
            // Full jitter spreads over the whole range.
            let max = samples.iter().max().copied().unwrap_or_default();
            let min = samples.iter().min().copied().unwrap_or_default();
            assert!(
                max > bound * 3 / 4 && min < bound / 4,
                "{failures}: {min:?}..{max:?}"
            );
        }
    }

    #[test]
    fn statuses_map_to_delivered_retry_or_rejected() {
        assert_eq!(classify_status(200, ""), Ok(()));
        assert_eq!(classify_status(201, ""), Ok(()));
        assert_eq!(classify_status(409, "duplicate"), Ok(()));
        for s in [500, 502, 503, 504, 301, 401, 403, 408, 429] {
            assert!(
                matches!(classify_status(s, ""), Err(SendError::Retry(_))),
                "{s}"
            );
        }
        for s in [400, 404, 413, 415, 422] {
            assert!(
                matches!(classify_status(s, "x"), Err(SendError::Rejected(r)) if r == format!("HTTP {s}: x")),
                "{s}"
            );
        }
    }

    #[test]
    fn a_signed_request_checks_and_any_change_fails() {
        let k = key();
        let mut ring = Keyring::default();
        ring.insert(k.public());
        let body = b"tar bytes";
        let header = authorization(&k, "POST", "/api/v1/packages", 1000, body);
        let ok = |h: &str, path: &str, body: &[u8], now| {
            check_authorization(h, "POST", path, body, &ring, now, 300)
        };
        assert_eq!(
            ok(&header, "/api/v1/packages", body, 1100),
            Ok(DEVICE.into())
        );
        assert!(ok(&header, "/api/v1/packages", b"tar byteS", 1000).is_err());
        assert!(ok(&header, "/api/v2/packages", body, 1000).is_err());
        let stale = ok(&header, "/api/v1/packages", body, 2000).expect_err("stale");
        assert!(stale.contains("more than 300 s"), "{stale}");
        let other = authorization(
            &DeviceKey::from_seed(DEVICE, [4; 32]),
            "POST",
            "/api/v1/packages",
            1000,
            body,
        );
        assert!(ok(&other, "/api/v1/packages", body, 1000).is_err());
        assert!(parse_authorization("Bearer x").is_err());
    }

    #[test]
    fn header_ids_round_trip_through_percent_encoding() {
        for id in ["cam-a", "cam north/1", "ngã-tư", "a%b,c=d"] {
            let enc = encode_header(id);
            assert!(enc.bytes().all(|b| b.is_ascii_graphic()), "{enc}");
            assert_eq!(decode_header(&enc).as_deref(), Ok(id));
        }
        assert_eq!(encode_header("cam-a_1.x~"), "cam-a_1.x~");
        assert!(decode_header("%G1").is_err());
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        let err = HttpSink::new("https://x/api", key(), Duration::from_secs(1)).expect_err("tls");
        assert!(err.to_string().contains("not supported"), "{err}");
        assert!(HttpSink::new("/api/v1", key(), Duration::from_secs(1)).is_err());
        let sink = HttpSink::new(
            "http://127.0.0.1:8480/api/v1/packages?x=1",
            key(),
            Duration::from_secs(1),
        )
        .expect("sink");
        assert_eq!(sink.target, "/api/v1/packages?x=1");
    }
}
