//! Every way of changing a package after the fact, each caught by verify
//! with the right message; chains with gaps, reorderings and replays; and
//! determinism of the manifest.

use std::path::{Path, PathBuf};

use vigil_evidence::keys::{DeviceKey, Keyring};
use vigil_evidence::manifest::canonical_json;
use vigil_evidence::package::read_package;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::{verify_all, Spool};

const DEVICE: &str = "edge-test-1";

fn key() -> DeviceKey {
    DeviceKey::from_seed(DEVICE, [7; 32])
}

fn keyring() -> Keyring {
    let mut k = Keyring::default();
    k.insert(key().public());
    k
}

/// Three committed packages of camera "cam-a", as tar files.
fn three_packages(dir: &Path) -> Vec<PathBuf> {
    let mut spool = Spool::open(&dir.join("spool"), 1 << 30).expect("spool");
    (1..=3)
        .map(|n| {
            let content =
                red_light_content(DEVICE, "cam-a", n, 320, 180, b"not really an mp4 but bytes")
                    .expect("content");
            spool.commit(content, &key()).expect("commit").0.path
        })
        .collect()
}

/// The package at `tar` unpacked into `dir/name`.
fn unpack(tar: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    for (path, bytes) in read_package(tar).expect("read") {
        let target = out.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
    out
}

fn problems(paths: &[PathBuf], keys: &Keyring) -> Vec<String> {
    verify_all(paths, keys)
        .into_iter()
        .flat_map(|r| r.problems)
        .collect()
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    let i = offset.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

fn edit_manifest(pkg: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = pkg.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(&path, canonical_json(&v)).expect("write");
}

#[test]
fn untouched_packages_and_their_chain_verify_in_both_forms() {
    let dir = tempfile::tempdir().expect("tmp");
    let tars = three_packages(dir.path());
    assert_eq!(problems(&tars, &keyring()), Vec::<String>::new());
    let dirs: Vec<PathBuf> = tars
        .iter()
        .enumerate()
        .map(|(i, t)| unpack(t, dir.path(), &format!("pkg{i}")))
        .collect();
    assert_eq!(problems(&dirs, &keyring()), Vec::<String>::new());
}

type Tamper = fn(&Path);

#[test]
fn each_tampering_is_detected_with_its_reason() {
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "a changed byte in a still",
            |p| flip(&p.join("stills/stop_line.jpg"), 500),
            "file stills/stop_line.jpg was modified",
        ),
        (
            "a changed byte in the clip",
            |p| flip(&p.join("clip.mp4"), 3),
            "file clip.mp4 was modified",
        ),
        (
            "a changed byte in the sheet",
            |p| flip(&p.join("sheet.jpg"), 2000),
            "file sheet.jpg was modified",
        ),
        (
            "a removed file",
            |p| std::fs::remove_file(p.join("plate/plate-0.jpg")).expect("rm"),
            "file plate/plate-0.jpg is listed in the manifest but missing",
        ),
        (
            "an added file",
            |p| std::fs::write(p.join("stills/extra.jpg"), b"x").expect("add"),
            "file stills/extra.jpg is not in the manifest",
        ),
        (
            "an edited plate in the manifest",
            |p| edit_manifest(p, |v| v["plate"]["text"] = "29-B1 999.99".into()),
            "signature does not verify",
        ),
        (
            "a downgraded violation type",
            |p| {
                edit_manifest(p, |v| {
                    v["violation"]["type"] = "stop_line_encroachment".into()
                })
            },
            "signature does not verify",
        ),
        (
            "a re-hashed file and manifest",
            |p| {
                flip(&p.join("clip.mp4"), 3);
                let bytes = std::fs::read(p.join("clip.mp4")).expect("clip");
                let hash = vigil_evidence::manifest::sha256_hex(&bytes);
                edit_manifest(p, |v| {
                    for f in v["files"].as_array_mut().expect("files") {
                        if f["path"] == "clip.mp4" {
                            f["sha256"] = hash.clone().into();
                        }
                    }
                });
            },
            "signature does not verify",
        ),
        (
            "a manifest rewritten with white space",
            |p| {
                let path = p.join("manifest.json");
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
                std::fs::write(&path, serde_json::to_vec_pretty(&v).expect("pretty"))
                    .expect("write");
            },
            "not in canonical form",
        ),
        (
            "a field the schema does not know",
            |p| edit_manifest(p, |v| v["note"] = "let go".into()),
            "does not match schema v1",
        ),
        (
            "a removed signature",
            |p| std::fs::remove_file(p.join("signature")).expect("rm"),
            "signature is missing",
        ),
        (
            "a garbled signature",
            |p| std::fs::write(p.join("signature"), "ed25519:zz").expect("w"),
            "signature: an Ed25519 signature is 128 hex digits",
        ),
        (
            "a removed manifest",
            |p| std::fs::remove_file(p.join("manifest.json")).expect("rm"),
            "manifest.json is missing",
        ),
        (
            "a manifest that is not JSON",
            |p| std::fs::write(p.join("manifest.json"), "{").expect("w"),
            "manifest.json is not valid JSON",
        ),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let tars = three_packages(dir.path());
    for (i, (what, tamper, expected)) in cases.iter().enumerate() {
        let pkg = unpack(&tars[0], dir.path(), &format!("case{i}"));
        tamper(&pkg);
        let found = problems(&[pkg], &keyring());
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{what}: expected a problem containing {expected:?}, got {found:?}"
        );
    }
}

