//! One thread per camera: read packets, keep them in the ring, decode, and
//! offer frames to detection through a small bounded queue.
//!
//! The queue drops the *oldest* waiting frame when detection falls behind:
//! a verdict wants the freshest view, and every dropped frame is counted.
//! The packet ring is fed before the queue is even looked at, so a slow
//! consumer can never cost evidence.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frame::FramePrep;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use ffmpeg_next as ffmpeg;
use vigil_core::config::Pacing;
use vigil_core::time::{now_unix_us, UnixMicros};

use crate::clip::{write_mp4, ClipInfo};
use crate::decode::Decoder;
use crate::frame::{Frame, FrameMeta, RgbImage};
use crate::ring::{PacketRing, RingConfig, RingStats, StoredPacket, StreamInfo};
use crate::source::SourceSpec;
use crate::VideoError;

/// Exponential backoff with jitter between reconnect attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Each delay is scaled by a random factor in `[1 - jitter, 1 + jitter]`,
    /// so cameras that fell together do not all retry in the same instant.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempt` (0-based); `unit` is uniform in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }

    /// The longest any single delay can be.
    pub fn bound(&self) -> Duration {
        self.max.mul_f64(1.0 + self.jitter)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Frames that may wait for detection; beyond it the oldest is dropped.
    pub queue_capacity: usize,
    pub ring: RingConfig,
    pub backoff: Backoff,
    /// Decoder threads; 0 lets FFmpeg choose.
    pub decode_threads: usize,
    /// Convert frames to RGB for detection (off only for decode benchmarks).
    pub convert_rgb: bool,
    /// Wait for the consumer instead of dropping the oldest frame when the
    /// queue is full. For replays of files, where every frame must be
    /// analysed and nothing is live; never for cameras, where waiting would
    /// let the stream run away from the clock. The consumer must keep
    /// taking frames (or stop the ingest).
    pub lossless: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 2,
            ring: RingConfig::default(),
            backoff: Backoff::default(),
            decode_threads: 0,
            convert_rgb: true,
            lossless: false,
        }
    }
}

/// A stretch of time without frames from a live source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Wall clock of the last frame before the loss (or of the failed first open).
    pub start_us: UnixMicros,
    /// Wall clock of the first frame after reconnecting.
    pub end_us: UnixMicros,
}

/// Things that happen to a camera, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    /// Frames are flowing (first frame of a connection).
    Connected { at_us: UnixMicros },
    /// A live source was lost; ingest keeps retrying.
    Disconnected { at_us: UnixMicros, reason: String },
    /// Frames resumed after a loss.
    Gap(Gap),
    /// A file or image set was read to its end.
    EndOfInput { frames: u64 },
    /// A file or image set could not be read; ingest of this camera stopped.
    Failed { error: String },
}

#[derive(Default)]
struct Counters {
    packets: AtomicU64,
    bytes: AtomicU64,
    frames_decoded: AtomicU64,
    frames_delivered: AtomicU64,
    frames_dropped: AtomicU64,
    decode_errors: AtomicU64,
    timestamp_fixups: AtomicU64,
    reconnects: AtomicU64,
    gaps: Mutex<Vec<Gap>>,
}

/// A snapshot of one camera's ingest counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStats {
    pub packets: u64,
    pub bytes: u64,
    pub frames_decoded: u64,
    /// Frames handed to the detection queue.
    pub frames_delivered: u64,
    /// Frames that waited too long for detection and were replaced by newer ones.
    pub frames_dropped: u64,
    pub decode_errors: u64,
    /// Frames whose PTS did not increase and were nudged to 1 µs after the
    /// previous frame, so each camera's frame times stay strictly increasing.
    pub timestamp_fixups: u64,
    pub reconnects: u64,
    pub gaps: Vec<Gap>,
    pub ring: RingStats,
}

