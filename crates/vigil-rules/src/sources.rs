//! Live signal sources, assembled into one timeline per signal.
//!
//! A signal may have up to three sources: a fixed-time plan, the
//! controller's phase-change feed (UDP JSON, see [`ControllerMessage`]) and
//! vision (lamp readings from the camera). [`LiveSignal`] keeps what each
//! source has said and rebuilds, at each frame, the timeline up to that
//! frame. With two or more sources they are cross-checked
//! ([`PhaseTimeline::cross_check_within`]); a disagreement is `Unknown`,
//! so it is never enforced.
//!
//! A live source that falls silent is not trusted to hold its last state
//! forever: past its silence limit the phase is `Unknown`. The controller
//! therefore sends each change *and* repeats the current state as a
//! heartbeat (at least every [`CONTROLLER_SILENCE_US`] / 2).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;

use vigil_core::config::FixedTimePlan;
use vigil_core::time::{now_unix_us, UnixMicros};

use crate::signal::{ControllerMessage, Phase, PhaseTimeline, SignalError};

/// After this long without a controller message the phase is unknown.
pub const CONTROLLER_SILENCE_US: i64 = 10_000_000;
/// After this long without a lamp reading the phase is unknown.
pub const VISION_SILENCE_US: i64 = 1_000_000;
/// Sources may see a change this far apart and still agree.
pub const AGREEMENT_TOLERANCE_US: i64 = 500_000;
/// How much history the rebuilt timeline keeps (a crossing is judged at
/// most a few seconds after it happened).
const HISTORY_US: i64 = 300_000_000;
/// Vision accepts a new lamp state after this many readings in a row.
const VISION_CONFIRMATIONS: usize = 2;

/// What one source has said: its phase changes and until when it spoke.
#[derive(Debug, Clone, Default)]
struct ChangeLog {
    changes: Vec<(UnixMicros, Phase)>,
    heard_until: Option<UnixMicros>,
    silence_us: i64,
}

impl ChangeLog {
    fn new(silence_us: i64) -> Self {
        Self {
            silence_us,
            ..Self::default()
        }
    }

    /// Records that the source reported `phase` at `at`. Repeats of the
    /// current phase only extend how long the source has been heard.
    fn report(&mut self, at: UnixMicros, phase: Phase) {
        let current = self.changes.last().map(|c| c.1);
        if current != Some(phase) {
            // Out-of-order changes are kept in time order.
            let i = self.changes.partition_point(|c| c.0 <= at);
            self.changes.insert(i, (at, phase));
        }
        self.heard_until = Some(self.heard_until.map_or(at, |h| h.max(at)));
    }

    fn timeline(&self, now: UnixMicros) -> PhaseTimeline {
        let Some(heard) = self.heard_until else {
            return PhaseTimeline::default();
        };
        let until = now.min(heard + self.silence_us);
        let from = now - HISTORY_US;
        // Keep the last change before the window so the first interval is known.
        let first = self
            .changes
            .partition_point(|c| c.0 < from)
            .saturating_sub(1);
        PhaseTimeline::from_changes(&self.changes[first..], until)
    }

    fn prune(&mut self, now: UnixMicros) {
        let first = self
            .changes
            .partition_point(|c| c.0 < now - 2 * HISTORY_US)
            .saturating_sub(1);
        self.changes.drain(..first);
    }
}

/// Debounces per-frame lamp readings into phase changes.
#[derive(Debug, Clone, Default)]
struct VisionDebounce {
    candidate: Option<(Phase, UnixMicros, usize)>,
    accepted: Option<Phase>,
}

/// One signal's sources and the timeline they make together.
#[derive(Debug, Clone)]
pub struct LiveSignal {
    plan: Option<FixedTimePlan>,
    controller: Option<ChangeLog>,
    vision: Option<(ChangeLog, VisionDebounce)>,
}

