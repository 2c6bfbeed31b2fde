//! Building an evidence package: 3 stills at 1920x1080, a 6 s 1080p clip
//! (H.264, 4 Mbit/s, about 3 MB), a plate crop and the evidence sheet.
//!
//! Issue 6's target: under 30 ms of CPU beyond JPEG encoding, i.e. for
//! `seal_and_tar` (file hashes, canonical manifest, Ed25519 signature, tar).
//! Times are the benchmark thread's CPU time (`/proc/thread-self/schedstat`),
//! so a busy machine does not inflate them; wall time where that is missing.
//!
//! Inputs come from the demo clip through the ffmpeg CLI, into a temp dir:
//! three frames scaled to 1080p, and a 6 s re-encode like a camera's stream
//! (see `benches/make-inputs.sh` at the root). Without ffmpeg, synthetic
//! frames and random clip bytes stand in (hashing cost is the same).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vigil_core::image::RgbImage;
use vigil_evidence::keys::DeviceKey;
use vigil_evidence::package::PackageContent;
use vigil_evidence::sheet::{encode_jpeg, render_sheet, SheetFacts};
use vigil_evidence::synthetic::{frame, red_light_content};

const W: u32 = 1920;
const H: u32 = 1080;

// ------------------------------------------------------ CPU-time measurement

/// The current thread's CPU time, ns, or `None` where the kernel does not
/// say.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn use_cpu_time() -> bool {
    static CPU: OnceLock<bool> = OnceLock::new();
    *CPU.get_or_init(|| {
        let ok = thread_cpu_ns().is_some();
        if !ok {
            eprintln!("note: no /proc/thread-self/schedstat; measuring wall time");
        }
        ok
    })
}

fn wall_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn now_ns() -> u64 {
    if use_cpu_time() {
        thread_cpu_ns().unwrap_or_else(wall_ns)
    } else {
        wall_ns()
    }
}

