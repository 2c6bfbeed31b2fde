//! `vigil keygen` and `vigil verify` as an auditor meets them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vigil_evidence::keys::DeviceKey;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::Spool;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("the vigil binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Keygen through the CLI, then three packages signed with that key.
fn keyed_spool(dir: &Path) -> (PathBuf, PathBuf) {
    let key_path = dir.join("device.key");
    let out = vigil(&["keygen", "--device-id", "edge-cli-1", "--out", s(&key_path)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("edge-cli-1 ed25519:"), "{}", text(&out));
    let key = DeviceKey::read(&key_path).expect("the written key reads back");
    let mut spool = Spool::open(&dir.join("spool"), 1 << 30).expect("spool");
    for n in 1..=3 {
        let c = red_light_content("edge-cli-1", "cam-1", n, 160, 90, b"clip").expect("content");
        spool.commit(c, &key).expect("commit");
    }
    (dir.join("spool/pending/cam-1"), dir.join("device.key.pub"))
}

#[test]
fn keygen_refuses_to_overwrite_a_device_identity() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("k");
    assert!(vigil(&["keygen", "--device-id", "d1", "--out", s(&key)])
        .status
        .success());
    let again = vigil(&["keygen", "--device-id", "d1", "--out", s(&key)]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("refusing to overwrite"),
        "{}",
        text(&again)
    );
}

#[test]
fn verify_passes_a_valid_chain_and_exits_1_naming_a_tampered_package() {
    let dir = tempfile::tempdir().expect("tmp");
    let (packages, public) = keyed_spool(dir.path());
    let ok = vigil(&["verify", s(&packages), "--pubkey", s(&public)]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("3 package(s): 3 valid, 0 invalid"),
        "{}",
        text(&ok)
    );

    // Drop the middle package: the chain has a gap.
    let middle = std::fs::read_dir(&packages)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("000000000002-"))
        .expect("package 2");
    std::fs::remove_file(&middle).expect("rm");
    let gap = vigil(&["verify", s(&packages), "--pubkey", s(&public)]);
    assert_eq!(gap.status.code(), Some(1), "{}", text(&gap));
    assert!(
        text(&gap).contains("sequence gap: after 1 comes 3"),
        "{}",
        text(&gap)
    );
}

#[test]
fn verify_without_a_key_says_how_to_give_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = vigil(&["verify", s(dir.path())]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--pubkey"), "{}", text(&out));
}
