//! Ingest hot paths: the packet ring every packet passes through, and
//! decode (+ RGB conversion) through the real ingest path.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ffmpeg_next as ffmpeg;
use vigil_video::bench::measure_decode;
use vigil_video::{PacketRing, RingConfig, StoredPacket, StreamInfo};

fn ring_push(c: &mut Criterion) {
    vigil_video::init();
    let stream = StreamInfo {
        parameters: ffmpeg::codec::Parameters::new(),
        time_base: ffmpeg::Rational::new(1, 90_000),
        codec_name: "h264".into(),
    };
    // 25 fps, 2 s GOPs, 20 kB packets (4 Mbit/s): a minute of camera packets.
    let packets: Vec<StoredPacket> = (0..1500i64)
        .map(|i| StoredPacket {
            packet: ffmpeg::Packet::copy(&[0u8; 20_000]),
            time_us: i * 40_000,
            decode_time_us: i * 40_000,
            keyframe: i % 50 == 0,
        })
        .collect();
    let mut group = c.benchmark_group("packet_ring");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("push_1500_packets_5s_pre_roll", |b| {
        b.iter_batched(
            || packets.clone(),
            |batch| {
                let mut ring = PacketRing::new(RingConfig::default());
                for p in batch {
                    ring.push(1, &stream, p);
                }
                ring.stats()
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn decode_demo(c: &mut Criterion) {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/motorway-a40.mp4");
    let mut group = c.benchmark_group("ingest_decode_demo_600_frames");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(600));
    for (name, rgb) in [("decode", false), ("decode_rgb", true)] {
        group.bench_function(name, |b| {
            b.iter(|| measure_decode(&clip, 1, rgb, RingConfig::default()).expect("decode"))
        });
    }
    group.finish();
}

criterion_group!(benches, ring_push, decode_demo);
criterion_main!(benches);