/// Criterion measurement: thread CPU time in ns.
struct CpuTime;

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        for v in values.iter_mut() {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        match throughput {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => {
                // bytes per ns -> MB/s
                for v in values.iter_mut() {
                    *v = *b as f64 * 1e3 / *v;
                }
                let _ = typical;
                "MB/s"
            }
            Throughput::Elements(e) | Throughput::ElementsAndBytes { elements: e, .. } => {
                for v in values.iter_mut() {
                    *v = *e as f64 * 1e9 / *v;
                }
                "elem/s"
            }
            Throughput::Bits(b) => {
                for v in values.iter_mut() {
                    *v = *b as f64 * 1e3 / *v;
                }
                "Mbit/s"
            }
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        now_ns()
    }

    fn end(&self, start: u64) -> u64 {
        now_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

// ------------------------------------------------------------------- inputs

struct Inputs {
    stills: Vec<RgbImage>,
    plate: RgbImage,
    clip: Vec<u8>,
}

fn ffmpeg(args: &[&str]) -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Three 1080p frames and a 6 s 1080p clip from the demo, or stand-ins.
fn inputs() -> Inputs {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/motorway-a40.mp4");
    let dir = tempfile::tempdir().ok();
    let from_demo = dir.as_ref().and_then(|dir| {
        let demo = demo.to_str()?;
        let clip_path = dir.path().join("clip.mp4");
        let clip_arg = clip_path.to_str()?;
        // A camera-like stream: 1080p, 25 fps, 4 Mbit/s, 2 s GOPs.
        if !ffmpeg(&[
            "-i",
            demo,
            "-t",
            "6",
            "-vf",
            "scale=1920:1080:flags=lanczos,fps=25",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "4M",
            "-maxrate",
            "4M",
            "-bufsize",
            "8M",
            "-g",
            "50",
            "-an",
            clip_arg,
        ]) {
            return None;
        }
        let mut stills = Vec::new();
        for (i, at) in ["1.0", "3.0", "5.0"].iter().enumerate() {
            let raw = dir.path().join(format!("still{i}.rgb"));
            if !ffmpeg(&[
                "-ss",
                at,
                "-i",
                demo,
                "-frames:v",
                "1",
                "-vf",
                "scale=1920:1080:flags=lanczos",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                raw.to_str()?,
            ]) {
                return None;
            }
            stills.push(RgbImage::from_raw(W, H, std::fs::read(&raw).ok()?)?);
        }
        Some((stills, std::fs::read(&clip_path).ok()?))
    });
    let (stills, clip) = from_demo.unwrap_or_else(|| {
        eprintln!(
            "note: ffmpeg or {} unavailable; synthetic stills and random clip bytes",
            demo.display()
        );
        let stills = (0..3).map(|i| frame(W, H, 400 + i * 200)).collect();
        let mut x = 0x1234_5678_9abc_def0u64;
        let clip = (0..3_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        (stills, clip)
    });
    // A plate-sized crop from the middle still.
    let (cw, ch, x0, y0) = (240u32, 80u32, 900u32, 700u32);
    let mut data = Vec::with_capacity((cw * ch * 3) as usize);
    for y in y0..y0 + ch {
        let start = ((y * W + x0) * 3) as usize;
        data.extend_from_slice(&stills[1].data[start..start + (cw * 3) as usize]);
    }
    let plate = RgbImage::from_raw(cw, ch, data).expect("plate crop");
    Inputs {
        stills,
        plate,
        clip,
    }
}

fn sheet(inputs: &Inputs) -> Vec<u8> {
    render_sheet(
        &[
            Some(&inputs.stills[0]),
            Some(&inputs.stills[1]),
            Some(&inputs.stills[2]),
        ],
        Some(&inputs.plate),
        &SheetFacts {
            title: "Red-light violation".into(),
            rows: vec![
                ("Place".into(), "Ngã tư Lạng Sơn".into()),
                ("Time".into(), "2026-03-14 14:20:01 +07:00".into()),
                ("Signal".into(), "red for 1.5 s (amber 3.0 s)".into()),
                ("Speed".into(), "32.5 km/h".into()),
                ("Plate".into(), "12-B1 234.56".into()),
            ],
            marks: [Some([880.0, 640.0, 160.0, 220.0]); 3],
        },
    )
    .expect("sheet")
}

/// Everything encoded: the package's files before sealing.
fn package_content(
    inputs: &Inputs,
    stills: Vec<Vec<u8>>,
    plate: Vec<u8>,
    sheet: Vec<u8>,
) -> PackageContent {
    // The manifest facts of a generated event; its own small files are replaced.
    let mut c = red_light_content("edge-bench", "cam-north", 1, 16, 16, b"").expect("manifest");
    c.files = vec![
        (
            "stills/before.jpg".into(),
            "still_before".into(),
            stills[0].clone(),
        ),
        (
            "stills/stop_line.jpg".into(),
            "still_stop_line".into(),
            stills[1].clone(),
        ),
        (
            "stills/clearance.jpg".into(),
            "still_clearance".into(),
            stills[2].clone(),
        ),
        ("clip.mp4".into(), "clip".into(), inputs.clip.clone()),
        ("plate/plate-0.jpg".into(), "plate_crop".into(), plate),
        ("sheet.jpg".into(), "evidence_sheet".into(), sheet),
    ];
    c
}

fn encode_stills(inputs: &Inputs) -> Vec<Vec<u8>> {
    inputs
        .stills
        .iter()
        .map(|s| encode_jpeg(s).expect("jpeg"))
        .collect()
}

fn bench(c: &mut Criterion<CpuTime>) {
    let inputs = inputs();
    let key = DeviceKey::from_seed("edge-bench", [9; 32]);
    let stills = encode_stills(&inputs);
    let plate = encode_jpeg(&inputs.plate).expect("plate");
    let sheet_bytes = sheet(&inputs);
    let content = package_content(&inputs, stills.clone(), plate.clone(), sheet_bytes.clone());
    let total: usize = content.files.iter().map(|f| f.2.len()).sum();
    eprintln!(
        "package: clip {} bytes, stills {:?} bytes, sheet {} bytes, {} bytes in all",
        inputs.clip.len(),
        stills.iter().map(Vec::len).collect::<Vec<_>>(),
        sheet_bytes.len(),
        total
    );
    let prev = Some("ab".repeat(32));

    // Image work: a few hundred ms an iteration, so fewer samples.
    let mut g = c.benchmark_group("package_images");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("jpeg_encode_3_stills_1080p", |b| {
        b.iter(|| encode_stills(&inputs))
    });
    g.bench_function("evidence_sheet_render_and_encode", |b| {
        b.iter(|| sheet(&inputs))
    });
    g.bench_function("build_total_encode_sheet_seal_tar", |b| {
        b.iter(|| {
            let stills = encode_stills(&inputs);
            let plate = encode_jpeg(&inputs.plate).expect("plate");
            let sheet = sheet(&inputs);
            package_content(&inputs, stills, plate, sheet)
                .seal(42, prev.clone(), &key)
                .expect("seal")
                .to_tar()
                .expect("tar")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("package");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(total as u64));
    // The target: everything beyond JPEG encoding.
    g.bench_function("seal_and_tar", |b| {
        b.iter_batched(
            || content.clone(),
            |c| {
                c.seal(42, prev.clone(), &key)
                    .expect("seal")
                    .to_tar()
                    .expect("tar")
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("seal_only_hashes_manifest_signature", |b| {
        b.iter_batched(
            || content.clone(),
            |c| c.seal(42, prev.clone(), &key).expect("seal"),
            BatchSize::LargeInput,
        )
    });
    let sealed = content.clone().seal(42, prev.clone(), &key).expect("seal");
    g.bench_function("tar_only", |b| b.iter(|| sealed.to_tar().expect("tar")));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench
}
criterion_main!(benches);
