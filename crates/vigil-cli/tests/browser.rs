//! Browser end to end of the review UI: real signed packages (stills and
//! clip cut from the bundled demo footage) delivered by the edge's uploader
//! to a real `vigil case serve`, then driven in Debian's headless Chromium
//! by `e2e/review.mjs` (playwright-core): log in, play and confirm an
//! event, dismiss another and have a second supervisor approve it, look
//! the plate up on the public page. Screenshots land in `target/e2e/`.
//!
//! Needs node, `e2e/node_modules` and /usr/bin/chromium, which
//! `./dev.sh test` installs. Set VIGIL_SKIP_BROWSER=1 to skip it knowingly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vigil_evidence::keys::DeviceKey;
use vigil_evidence::synthetic::red_light_content;
use vigil_evidence::uploader::{HttpSink, UploadConfig, Uploader};
use vigil_evidence::Spool;

const PASSWORD: &str = "browser test password";
const DEVICE: &str = "edge-browser-1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// Frames and a 4 s H.264 clip from the demo footage, by ffmpeg.
fn demo_media(dir: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let demo = repo().join("demo/motorway-a40.mp4");
    let clip = dir.join("clip.mp4");
    let ok = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-ss", "6", "-t", "4", "-i"])
        .arg(&demo)
        .args([
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs (./dev.sh test installs it)");
    assert!(ok.success(), "ffmpeg could not cut the demo clip");
    let mut stills = Vec::new();
    for (i, t) in ["7.0", "8.0", "9.0"].iter().enumerate() {
        let still = dir.join(format!("still-{i}.jpg"));
        let ok = Command::new("ffmpeg")
            .args(["-y", "-v", "error", "-ss", t, "-i"])
            .arg(&demo)
            .args(["-frames:v", "1", "-q:v", "3"])
            .arg(&still)
            .status()
            .expect("ffmpeg runs");
        assert!(ok.success());
        stills.push(std::fs::read(&still).expect("still"));
    }
    (stills, std::fs::read(&clip).expect("clip"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready_for_browser() -> Result<(), String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".into());
    }
    if !repo().join("e2e/node_modules/playwright-core").is_dir() {
        return Err("e2e/node_modules is missing (npm ci --prefix e2e)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing (apt-get install chromium)"));
    }
    Ok(())
}

#[test]
fn review_ui_in_headless_chromium() {
    if std::env::var_os("VIGIL_SKIP_BROWSER").is_some() {
        eprintln!("VIGIL_SKIP_BROWSER is set: browser end to end skipped");
        return;
    }
    if let Err(why) = ready_for_browser() {
        panic!("browser end to end cannot run: {why}; ./dev.sh test installs what it needs (or set VIGIL_SKIP_BROWSER=1)");
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let (stills, clip) = demo_media(dir);

    // Three signed packages, as the edge would spool them.
    let key = DeviceKey::from_seed(DEVICE, [11; 32]);
    let pubkey = dir.join("device.key.pub");
    std::fs::write(&pubkey, key.public().to_line() + "\n").expect("pub");
    let spool_dir = dir.join("spool");
    let mut spool = Spool::open(&spool_dir, 1 << 30).expect("spool");
    let mut plate = String::new();
    for n in 1..=3 {
        let mut content =
            red_light_content(DEVICE, "cam-north", n, 64, 36, &clip).expect("content");
        for (path, _role, bytes) in content.files.iter_mut() {
            match path.as_str() {
                "stills/before.jpg" => *bytes = stills[0].clone(),
                "stills/stop_line.jpg" => *bytes = stills[1].clone(),
                "stills/clearance.jpg" => *bytes = stills[2].clone(),
                _ => {}
            }
        }
        // The demo frames are 960x540: put the path where a vehicle is.
        for (i, p) in content.manifest.trajectory.iter_mut().enumerate() {
            p.image = [520.0 - 12.0 * i as f64, 470.0 - 40.0 * i as f64];
            p.bbox = [
                470.0 - 12.0 * i as f32,
                380.0 - 40.0 * i as f32,
                100.0,
                90.0,
            ];
        }
        content.manifest.site_name = "Ngã tư Phai Vệ, Lạng Sơn (demo)".into();
        plate = content
            .manifest
            .plate
            .as_ref()
            .map(|p| p.text.clone())
            .unwrap_or_default();
        spool.commit(content, &key).expect("commit");
    }

    // Users, then the server.
    let db = format!("sqlite://{}?mode=rwc", dir.join("case.db").display());
    let media = dir.join("media");
    for (user, role) in [
        ("op1", "operator"),
        ("sup1", "supervisor"),
        ("sup2", "supervisor"),
    ] {
        let out = vigil()
            .args(["case", "user", "add", "--db", &db, "--media"])
            .arg(&media)
            .args([
                "--username",
                user,
                "--role",
                role,
                "--password-env",
                "E2E_PASSWORD",
            ])
            .env("E2E_PASSWORD", PASSWORD)
            .output()
            .expect("vigil case user add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = vigil()
        .args(["case", "serve", "--db", &db, "--media"])
        .arg(&media)
        .args(["--listen", "127.0.0.1:0", "--register"])
        .arg(&pubkey)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vigil case serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut base = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.split("listening on ").nth(1) {
            base = rest.split([':', ' ']).take(3).collect::<Vec<_>>().join(":");
            base = base.trim_end_matches(':').to_owned();
            break;
        }
    }
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "server address: {base:?}"
    );

    // The edge's uploader delivers the spool.
    let sink = HttpSink::new(
        &format!("{base}/api/v1/packages"),
        key,
        Duration::from_secs(10),
    )
    .expect("sink");
    let mut up = Uploader::new(sink, UploadConfig::default());
    let round = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(up.run_once(&spool))
        .expect("upload");
    assert_eq!(round.delivered.len(), 3, "{round:?}");

    let out_dir = repo().join("target/e2e");
    let status = Command::new("node")
        .arg(repo().join("e2e/review.mjs"))
        .env("BASE_URL", &base)
        .env("OUT_DIR", &out_dir)
        .env("PASSWORD", PASSWORD)
        .env("PLATE", &plate)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the browser steps failed (screenshots in {})",
        out_dir.display()
    );
    drop(server);

    // Everything the browser did is in an intact audit chain.
    let out = vigil()
        .args(["case", "audit", "verify", "--db", &db, "--media"])
        .arg(&media)
        .output()
        .expect("audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("audit log intact"), "{text}");
}