impl LiveSignal {
    /// `controller` and `vision` say whether those sources are configured.
    pub fn new(plan: Option<FixedTimePlan>, controller: bool, vision: bool) -> Self {
        Self {
            plan,
            controller: controller.then(|| ChangeLog::new(CONTROLLER_SILENCE_US)),
            vision: vision.then(|| (ChangeLog::new(VISION_SILENCE_US), VisionDebounce::default())),
        }
    }

    /// A controller message for this signal's group.
    pub fn controller_message(&mut self, message: &ControllerMessage) {
        if let Some(log) = &mut self.controller {
            log.report(message.at_us, message.state);
        }
    }

    /// One lamp reading from a frame taken at `at`. A change is accepted
    /// after a few consistent readings and dated at the first of them.
    pub fn vision_reading(&mut self, at: UnixMicros, phase: Phase) {
        let Some((log, debounce)) = &mut self.vision else {
            return;
        };
        if debounce.accepted == Some(phase) {
            debounce.candidate = None;
            log.report(at, phase);
            return;
        }
        let (since, seen) = match debounce.candidate {
            Some((p, since, n)) if p == phase => (since, n + 1),
            _ => (at, 1),
        };
        debounce.candidate = Some((phase, since, seen));
        if seen >= VISION_CONFIRMATIONS {
            debounce.accepted = Some(phase);
            debounce.candidate = None;
            log.report(since, phase);
            log.report(at, phase);
        }
    }

    /// The timeline as known at `now`, cross-checked across sources.
    pub fn timeline(&mut self, now: UnixMicros) -> Result<PhaseTimeline, SignalError> {
        let mut parts = Vec::new();
        if let Some(plan) = &self.plan {
            parts.push(PhaseTimeline::from_fixed_plan(
                plan,
                now - HISTORY_US,
                now + 1,
            )?);
        }
        if let Some(log) = &mut self.controller {
            log.prune(now);
            parts.push(log.timeline(now));
        }
        if let Some((log, _)) = &mut self.vision {
            log.prune(now);
            parts.push(log.timeline(now));
        }
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        Ok(parts.fold(first, |acc, t| {
            acc.cross_check_within(&t, AGREEMENT_TOLERANCE_US)
        }))
    }
}

/// What the controller listener delivers: a message, or why a datagram was
/// refused (logged by the caller; the feed keeps running).
pub type ControllerDelivery = Result<ControllerMessage, SignalError>;

/// Listens for controller datagrams on a UDP socket, on its own thread.
#[derive(Debug)]
pub struct ControllerListener {
    local: SocketAddr,
    messages: mpsc::Receiver<(UnixMicros, ControllerDelivery)>,
}

