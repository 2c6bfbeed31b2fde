//! Where a camera's packets come from, and how FFmpeg opens it.
//!
//! Every source kind goes through FFmpeg's demuxers, because evidence needs
//! the encoded packets exactly as the camera sent them, which OpenCV's
//! `VideoCapture` does not expose.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg_next as ffmpeg;
use vigil_core::config::{Camera, Pacing, RtspTransport, Source};
use vigil_core::time::{now_unix_us, toml_datetime_to_unix_us, UnixMicros};

use crate::VideoError;

/// A source as ingest needs it: resolved paths, credentials filled in.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub camera: String,
    pub kind: SourceKind,
    pub pacing: Pacing,
    /// Wall-clock time of the first frame of a replayed recording.
    pub recorded_at_us: Option<UnixMicros>,
    /// How long a network read may block before the connection counts as lost.
    pub io_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    File {
        path: PathBuf,
    },
    Rtsp {
        url: String,
        transport: RtspTransport,
    },
    HttpMjpeg {
        url: String,
    },
    /// FFmpeg `image2` pattern in glob form.
    Images {
        glob: String,
        fps_num: i32,
        fps_den: i32,
    },
}

impl SourceSpec {
    /// Builds a spec from a camera's config. Relative paths are resolved
    /// against `base_dir` (the config file's directory); a `password_env`
    /// is read from the environment now, so a missing secret fails early.
    pub fn from_config(
        camera_id: &str,
        camera: &Camera,
        base_dir: &Path,
    ) -> Result<Self, VideoError> {
        let invalid = |message: String| VideoError::InvalidSource {
            source_name: format!("camera {camera_id}"),
            message,
        };
        let (kind, pacing, recorded_at_us) = match &camera.source {
            Source::File {
                path,
                pacing,
                recorded_at,
            } => {
                let recorded = match recorded_at {
                    Some(dt) => Some(toml_datetime_to_unix_us(dt).ok_or_else(|| {
                        invalid(format!("recorded_at {dt} lacks a date, time or UTC offset"))
                    })?),
                    None => None,
                };
                let kind = SourceKind::File {
                    path: base_dir.join(path),
                };
                (kind, *pacing, recorded)
            }
            Source::Rtsp {
                url,
                transport,
                username,
                password_env,
            } => {
                let password = match password_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        invalid(format!(
                            "environment variable {var} (password_env) is not set"
                        ))
                    })?),
                    None => None,
                };
                let url = with_credentials(url, username.as_deref(), password.as_deref());
                let kind = SourceKind::Rtsp {
                    url,
                    transport: *transport,
                };
                (kind, Pacing::Realtime, None)
            }
            Source::HttpMjpeg { url } => (
                SourceKind::HttpMjpeg { url: url.clone() },
                Pacing::Realtime,
                None,
            ),
            Source::Images { glob, fps } => {
                let (fps_num, fps_den) = fps_rational(*fps);
                let glob = base_dir.join(glob).to_string_lossy().into_owned();
                (
                    SourceKind::Images {
                        glob,
                        fps_num,
                        fps_den,
                    },
                    Pacing::Fast,
                    None,
                )
            }
        };
        let spec = SourceSpec {
            camera: camera_id.to_owned(),
            kind,
            pacing,
            recorded_at_us,
            io_timeout: Duration::from_secs(5),
        };
        spec.check_locator()?;
        Ok(spec)
    }

    /// Live sources reconnect forever; files and image sets end.
    pub fn is_live(&self) -> bool {
        matches!(
            self.kind,
            SourceKind::Rtsp { .. } | SourceKind::HttpMjpeg { .. }
        )
    }

    /// A name for messages: the camera and its locator, with any password hidden.
    pub fn display_name(&self) -> String {
        let locator = match &self.kind {
            SourceKind::File { path } => path.display().to_string(),
            SourceKind::Rtsp { url, .. } | SourceKind::HttpMjpeg { url } => redact(url),
            SourceKind::Images { glob, .. } => glob.clone(),
        };
        format!("camera {} ({locator})", self.camera)
    }

    fn locator(&self) -> String {
        match &self.kind {
            SourceKind::File { path } => path.to_string_lossy().into_owned(),
            SourceKind::Rtsp { url, .. } | SourceKind::HttpMjpeg { url } => url.clone(),
            SourceKind::Images { glob, .. } => glob.clone(),
        }
    }

    /// FFmpeg takes C strings: an interior NUL would be rejected deep inside
    /// it, so refuse it here with a message that names the source.
    fn check_locator(&self) -> Result<(), VideoError> {
        if self.locator().contains('\0') {
            return Err(VideoError::InvalidSource {
                source_name: self.display_name(),
                message: "the path or URL contains a NUL character".into(),
            });
        }
        if let SourceKind::File { path } = &self.kind {
            if path.to_str().is_none() {
                return Err(VideoError::InvalidSource {
                    source_name: self.display_name(),
                    message: "the path is not valid UTF-8".into(),
                });
            }
        }
        Ok(())
    }

    /// Opens the demuxer. `stop` aborts a blocking open or read as soon as it
    /// is set; so does a network source that delivers nothing for
    /// `io_timeout` after `activity_us` (a wall-clock µs the reader updates
    /// on every packet). FFmpeg's own socket timeouts alone let a hung
    /// camera block for several times their value.
    pub(crate) fn open(
        &self,
        stop: &Arc<AtomicBool>,
        activity_us: &Arc<AtomicI64>,
    ) -> Result<ffmpeg::format::context::Input, VideoError> {
        let open_err = |e: ffmpeg::Error| VideoError::Open {
            source_name: self.display_name(),
            message: e.to_string(),
        };
        let timeout_us = self.io_timeout.as_micros().to_string();
        let mut options = ffmpeg::Dictionary::new();
        match &self.kind {
            SourceKind::File { path } => {
                if !path.exists() {
                    return Err(VideoError::Open {
                        source_name: self.display_name(),
                        message: "no such file".into(),
                    });
                }
            }
            SourceKind::Rtsp { transport, .. } => {
                let transport = match transport {
                    RtspTransport::Tcp => "tcp",
                    RtspTransport::Udp => "udp",
                };
                options.set("rtsp_transport", transport);
                // Socket I/O timeout: a silent camera is a lost connection.
                options.set("timeout", &timeout_us);
            }
            SourceKind::HttpMjpeg { .. } => {
                options.set("rw_timeout", &timeout_us);
                options.set("reconnect", "0");
            }
            SourceKind::Images {
                fps_num, fps_den, ..
            } => {
                // image2 must be named and told the pattern is a glob; its
                // open cannot block, so it needs no interrupt.
                options.set("pattern_type", "glob");
                options.set("framerate", &format!("{fps_num}/{fps_den}"));
                let format = find_input_format("image2").ok_or_else(|| VideoError::Open {
                    source_name: self.display_name(),
                    message: "this FFmpeg build has no image2 demuxer".into(),
                })?;
                return match ffmpeg::format::open_with(&self.locator(), &format, options) {
                    Ok(ffmpeg::format::context::Context::Input(input)) => Ok(input),
                    Ok(_) => Err(VideoError::Open {
                        source_name: self.display_name(),
                        message: "image2 opened as an output".into(),
                    }),
                    Err(e) => Err(open_err(e)),
                };
            }
        }
        let stop = Arc::clone(stop);
        let activity = Arc::clone(activity_us);
        activity.store(now_unix_us(), Ordering::Relaxed);
        let limit_us = i64::try_from(self.io_timeout.as_micros()).unwrap_or(i64::MAX);
        let watch = self.is_live();
        ffmpeg::format::input_with_interrupt_and_dictionary(
            &self.locator(),
            move || {
                stop.load(Ordering::Relaxed)
                    || (watch && now_unix_us() - activity.load(Ordering::Relaxed) > limit_us)
            },
            options,
        )
        .map_err(open_err)
    }
}

