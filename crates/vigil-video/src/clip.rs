//! Evidence clips: the camera's own packets remuxed into MP4, never re-encoded.

use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;
use vigil_core::time::UnixMicros;

use crate::ring::Selection;
use crate::VideoError;

/// What a clip holds, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipInfo {
    pub path: PathBuf,
    /// Scene time of the first frame (a keyframe at or before the request).
    pub start_us: UnixMicros,
    /// Scene time of the last frame.
    pub end_us: UnixMicros,
    pub packets: usize,
    pub bytes: usize,
    pub codec: String,
}

/// Writes `selection` to `path` as MP4. The file appears under its final
/// name only once complete (written as `*.partial`, then renamed).
pub(crate) fn write_mp4(selection: &Selection, path: &Path) -> Result<ClipInfo, VideoError> {
    let clip_err = |message: String| VideoError::Clip {
        path: path.to_owned(),
        message,
    };
    let partial = path.with_extension("mp4.partial");
    let partial_str = partial
        .to_str()
        .filter(|s| !s.contains('\0'))
        .ok_or_else(|| clip_err("the path is not valid UTF-8 or contains NUL".into()))?;
    let first = selection
        .packets
        .first()
        .ok_or_else(|| clip_err("no packets selected".into()))?;

    // Packets without timestamps (HTTP MJPEG) are placed on the scene clock.
    let timed = first.packet.dts().is_some() || first.packet.pts().is_some();
    let in_tb = if timed {
        selection.stream.time_base
    } else {
        ffmpeg::Rational::new(1, 1_000_000)
    };
    let origin = if timed {
        selection
            .packets
            .iter()
            .filter_map(|p| p.packet.dts().or(p.packet.pts()))
            .min()
            .unwrap_or(0)
    } else {
        first.time_us
    };

    let mut octx =
        ffmpeg::format::output_as(partial_str, "mp4").map_err(|e| clip_err(e.to_string()))?;
    {
        let mut ost = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
            .map_err(|e| clip_err(e.to_string()))?;
        ost.set_parameters(selection.stream.parameters.clone());
        ost.set_time_base(in_tb);
        // SAFETY: the stream's parameters were just allocated by FFmpeg; a
        // zero tag lets the MP4 muxer choose its own (the source container's
        // tag may not be valid in MP4).
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
        }
    }
    octx.write_header()
        .map_err(|e| clip_err(format!("writing the MP4 header: {e}")))?;
    let out_tb = octx
        .stream(0)
        .map(|s| s.time_base())
        .ok_or_else(|| clip_err("the output stream vanished".into()))?;
    let mut bytes = 0;
    for stored in &selection.packets {
        let mut pkt = stored.packet.clone();
        if timed {
            pkt.set_pts(pkt.pts().map(|t| t - origin));
            pkt.set_dts(pkt.dts().map(|t| t - origin));
        } else {
            let t = stored.time_us - origin;
            pkt.set_pts(Some(t));
            pkt.set_dts(Some(t));
        }
        pkt.rescale_ts(in_tb, out_tb);
        pkt.set_stream(0);
        pkt.set_position(-1);
        bytes += pkt.size();
        pkt.write_interleaved(&mut octx)
            .map_err(|e| clip_err(format!("writing a packet: {e}")))?;
    }
    octx.write_trailer()
        .map_err(|e| clip_err(format!("finishing the MP4: {e}")))?;
    drop(octx);
    std::fs::rename(&partial, path)
        .map_err(|e| clip_err(format!("renaming the finished clip: {e}")))?;
    let times = selection.packets.iter().map(|p| p.time_us);
    Ok(ClipInfo {
        path: path.to_owned(),
        start_us: times.clone().min().unwrap_or(first.time_us),
        end_us: times.max().unwrap_or(first.time_us),
        packets: selection.packets.len(),
        bytes,
        codec: selection.stream.codec_name.clone(),
    })
}
