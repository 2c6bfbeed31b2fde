//! Decoding and RGB conversion, shared by live ingest and `still`.

use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::frame::RgbImage;
use crate::ring::StreamInfo;
use crate::VideoError;

pub(crate) struct Decoder {
    inner: ffmpeg::decoder::Video,
    scaler: Option<Scaler>,
    source_name: String,
}

struct Scaler {
    key: (ffmpeg::format::Pixel, u32, u32),
    context: scaling::Context,
    out: ffmpeg::frame::Video,
}

impl Decoder {
    /// Opens a decoder for `stream`. `threads` = 0 lets FFmpeg choose;
    /// frame threading is what makes H.264 decode scale across cores.
    pub(crate) fn open(
        stream: &StreamInfo,
        threads: usize,
        source_name: &str,
    ) -> Result<Self, VideoError> {
        let unsupported = |e: ffmpeg::Error| VideoError::UnsupportedCodec {
            source_name: source_name.to_owned(),
            codec: stream.codec_name.clone(),
            message: e.to_string(),
        };
        let mut context =
            ffmpeg::codec::context::Context::from_parameters(stream.parameters.clone())
                .map_err(unsupported)?;
        context.set_threading(ffmpeg::codec::threading::Config {
            kind: ffmpeg::codec::threading::Type::Frame,
            count: threads,
            ..Default::default()
        });
        let inner = context.decoder().video().map_err(unsupported)?;
        Ok(Self {
            inner,
            scaler: None,
            source_name: source_name.to_owned(),
        })
    }

    pub(crate) fn send(&mut self, packet: &ffmpeg::Packet) -> Result<(), ffmpeg::Error> {
        self.inner.send_packet(packet)
    }

    pub(crate) fn send_eof(&mut self) -> Result<(), ffmpeg::Error> {
        self.inner.send_eof()
    }

    /// The next decoded frame, if one is ready.
    pub(crate) fn receive(&mut self) -> Option<ffmpeg::frame::Video> {
        let mut frame = ffmpeg::frame::Video::empty();
        self.inner.receive_frame(&mut frame).ok().map(|()| frame)
    }

    /// Converts a decoded frame to packed RGB24 at full resolution.
    pub(crate) fn convert_to_rgb(
        &mut self,
        frame: &ffmpeg::frame::Video,
    ) -> Result<RgbImage, VideoError> {
        let key = (frame.format(), frame.width(), frame.height());
        let decode_err = |e: ffmpeg::Error| VideoError::Decode {
            source_name: self.source_name.clone(),
            message: format!(
                "RGB conversion of a {}x{} {:?} frame: {e}",
                key.1, key.2, key.0
            ),
        };
        let mut scaler = match self.scaler.take() {
            Some(s) if s.key == key => s,
            _ => Scaler {
                key,
                context: scaling::Context::get(
                    key.0,
                    key.1,
                    key.2,
                    ffmpeg::format::Pixel::RGB24,
                    key.1,
                    key.2,
                    scaling::Flags::BILINEAR,
                )
                .map_err(decode_err)?,
                out: ffmpeg::frame::Video::empty(),
            },
        };
        scaler
            .context
            .run(frame, &mut scaler.out)
            .map_err(decode_err)?;
        let image = pack_rgb(&scaler.out);
        self.scaler = Some(scaler);
        Ok(image)
    }
}

/// Copies an RGB24 frame into a buffer without FFmpeg's row padding.
fn pack_rgb(frame: &ffmpeg::frame::Video) -> RgbImage {
    let (width, height) = (frame.width(), frame.height());
    let row = width as usize * 3;
    let stride = frame.stride(0);
    let plane = frame.data(0);
    let data = if stride == row {
        plane[..row * height as usize].to_vec()
    } else {
        let mut data = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            data.extend_from_slice(&plane[y * stride..y * stride + row]);
        }
        data
    };
    RgbImage {
        width,
        height,
        data,
    }
}
