//! The per-camera ring of encoded packets that evidence clips are cut from.
//!
//! Ingest pushes every packet it reads, in decode order, whether or not the
//! frame reaches detection: a slow detector may skip frames, but the court
//! must see every frame the camera sent. The ring keeps at least the
//! pre-roll, trimmed only at keyframes so the oldest packet always starts a
//! decodable group of pictures (GOP). A reconnect starts a new *segment*
//! (its codec parameters may differ); a clip never spans two segments.

use std::collections::VecDeque;
use std::time::Duration;

use ffmpeg_next as ffmpeg;
use vigil_core::time::UnixMicros;

#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// The ring always covers at least this much video before the newest packet.
    pub pre_roll: Duration,
    /// Hard memory bound. Reaching it evicts whole GOPs even inside the
    /// pre-roll (counted and logged), so a runaway bitrate cannot exhaust memory.
    pub max_bytes: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            pre_roll: Duration::from_secs(5),
            max_bytes: 64 << 20,
        }
    }
}

/// Codec parameters and time base of one connection's video stream.
///
/// Each segment and each selection owns a copy: FFmpeg's parameters may be
/// sent between threads but not shared, and copying them is cheap.
pub struct StreamInfo {
    pub parameters: ffmpeg::codec::Parameters,
    pub time_base: ffmpeg::Rational,
    pub codec_name: String,
}

impl Clone for StreamInfo {
    fn clone(&self) -> Self {
        Self {
            parameters: self.parameters.clone(),
            time_base: self.time_base,
            codec_name: self.codec_name.clone(),
        }
    }
}

/// One encoded packet with its times on the scene clock.
#[derive(Clone)]
pub struct StoredPacket {
    pub packet: ffmpeg::Packet,
    /// Scene time of the packet's presentation timestamp.
    pub time_us: UnixMicros,
    /// Scene time of its decode timestamp (= `time_us` without B-frames).
    pub decode_time_us: UnixMicros,
    pub keyframe: bool,
}

impl StoredPacket {
    fn size(&self) -> usize {
        self.packet.size()
    }
}

struct Segment {
    id: u64,
    stream: StreamInfo,
    packets: VecDeque<StoredPacket>,
}

/// Memory and coverage of a ring, for metrics and `bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    pub segments: usize,
    pub packets: usize,
    pub bytes: usize,
    pub oldest_us: Option<UnixMicros>,
    pub newest_us: Option<UnixMicros>,
    /// GOPs evicted inside the pre-roll because `max_bytes` was reached.
    pub cap_evictions: u64,
    /// Leading packets dropped because no keyframe preceded them.
    pub undecodable_dropped: u64,
}

/// Packets picked for a clip or a still: one segment, decode order,
/// starting at a keyframe.
pub struct Selection {
    pub stream: StreamInfo,
    pub packets: Vec<StoredPacket>,
}

pub struct PacketRing {
    config: RingConfig,
    segments: VecDeque<Segment>,
    bytes: usize,
    newest_us: Option<UnixMicros>,
    cap_evictions: u64,
    undecodable_dropped: u64,
}

impl PacketRing {
    pub fn new(config: RingConfig) -> Self {
        Self {
            config,
            segments: VecDeque::new(),
            bytes: 0,
            newest_us: None,
            cap_evictions: 0,
            undecodable_dropped: 0,
        }
    }

    /// Appends a packet of connection `segment_id` and trims what the
    /// pre-roll no longer needs.
    pub fn push(&mut self, segment_id: u64, stream: &StreamInfo, packet: StoredPacket) {
        if self.segments.back().is_none_or(|s| s.id != segment_id) {
            self.segments.push_back(Segment {
                id: segment_id,
                stream: stream.clone(),
                packets: VecDeque::new(),
            });
        }
        let Some(segment) = self.segments.back_mut() else {
            return;
        };
        // Nothing before the first keyframe can be decoded, so it cannot be evidence.
        if segment.packets.is_empty() && !packet.keyframe {
            self.undecodable_dropped += 1;
            return;
        }
        self.newest_us = Some(
            self.newest_us
                .map_or(packet.time_us, |n| n.max(packet.time_us)),
        );
        self.bytes += packet.size();
        segment.packets.push_back(packet);
        self.trim_to_pre_roll();
        self.trim_to_cap();
    }