/// A running camera ingest. Dropping it stops the thread.
pub struct CameraIngest {
    source_name: String,
    camera: String,
    frames: Receiver<Frame>,
    events: Receiver<IngestEvent>,
    ring: Arc<Mutex<PacketRing>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(ring: &Mutex<PacketRing>) -> MutexGuard<'_, PacketRing> {
    // A panic while holding the lock cannot leave the ring half-updated in a
    // way that matters more than losing it; keep serving what is there.
    ring.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CameraIngest {
    /// Starts ingesting `spec` on its own thread.
    pub fn spawn(spec: SourceSpec, config: IngestConfig) -> Self {
        Self::spawn_with(spec, config, None)
    }

    /// Like [`CameraIngest::spawn`], running `prep` on each RGB frame on
    /// the ingest thread before delivering it (see [`FramePrep`]).
    pub fn spawn_with(spec: SourceSpec, config: IngestConfig, prep: Option<FramePrep>) -> Self {
        crate::init();
        let (tx, frames) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let (event_tx, events) = crossbeam_channel::unbounded();
        let ring = Arc::new(Mutex::new(PacketRing::new(config.ring)));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let source_name = spec.display_name();
        let camera = spec.camera.clone();
        let seed = seed_from(&source_name);
        let worker = Worker {
            camera: Arc::from(spec.camera.as_str()),
            source_name: source_name.clone(),
            spec,
            config,
            tx,
            evict: frames.clone(),
            events: event_tx,
            ring: Arc::clone(&ring),
            counters: Arc::clone(&counters),
            stop: Arc::clone(&stop),
            seq: 0,
            segment_id: 0,
            pts_carry_us: 0,
            last_frame: None,
            rng: seed,
            activity_us: Arc::new(AtomicI64::new(0)),
            prep,
        };
        let thread = std::thread::Builder::new()
            .name(format!("ingest-{camera}"))
            .spawn(move || worker.run())
            .ok();
        if thread.is_none() {
            tracing::error!(camera = %camera, "could not start the ingest thread");
        }
        Self {
            source_name,
            camera,
            frames,
            events,
            ring,
            counters,
            stop,
            thread,
        }
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    /// Frames for detection. The channel closes when ingest ends.
    pub fn frames(&self) -> &Receiver<Frame> {
        &self.frames
    }

    pub fn events(&self) -> &Receiver<IngestEvent> {
        &self.events
    }

    pub fn stats(&self) -> IngestStats {
        let c = &self.counters;
        IngestStats {
            packets: c.packets.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            frames_delivered: c.frames_delivered.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            timestamp_fixups: c.timestamp_fixups.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            gaps: c.gaps.lock().map(|g| g.clone()).unwrap_or_default(),
            ring: lock(&self.ring).stats(),
        }
    }

    /// Writes the buffered packets covering `[from, to]` (scene time) to an
    /// MP4 at `path`, without re-encoding. The clip starts at the keyframe at
    /// or before `from`; [`ClipInfo`] says what it really covers.
    pub fn clip(
        &self,
        from: UnixMicros,
        to: UnixMicros,
        path: &Path,
    ) -> Result<ClipInfo, VideoError> {
        let selection = lock(&self.ring).select(from, to);
        let selection = selection.ok_or_else(|| self.not_buffered(from, to))?;
        write_mp4(&selection, path)
    }

    /// The full-resolution frame shown at scene time `at` (the last frame at
    /// or before it), decoded from the buffered packets.
    pub fn still(&self, at: UnixMicros) -> Result<(UnixMicros, RgbImage), VideoError> {
        let selection = lock(&self.ring).select(at, at);
        let selection = selection.ok_or_else(|| self.not_buffered(at, at))?;
        let mut decoder = Decoder::open(&selection.stream, 1, &self.source_name)?;
        let mut best: Option<(UnixMicros, ffmpeg::frame::Video)> = None;
        let mut order = selection.packets.iter().map(|p| p.time_us);
        let mut consider =
            |frame: ffmpeg::frame::Video, best: &mut Option<(UnixMicros, ffmpeg::frame::Video)>| {
                let time = match frame.pts() {
                    Some(pts) => selection
                        .packets
                        .iter()
                        .find(|p| p.packet.pts() == Some(pts))
                        .map(|p| p.time_us),
                    None => order.next(),
                };
                let Some(time) = time else { return };
                let better = match best {
                    None => true,
                    Some((t, _)) => {
                        (time <= at && (*t > at || time > *t)) || (*t > at && time < *t)
                    }
                };
                if better {
                    *best = Some((time, frame));
                }
            };
        for p in &selection.packets {
            if decoder.send(&p.packet).is_err() {
                continue;
            }
            while let Some(frame) = decoder.receive() {
                consider(frame, &mut best);
            }
        }
        let _ = decoder.send_eof();
        while let Some(frame) = decoder.receive() {
            consider(frame, &mut best);
        }
        let (time, frame) = best.ok_or_else(|| VideoError::Decode {
            source_name: self.source_name.clone(),
            message: "no frame decoded from the buffered packets".into(),
        })?;
        Ok((time, decoder.convert_to_rgb(&frame)?))
    }

    fn not_buffered(&self, from: UnixMicros, to: UnixMicros) -> VideoError {
        let stats = lock(&self.ring).stats();
        let available = match (stats.oldest_us, stats.newest_us) {
            (Some(a), Some(b)) => format!("{a}..{b} µs"),
            _ => "nothing yet".into(),
        };
        VideoError::NotBuffered {
            camera: self.camera.clone(),
            requested: format!("{from}..{to} µs"),
            available,
        }
    }

    /// Asks the thread to stop and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CameraIngest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a connection ended.
enum SessionEnd {
    EndOfInput,
    Stopped,
    Failed(VideoError),
}

struct Worker {
    /// Runs on each RGB frame before delivery.
    prep: Option<FramePrep>,
    camera: Arc<str>,
    source_name: String,
    spec: SourceSpec,
    config: IngestConfig,
    tx: Sender<Frame>,
    /// A receiving end kept by the producer, to evict the oldest waiting frame.
    evict: Receiver<Frame>,
    events: Sender<IngestEvent>,
    ring: Arc<Mutex<PacketRing>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    seq: u64,
    segment_id: u64,
    /// Added to each connection's PTS so `pts_us` never goes backwards.
    pts_carry_us: i64,
    /// (pts_us, captured_at_us, time_us) of the last delivered frame.
    last_frame: Option<(i64, UnixMicros, UnixMicros)>,
    rng: u64,
    /// Wall clock of the last packet read, for the stall watchdog.
    activity_us: Arc<AtomicI64>,
}

/// Maps one connection's timestamps onto the scene clock.
struct SessionClock {
    time_base: ffmpeg::Rational,
    first_ts: Option<i64>,
    anchor_us: UnixMicros,
    live: bool,
    opened_us: UnixMicros,
}

impl SessionClock {
    fn rel_us(&self, ts: i64) -> i64 {
        let first = self.first_ts.unwrap_or(ts);
        rescale_us(ts - first, self.time_base)
    }

    /// Returns (µs since the connection's first frame, scene time).
    fn stamp(&mut self, pts: Option<i64>, captured_us: UnixMicros) -> (i64, UnixMicros) {
        let rel = match pts {
            Some(p) => {
                self.first_ts.get_or_insert(p);
                self.rel_us(p)
            }
            None => captured_us - self.opened_us,
        };
        let mut time = self.anchor_us + rel;
        // A live camera's PTS clock drifts from ours, and some restart it:
        // re-anchor rather than let scene time wander from the wall clock.
        if self.live && (time - captured_us).abs() > 1_000_000 {
            self.anchor_us = captured_us - rel;
            time = captured_us;
        }
        (rel, time)
    }

    fn decode_time(&self, dts: Option<i64>, fallback: UnixMicros) -> UnixMicros {
        match (dts, self.first_ts) {
            (Some(d), Some(_)) => self.anchor_us + self.rel_us(d),
            _ => fallback,
        }
    }
}

/// `ts` in `tb` units to microseconds, without overflow.
fn rescale_us(ts: i64, tb: ffmpeg::Rational) -> i64 {
    let den = i128::from(tb.denominator()).max(1);
    let v = i128::from(ts) * i128::from(tb.numerator()) * 1_000_000 / den;
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Facts about a packet in flight through the decoder.
struct Pending {
    pts: Option<i64>,
    pts_us: i64,
    time_us: UnixMicros,
    captured_us: UnixMicros,
}

impl Worker {
    fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut lost_at: Option<UnixMicros> = None;
        loop {
            if self.stopped() {
                return;
            }
            let frames_before = self.seq;
            let end = self.session(&mut lost_at);
            if self.seq > frames_before {
                attempt = 0;
            }
            match end {
                SessionEnd::Stopped => return,
                SessionEnd::EndOfInput if !self.spec.is_live() => {
                    self.emit(IngestEvent::EndOfInput { frames: self.seq });
                    return;
                }
                SessionEnd::Failed(e) if !self.spec.is_live() => {
                    tracing::error!("{e}");
                    self.emit(IngestEvent::Failed {
                        error: e.to_string(),
                    });
                    return;
                }
                SessionEnd::EndOfInput => self.lost(&mut lost_at, "the stream ended".into()),
                SessionEnd::Failed(e) => {
                    tracing::warn!("{e}");
                    self.lost(&mut lost_at, e.to_string());
                }
            }
            let unit = self.next_unit();
            let delay = self.config.backoff.delay(attempt, unit);
            attempt = attempt.saturating_add(1);
            if !self.sleep(delay) {
                return;
            }
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lost(&mut self, lost_at: &mut Option<UnixMicros>, reason: String) {
        if lost_at.is_none() {
            let at = self
                .last_frame
                .map_or_else(now_unix_us, |(_, captured, _)| captured);
            *lost_at = Some(at);
            self.emit(IngestEvent::Disconnected { at_us: at, reason });
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn emit(&self, event: IngestEvent) {
        let _ = self.events.send(event);
    }

    /// Sleeps in short steps so a stop request is honoured promptly.
    fn sleep(&self, total: Duration) -> bool {
        let deadline = Instant::now() + total;
        while Instant::now() < deadline {
            if self.stopped() {
                return false;
            }
            std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
        }
        !self.stopped()
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn session(&mut self, lost_at: &mut Option<UnixMicros>) -> SessionEnd {
        let mut input = match self.spec.open(&self.stop, &self.activity_us) {
            Ok(i) => i,
            Err(_) if self.stopped() => return SessionEnd::Stopped,
            Err(e) => return SessionEnd::Failed(e),
        };
        let Some(stream) = input.streams().best(ffmpeg::media::Type::Video) else {
            return SessionEnd::Failed(VideoError::NoVideoStream {
                source_name: self.source_name.clone(),
            });
        };
        let video_index = stream.index();
        let parameters = stream.parameters();
        let codec_name = parameters.id().name().to_owned();
        let info = StreamInfo {
            parameters,
            time_base: stream.time_base(),
            codec_name,
        };
        let mut decoder = match Decoder::open(&info, self.config.decode_threads, &self.source_name)
        {
            Ok(d) => d,
            Err(e) => return SessionEnd::Failed(e),
        };
        self.segment_id += 1;
        let opened_us = now_unix_us();
        if let Some((pts_us, captured, _)) = self.last_frame {
            self.pts_carry_us = pts_us + (opened_us - captured).max(1);
        }
        let mut clock = SessionClock {
            time_base: info.time_base,
            first_ts: None,
            anchor_us: match (self.spec.is_live(), self.spec.recorded_at_us) {
                (false, Some(at)) => at,
                _ => opened_us,
            },
            live: self.spec.is_live(),
            opened_us,
        };
        let paced = self.spec.pacing == Pacing::Realtime && !self.spec.is_live();
        let started = Instant::now();
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut session_frames: u64 = 0;
        let mut invalid_run = 0;
        loop {
            if self.stopped() {
                return SessionEnd::Stopped;
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut input) {
                Ok(()) => invalid_run = 0,
                Err(ffmpeg::Error::Eof) => {
                    let _ = decoder.send_eof();
                    self.drain(&mut decoder, &mut pending, &mut session_frames, lost_at);
                    return SessionEnd::EndOfInput;
                }
                Err(ffmpeg::Error::Exit) if self.stopped() => return SessionEnd::Stopped,
                Err(ffmpeg::Error::Exit) => {
                    return SessionEnd::Failed(VideoError::Read {
                        source_name: self.source_name.clone(),
                        message: format!("no data for {:?}", self.spec.io_timeout),
                    })
                }
                // The demuxer resyncs past corrupt data; give up only if it never does.
                Err(ffmpeg::Error::InvalidData) if invalid_run < 1000 => {
                    invalid_run += 1;
                    self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    return SessionEnd::Failed(VideoError::Read {
                        source_name: self.source_name.clone(),
                        message: e.to_string(),
                    })
                }
            }
            if packet.stream() != video_index {
                continue;
            }
            let captured_us = now_unix_us();
            self.activity_us.store(captured_us, Ordering::Relaxed);
            self.counters.packets.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes
                .fetch_add(packet.size() as u64, Ordering::Relaxed);
            let (rel_us, time_us) = clock.stamp(packet.pts(), captured_us);
            let decode_time_us = clock.decode_time(packet.dts(), time_us);
            if paced {
                let due = started + Duration::from_micros(u64::try_from(rel_us).unwrap_or(0));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    if !self.sleep(wait) {
                        return SessionEnd::Stopped;
                    }
                }
            }
            if decoder.send(&packet).is_err() {
                self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
            } else {
                pending.push_back(Pending {
                    pts: packet.pts(),
                    pts_us: self.pts_carry_us + rel_us,
                    time_us,
                    captured_us,
                });
            }
            let keyframe = packet.is_key();
            lock(&self.ring).push(
                self.segment_id,
                &info,
                StoredPacket {
                    packet,
                    time_us,
                    decode_time_us,
                    keyframe,
                },
            );
            self.drain(&mut decoder, &mut pending, &mut session_frames, lost_at);
        }
    }

    /// Takes every ready frame out of the decoder and delivers it.
    fn drain(
        &mut self,
        decoder: &mut Decoder,
        pending: &mut VecDeque<Pending>,
        session_frames: &mut u64,
        lost_at: &mut Option<UnixMicros>,
    ) {
        while let Some(frame) = decoder.receive() {
            let found = match frame.pts() {
                Some(pts) => pending.iter().position(|p| p.pts == Some(pts)),
                None if pending.is_empty() => None,
                None => Some(0),
            };
            let Some(entry) = found.and_then(|i| pending.remove(i)) else {
                self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            // Packets the decoder dropped (corrupt) never produce a frame.
            while pending.len() > 64 {
                pending.pop_front();
            }
            if *session_frames == 0 {
                self.emit(IngestEvent::Connected {
                    at_us: entry.captured_us,
                });
                if let Some(start_us) = lost_at.take() {
                    let gap = Gap {
                        start_us,
                        end_us: entry.captured_us,
                    };
                    if let Ok(mut gaps) = self.counters.gaps.lock() {
                        gaps.push(gap);
                    }
                    self.emit(IngestEvent::Gap(gap));
                }
            }
            *session_frames += 1;
            self.counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
            let rgb = if self.config.convert_rgb {
                match decoder.convert_to_rgb(&frame) {
                    Ok(img) => Some(Arc::new(img)),
                    Err(e) => {
                        tracing::warn!("{e}");
                        self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                None
            };
            let (mut pts_us, mut time_us) = (entry.pts_us, entry.time_us);
            if let Some((last_pts, _, last_time)) = self.last_frame {
                // Some cameras repeat or step back a timestamp; rules need
                // each camera's frame times strictly increasing.
                if pts_us <= last_pts || time_us <= last_time {
                    pts_us = pts_us.max(last_pts + 1);
                    time_us = time_us.max(last_time + 1);
                    self.counters
                        .timestamp_fixups
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            let meta = FrameMeta {
                camera: Arc::clone(&self.camera),
                seq: self.seq,
                pts_us,
                time_us,
                captured_at_us: entry.captured_us,
                keyframe: frame.is_key(),
            };
            self.seq += 1;
            self.last_frame = Some((pts_us, entry.captured_us, time_us));
            let prepared = match (&self.prep, &rgb) {
                (Some(prep), Some(img)) => prep(img),
                _ => None,
            };
            self.deliver(Frame {
                meta,
                width: frame.width(),
                height: frame.height(),
                rgb,
                prepared,
            });
        }
    }

    /// Offers a frame to detection, replacing the oldest waiting one if full.
    fn deliver(&self, frame: Frame) {
        if self.config.lossless && !self.spec.is_live() {
            let mut frame = frame;
            loop {
                match self.tx.send_timeout(frame, Duration::from_millis(100)) {
                    Ok(()) => {
                        self.counters
                            .frames_delivered
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(crossbeam_channel::SendTimeoutError::Timeout(f)) => {
                        if self.stop.load(Ordering::Relaxed) {
                            return;
                        }
                        frame = f;
                    }
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
                }
            }
        }
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.counters
                    .frames_delivered
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(frame)) => {
                if self.evict.try_recv().is_ok() {
                    self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
                match self.tx.try_send(frame) {
                    Ok(()) => {
                        self.counters
                            .frames_delivered
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Nobody listens (e.g. a clip-only user): the ring still fills.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn seed_from(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ now_unix_us() as u64) | 1
}

/// The first decoded frame of a source (for calibration overlays).
pub fn first_frame(spec: SourceSpec, timeout: Duration) -> Result<RgbImage, VideoError> {
    let name = spec.display_name();
    let ingest = CameraIngest::spawn(spec, IngestConfig::default());
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(frame) = ingest.frames().recv_timeout(Duration::from_millis(50)) {
            if let Some(rgb) = frame.rgb {
                return Ok(Arc::try_unwrap(rgb).unwrap_or_else(|shared| (*shared).clone()));
            }
        }
        for event in ingest.events().try_iter() {
            if let IngestEvent::Failed { error } = event {
                return Err(VideoError::Read {
                    source_name: name,
                    message: error,
                });
            }
        }
    }
    Err(VideoError::Read {
        source_name: name,
        message: format!("no frame within {timeout:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.2,
        };
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(2, 0.5), Duration::from_millis(400));
        assert_eq!(b.delay(10, 0.5), Duration::from_secs(1));
        assert!(b.delay(10, 0.0) >= Duration::from_millis(799));
        assert!(b.delay(10, 0.999_999) <= b.bound());
    }

    #[test]
    fn timestamps_rescale_without_overflow() {
        assert_eq!(
            rescale_us(90_000, ffmpeg::Rational::new(1, 90_000)),
            1_000_000
        );
        assert_eq!(rescale_us(1, ffmpeg::Rational::new(1001, 30_000)), 33_366);
        assert_eq!(rescale_us(i64::MAX, ffmpeg::Rational::new(1, 1)), i64::MAX);
    }
}