impl ControllerListener {
    /// Binds `listen` (`host:port`) and starts receiving.
    pub fn bind(listen: &str) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(listen)?;
        let local = socket.local_addr()?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("controller-{local}"))
            .spawn(move || {
                let mut buf = [0u8; 2048];
                loop {
                    let n = match socket.recv(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return,
                    };
                    let delivery = ControllerMessage::parse(&buf[..n]);
                    if tx.send((now_unix_us(), delivery)).is_err() {
                        return; // the receiver is gone: the pipeline stopped
                    }
                }
            })?;
        Ok(Self {
            local,
            messages: rx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Everything received since the last call, with the receive time.
    pub fn drain(&self) -> Vec<(UnixMicros, ControllerDelivery)> {
        self.messages.try_iter().collect()
    }

    /// Waits up to `timeout` for the next delivery.
    pub fn recv_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Option<(UnixMicros, ControllerDelivery)> {
        self.messages.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T0: i64 = 1_773_471_600_000_000;

    fn msg(state: Phase, at_us: i64) -> ControllerMessage {
        ControllerMessage {
            group: "B".into(),
            state,
            at_us,
        }
    }

    #[test]
    fn a_controller_feed_becomes_a_timeline_and_goes_unknown_when_silent() {
        let mut s = LiveSignal::new(None, true, false);
        s.controller_message(&msg(Phase::Green, T0));
        s.controller_message(&msg(Phase::Amber, T0 + 20_000_000));
        s.controller_message(&msg(Phase::Red, T0 + 23_000_000));
        let t = s.timeline(T0 + 25_000_000).expect("timeline");
        let ctx = t.context_at(T0 + 24_000_000);
        assert_eq!(ctx.phase, Phase::Red);
        assert_eq!(ctx.amber_before_us, Some(3_000_000));
        // Heartbeats keep it known; without them it goes unknown.
        s.controller_message(&msg(Phase::Red, T0 + 30_000_000));
        let t = s.timeline(T0 + 39_000_000).expect("timeline");
        assert_eq!(t.phase_at(T0 + 38_000_000), Phase::Red);
        let t = s.timeline(T0 + 60_000_000).expect("timeline");
        assert_eq!(t.phase_at(T0 + 45_000_000), Phase::Unknown);
    }

    #[test]
    fn vision_needs_consistent_readings_and_dates_the_change_at_the_first() {
        let mut s = LiveSignal::new(None, false, true);
        let frame = 100_000;
        for i in 0..10 {
            s.vision_reading(T0 + i * frame, Phase::Green);
        }
        // One stray red reading, then amber for good.
        s.vision_reading(T0 + 10 * frame, Phase::Red);
        for i in 11..20 {
            s.vision_reading(T0 + i * frame, Phase::Amber);
        }
        let t = s.timeline(T0 + 19 * frame).expect("timeline");
        let ctx = t.context_at(T0 + 18 * frame);
        assert_eq!(ctx.phase, Phase::Amber);
        assert_eq!(ctx.since_us, T0 + 11 * frame);
        assert_eq!(
            t.phase_at(T0 + 10 * frame),
            Phase::Green,
            "the stray red was ignored"
        );
    }

    #[test]
    fn plan_and_controller_that_disagree_are_unknown_there() {
        let plan: FixedTimePlan = toml::from_str(
            r#"
            cycle_s = 20.0
            anchor = 2026-03-14T07:00:00Z
            offset_s = 0.0
            phases = [
              { state = "green", duration_s = 8.0 },
              { state = "amber", duration_s = 3.0 },
              { state = "red", duration_s = 9.0 },
            ]"#,
        )
        .expect("plan");
        let t0 = 1_773_471_600_000_000; // 2026-03-14T07:00:00Z, a cycle start
        let mut s = LiveSignal::new(Some(plan), true, false);
        // The controller agrees until it turns red 2 s late.
        s.controller_message(&msg(Phase::Green, t0));
        s.controller_message(&msg(Phase::Amber, t0 + 8_000_000));
        s.controller_message(&msg(Phase::Red, t0 + 13_000_000));
        s.controller_message(&msg(Phase::Red, t0 + 15_000_000));
        let t = s.timeline(t0 + 16_000_000).expect("timeline");
        assert_eq!(t.phase_at(t0 + 5_000_000), Phase::Green);
        assert_eq!(t.phase_at(t0 + 12_000_000), Phase::Unknown);
        assert_eq!(t.phase_at(t0 + 14_000_000), Phase::Red);
    }

    #[test]
    fn the_listener_delivers_messages_and_explains_bad_datagrams() {
        let listener = ControllerListener::bind("127.0.0.1:0").expect("bind");
        let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
        let to = listener.local_addr();
        sender
            .send_to(
                br#"{"group":"B","state":"red","at_us":1773471600000000}"#,
                to,
            )
            .expect("send");
        sender.send_to(b"not json", to).expect("send");
        let first = listener
            .recv_timeout(Duration::from_secs(5))
            .expect("a delivery");
        assert_eq!(first.1.expect("valid"), msg(Phase::Red, T0));
        let second = listener
            .recv_timeout(Duration::from_secs(5))
            .expect("a delivery");
        let err = second.1.expect_err("invalid");
        assert!(err.to_string().contains("not json"), "{err}");
    }
}
