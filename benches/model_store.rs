//! Start-up costs that every `vigil run` pays before its first frame:
//! re-hashing the model files and validating the site config.

use std::io::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_infer::store::sha256_file;

fn hashing(c: &mut Criterion) {
    const SIZE: usize = 16 << 20;
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let block: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    file.write_all(&block).expect("write");
    file.flush().expect("flush");
    let mut group = c.benchmark_group("model_store");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    group.bench_function("sha256_16MiB", |b| {
        b.iter(|| sha256_file(file.path()).expect("hash"))
    });
    group.finish();
}

fn config_check(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("configs/example-intersection.toml"))
        .expect("example config");
    let manifest =
        vigil_infer::Manifest::load(&root.join("models/manifest.toml")).expect("manifest");
    let catalog = manifest.catalog();
    c.bench_function("config_check_example", |b| {
        b.iter(|| vigil_core::config::check("example", &text, Some(&catalog)).expect("valid"))
    });
}

criterion_group!(benches, hashing, config_check);
criterion_main!(benches);