#[test]
fn a_tampered_or_broken_tar_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let tars = three_packages(dir.path());
    let copy = dir.path().join("copy.tar");
    std::fs::copy(&tars[1], &copy).expect("copy");
    // Somewhere inside the first still's data (past the tar headers).
    let len = std::fs::metadata(&copy).expect("meta").len() as usize;
    flip(&copy, len / 2);
    let found = problems(std::slice::from_ref(&copy), &keyring());
    assert!(
        !found.is_empty(),
        "a flipped byte in the tar went unnoticed"
    );
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x41u8; 700]).expect("write");
    let found = problems(&[garbage], &keyring());
    assert!(
        found
            .iter()
            .any(|p| p.contains("not a readable tar") || p.contains("manifest.json is missing")),
        "{found:?}"
    );
}

#[test]
fn the_wrong_key_or_an_unknown_device_fails_the_signature() {
    let dir = tempfile::tempdir().expect("tmp");
    let tars = three_packages(dir.path());
    let mut other = Keyring::default();
    other.insert(DeviceKey::from_seed(DEVICE, [8; 32]).public());
    let found = problems(&tars[..1], &other);
    assert!(
        found
            .iter()
            .any(|p| p.contains("signature does not verify")),
        "{found:?}"
    );
    let mut stranger = Keyring::default();
    stranger.insert(DeviceKey::from_seed("someone-else", [7; 32]).public());
    let found = problems(&tars[..1], &stranger);
    assert!(
        found
            .iter()
            .any(|p| p.contains("no registered public key for device \"edge-test-1\"")),
        "{found:?}"
    );
}

#[test]
fn gaps_reorderings_replays_and_replacements_break_the_chain() {
    let dir = tempfile::tempdir().expect("tmp");
    let t = three_packages(dir.path());
    let gap = problems(&[t[0].clone(), t[2].clone()], &keyring());
    assert!(
        gap.iter()
            .any(|p| p.contains("sequence gap: after 1 comes 3 (1 missing)")),
        "{gap:?}"
    );
    let reorder = problems(&[t[1].clone(), t[0].clone()], &keyring());
    assert!(
        reorder
            .iter()
            .any(|p| p.contains("out of order: sequence 1 comes after sequence 2")),
        "{reorder:?}"
    );
    let replay = problems(&[t[0].clone(), t[1].clone(), t[1].clone()], &keyring());
    assert!(
        replay.iter().any(|p| p.contains("replayed package")),
        "{replay:?}"
    );

    // A different, validly signed package 2 from another spool: its chain
    // hash points at a different package 1.
    let other_dir = tempfile::tempdir().expect("tmp");
    let mut spool = Spool::open(other_dir.path(), 1 << 30).expect("spool");
    let mut replaced = None;
    for n in [10, 11] {
        let c = red_light_content(DEVICE, "cam-a", n, 320, 180, b"other clip").expect("content");
        replaced = Some(spool.commit(c, &key()).expect("commit").0.path);
    }
    let replaced = replaced.expect("package");
    let broken = problems(&[t[0].clone(), replaced, t[2].clone()], &keyring());
    assert!(
        broken.iter().any(|p| p.contains("broken chain")),
        "{broken:?}"
    );
}

#[test]
fn manifests_with_single_precision_numbers_stay_canonical() {
    // Box coordinates are f32: their shortest text differs from an f64's.
    let mut c = red_light_content(DEVICE, "cam-a", 1, 160, 90, b"clip").expect("content");
    c.manifest.trajectory[0].bbox = [400.016_78, 383.485_35, 40.186_157, 28.229_736];
    let dir = tempfile::tempdir().expect("tmp");
    let mut spool = Spool::open(dir.path(), 1 << 30).expect("spool");
    let path = spool.commit(c, &key()).expect("commit").0.path;
    assert_eq!(problems(&[path], &keyring()), Vec::<String>::new());
}

#[test]
fn the_same_event_gives_the_same_manifest_apart_from_wall_clock_fields() {
    let build = || {
        let c = red_light_content(DEVICE, "cam-a", 5, 320, 180, b"clip").expect("content");
        let sealed = c.seal(5, Some("a".repeat(64)), &key()).expect("seal");
        let mut v: serde_json::Value =
            serde_json::from_slice(&sealed.manifest_bytes).expect("json");
        for field in v["wall_clock_fields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let pointer = field.as_str().expect("pointer").to_owned();
            if let Some(x) = v.pointer_mut(&pointer) {
                *x = serde_json::Value::Null;
            }
        }
        (canonical_json(&v), sealed.to_tar().expect("tar").len())
    };
    let (a, len_a) = build();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (b, len_b) = build();
    assert_eq!(a, b);
    assert_eq!(len_a, len_b);
}

#[test]
fn a_second_writer_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = Spool::open(dir.path(), 1 << 20).expect("first");
    let second = Spool::open(dir.path(), 1 << 20).expect_err("second");
    assert!(
        second.to_string().contains("in use by another process"),
        "{second}"
    );
    drop(first);
    Spool::open(dir.path(), 1 << 20).expect("free again once the first is gone");
}