    /// Drops everything before the newest keyframe that is still at least
    /// `pre_roll` old, so coverage starts at a keyframe and spans the pre-roll.
    fn trim_to_pre_roll(&mut self) {
        let Some(newest) = self.newest_us else { return };
        let cutoff = newest - i64::try_from(self.config.pre_roll.as_micros()).unwrap_or(i64::MAX);
        let mut keep: Option<(usize, usize)> = None;
        'search: for (si, seg) in self.segments.iter().enumerate().rev() {
            for (pi, p) in seg.packets.iter().enumerate().rev() {
                if p.keyframe && p.time_us <= cutoff {
                    keep = Some((si, pi));
                    break 'search;
                }
            }
        }
        if let Some((si, pi)) = keep {
            self.drop_before(si, pi);
        }
    }

    /// Evicts the oldest GOPs while over the byte cap, keeping the newest GOP.
    fn trim_to_cap(&mut self) {
        while self.bytes > self.config.max_bytes {
            let next_key = self.segments.iter().enumerate().find_map(|(si, seg)| {
                let skip = usize::from(si == 0);
                seg.packets
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .find(|(_, p)| p.keyframe)
                    .map(|(pi, _)| (si, pi))
            });
            let Some((si, pi)) = next_key else { break };
            self.drop_before(si, pi);
            self.cap_evictions += 1;
            tracing::warn!(
                max_bytes = self.config.max_bytes,
                "packet ring over its byte cap: evicted a GOP inside the pre-roll"
            );
        }
    }

    /// Removes every packet before packet `pi` of segment `si`.
    fn drop_before(&mut self, si: usize, pi: usize) {
        for _ in 0..si {
            if let Some(seg) = self.segments.pop_front() {
                self.bytes -= seg.packets.iter().map(StoredPacket::size).sum::<usize>();
            }
        }
        if let Some(seg) = self.segments.front_mut() {
            for p in seg.packets.drain(..pi) {
                self.bytes -= p.size();
            }
        }
    }

    pub fn stats(&self) -> RingStats {
        let first = self.segments.front().and_then(|s| s.packets.front());
        RingStats {
            segments: self.segments.len(),
            packets: self.segments.iter().map(|s| s.packets.len()).sum(),
            bytes: self.bytes,
            oldest_us: first.map(|p| p.time_us),
            newest_us: self.newest_us,
            cap_evictions: self.cap_evictions,
            undecodable_dropped: self.undecodable_dropped,
        }
    }

    /// Packets covering `[from, to]`: from the last keyframe at or before
    /// `from` (or the segment's first, if `from` precedes it) up to the last
    /// packet decoded at or before `to`. `None` when no segment overlaps.
    pub fn select(&self, from: UnixMicros, to: UnixMicros) -> Option<Selection> {
        let seg = self.segments.iter().rev().find(|s| {
            let first = s.packets.front().map(|p| p.time_us);
            let last = s.packets.iter().map(|p| p.time_us).max();
            matches!((first, last), (Some(f), Some(l)) if f <= to && from <= l)
        })?;
        let start = seg
            .packets
            .iter()
            .rposition(|p| p.keyframe && p.time_us <= from)
            .unwrap_or(0);
        let packets: Vec<StoredPacket> = seg
            .packets
            .iter()
            .skip(start)
            .take_while(|p| p.decode_time_us <= to)
            .cloned()
            .collect();
        if packets.is_empty() {
            return None;
        }
        Some(Selection {
            stream: seg.stream.clone(),
            packets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamInfo {
        StreamInfo {
            parameters: ffmpeg::codec::Parameters::new(),
            time_base: ffmpeg::Rational::new(1, 1_000_000),
            codec_name: "test".into(),
        }
    }

    /// A 1 kB packet at `t` seconds; every `gop`-th is a keyframe.
    fn packet(i: i64, fps: i64, gop: i64) -> StoredPacket {
        let t = i * 1_000_000 / fps;
        StoredPacket {
            packet: ffmpeg::Packet::copy(&[0u8; 1000]),
            time_us: t,
            decode_time_us: t,
            keyframe: i % gop == 0,
        }
    }

    fn ring(pre_roll_s: u64, max_bytes: usize) -> PacketRing {
        PacketRing::new(RingConfig {
            pre_roll: Duration::from_secs(pre_roll_s),
            max_bytes,
        })
    }

    #[test]
    fn the_ring_keeps_the_pre_roll_from_a_keyframe_and_no_more_than_a_gop_extra() {
        let mut r = ring(5, usize::MAX);
        let s = stream();
        for i in 0..25 * 60 {
            r.push(1, &s, packet(i, 25, 25));
        }
        let st = r.stats();
        let newest = st.newest_us.expect("newest");
        let oldest = st.oldest_us.expect("oldest");
        let span = newest - oldest;
        assert!(span >= 5_000_000, "span {span} shorter than the pre-roll");
        assert!(
            span < 6_000_000,
            "span {span} longer than pre-roll + one GOP"
        );
        assert_eq!(oldest % 1_000_000, 0, "oldest packet must be a keyframe");
        assert_eq!(st.bytes, st.packets * 1000);
    }

    #[test]
    fn the_byte_cap_bounds_memory_by_evicting_whole_gops() {
        let mut r = ring(5, 40_000);
        let s = stream();
        for i in 0..500 {
            r.push(1, &s, packet(i, 25, 25));
        }
        let st = r.stats();
        assert!(st.bytes <= 40_000, "{st:?}");
        assert!(st.cap_evictions > 0);
        assert_eq!(st.oldest_us.expect("oldest") % 1_000_000, 0);
    }

    #[test]
    fn packets_before_the_first_keyframe_are_not_kept() {
        let mut r = ring(5, usize::MAX);
        let s = stream();
        for i in 10..30 {
            r.push(1, &s, packet(i, 25, 25));
        }
        let st = r.stats();
        assert_eq!(st.undecodable_dropped, 15);
        assert_eq!(st.oldest_us, Some(1_000_000));
    }

    #[test]
    fn a_selection_starts_at_a_keyframe_and_stays_in_one_segment() {
        let mut r = ring(60, usize::MAX);
        let s = stream();
        for i in 0..100 {
            r.push(1, &s, packet(i, 25, 25));
        }
        for i in 150..250 {
            r.push(2, &s, packet(i, 25, 25));
        }
        let sel = r.select(1_500_000, 2_500_000).expect("covered");
        assert_eq!(sel.packets.first().map(|p| p.time_us), Some(1_000_000));
        assert_eq!(sel.packets.last().map(|p| p.time_us), Some(2_480_000));
        assert!(sel.packets[0].keyframe);
        // After the reconnect: the second segment only.
        let sel = r.select(7_100_000, 7_200_000).expect("covered");
        assert_eq!(sel.packets.first().map(|p| p.time_us), Some(7_000_000));
        assert!(
            r.select(4_100_000, 5_000_000).is_none(),
            "the gap holds nothing"
        );
    }
}