fn find_input_format(name: &str) -> Option<ffmpeg::Format> {
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: av_find_input_format only reads the name and returns a pointer
    // to a static demuxer description (or null).
    unsafe {
        let ptr = ffmpeg::ffi::av_find_input_format(c_name.as_ptr());
        if ptr.is_null() {
            None
        } else {
            Some(ffmpeg::Format::Input(ffmpeg::format::Input::wrap(
                ptr as *mut _,
            )))
        }
    }
}

/// Inserts `user:password@` into a URL that has no credentials of its own.
fn with_credentials(url: &str, user: Option<&str>, password: Option<&str>) -> String {
    let Some(user) = user else {
        return url.to_owned();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if rest
        .split('/')
        .next()
        .is_some_and(|authority| authority.contains('@'))
    {
        return url.to_owned();
    }
    let mut creds = percent_encode(user);
    if let Some(p) = password {
        creds.push(':');
        creds.push_str(&percent_encode(p));
    }
    format!("{scheme}://{creds}@{rest}")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Hides the password in `scheme://user:password@host/...`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((creds, host)) => {
            let user = creds.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// A frame rate as a rational FFmpeg accepts (to a thousandth).
fn fps_rational(fps: f64) -> (i32, i32) {
    let num = (fps * 1000.0).round().clamp(1.0, f64::from(i32::MAX)) as i32;
    (num, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_inserted_encoded_and_redacted() {
        let url = with_credentials("rtsp://10.0.0.5:554/s1", Some("op"), Some("p@ss:w/rd"));
        assert_eq!(url, "rtsp://op:p%40ss%3Aw%2Frd@10.0.0.5:554/s1");
        assert_eq!(redact(&url), "rtsp://op:***@10.0.0.5:554/s1");
        // Credentials already in the URL win.
        let own = "rtsp://a:b@host/s";
        assert_eq!(with_credentials(own, Some("x"), Some("y")), own);
        assert_eq!(redact("rtsp://host/s"), "rtsp://host/s");
    }
}
