//! The FFmpeg side: demux once, decode the best audio stream to 16 kHz mono and the best
//! video stream's frames where the [`Sampler`] asks for them.

use crate::{frame_label, Frame, Sampler, Video, VideoError, VideoLimits};
use ff::format::sample::Type as SampleType;
use ff::format::Sample;
use ffmpeg_next as ff;
use percept_core::{AudioClip, DecodedImage, ImageFacts};
use percept_media::{MonoResampler, MAX_CHANNELS, SPEECH_RATE};
use std::path::Path;
use std::sync::OnceLock;

/// Read errors in a row before the file counts as broken (one is a damaged packet).
const MAX_READ_ERRORS: usize = 32;

fn init() -> Result<(), String> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ff::init().map_err(|e| format!("FFmpeg did not start: {e}"))?;
        ff::util::log::set_level(ff::util::log::Level::Quiet);
        Ok(())
    })
    .clone()
}

pub(crate) fn decode(path: &Path, name: &str, limits: &VideoLimits) -> Result<Video, VideoError> {
    let invalid = |message: String| VideoError::Invalid {
        path: name.to_string(),
        message,
    };
    let too_long = || VideoError::TooLong {
        path: name.to_string(),
        max_seconds: limits.max_seconds,
    };
    init().map_err(invalid)?;
    let mut input =
        ff::format::input(&path).map_err(|e| invalid(format!("cannot open it: {e}")))?;
    let declared =
        (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE));
    if declared.is_some_and(|d| d > f64::from(limits.max_seconds)) {
        return Err(too_long());
    }
    let vstream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| invalid("it has no video stream".into()))?;
    let v_index = vstream.index();
    let v_base = f64::from(vstream.time_base());
    let v_start = if vstream.start_time() != ff::ffi::AV_NOPTS_VALUE {
        vstream.start_time() as f64 * v_base
    } else {
        0.0
    };
    let fps = f64::from(vstream.avg_frame_rate());
    let vctx = ff::codec::context::Context::from_parameters(vstream.parameters())
        .map_err(|e| invalid(format!("its video stream cannot be decoded: {e}")))?;
    let mut vdec = vctx
        .decoder()
        .video()
        .map_err(|e| invalid(format!("its video codec is not supported: {e}")))?;
    let video_codec = vdec
        .codec()
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| format!("{:?}", vdec.id()).to_lowercase());
    let (width, height) = (vdec.width(), vdec.height());
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(invalid(format!("its pictures are {width}x{height}")));
    }
    let (out_w, out_h) = fit(width, height, limits.frame_side);

    let mut audio = match input.streams().best(ff::media::Type::Audio) {
        None => None,
        Some(s) => Some(AudioTrack::open(&s).map_err(invalid)?),
    };
    let a_index = audio.as_ref().map(|a| a.index);

    let mut track = VideoTrack {
        sampler: Sampler::new(
            limits.step_s,
            limits.scene_threshold,
            limits.max_frames,
            declared,
        ),
        frames: Vec::new(),
        scaler: None,
        rgb: ff::frame::Video::empty(),
        n_frames: 0,
        last_t: 0.0,
        v_base,
        v_start,
        fps,
        width,
        height,
        out_w,
        out_h,
        max_s: f64::from(limits.max_seconds),
        codec: video_codec.clone(),
    };
    let mut decoded = ff::frame::Video::empty();
    let max_s = track.max_s;
    let mut errors = 0usize;
    loop {
        let mut packet = ff::Packet::empty();
        match packet.read(&mut input) {
            Ok(()) => errors = 0,
            Err(ff::Error::Eof) => break,
            Err(e) => {
                errors += 1;
                if errors >= MAX_READ_ERRORS {
                    return Err(invalid(format!("it cannot be read: {e}")));
                }
                continue;
            }
        }
        let idx = packet.stream();
        if idx == v_index {
            if track.sampler.full() {
                // Frames are done; keep reading for the audio (and the duration cap).
                if let Some(ts) = packet.pts().or(packet.dts()) {
                    let t = ts as f64 * v_base - v_start;
                    if t > max_s {
                        return Err(too_long());
                    }
                    track.last_t = track.last_t.max(t);
                }
                continue;
            }
            // A damaged packet costs that picture, not the video.
            if vdec.send_packet(&packet).is_err() {
                continue;
            }
            while vdec.receive_frame(&mut decoded).is_ok() {
                track
                    .on_frame(&decoded)
                    .map_err(|e| e.named(name, limits.max_seconds))?;
            }
        } else if Some(idx) == a_index {
            if let Some(a) = audio.as_mut() {
                a.push(&packet, limits.max_seconds)
                    .map_err(|e| e.named(name, limits.max_seconds))?;
            }
        }
    }
    if !track.sampler.full() && vdec.send_eof().is_ok() {
        while vdec.receive_frame(&mut decoded).is_ok() {
            track
                .on_frame(&decoded)
                .map_err(|e| e.named(name, limits.max_seconds))?;
        }
    }
    let VideoTrack { frames, last_t, .. } = track;
    if frames.is_empty() && limits.max_frames > 0 {
        return Err(invalid("no picture in it could be decoded".into()));
    }
    let (audio, audio_codec) = match audio {
        Some(a) => {
            let codec = a.codec.clone();
            let clip = a
                .finish(name, limits.max_seconds)
                .map_err(|e| e.named(name, limits.max_seconds))?;
            (clip, Some(codec))
        }
        None => (None, None),
    };
    let heard = audio.as_ref().map_or(0.0, |c| c.duration_secs());
    let duration_s = last_t.max(heard).max(declared.unwrap_or(0.0));
    Ok(Video {
        source: name.to_string(),
        duration_s,
        audio,
        frames,
        width,
        height,
        video_codec,
        audio_codec,
    })
}

/// What goes wrong in a track, before the file's name is attached.
enum Failure {
    TooLong,
    Bad(String),
}

impl Failure {
    fn named(self, name: &str, max_seconds: u32) -> VideoError {
        match self {
            Failure::TooLong => VideoError::TooLong {
                path: name.to_string(),
                max_seconds,
            },
            Failure::Bad(message) => VideoError::Invalid {
                path: name.to_string(),
                message,
            },
        }
    }
}

/// The video stream's sampling state.
struct VideoTrack {
    sampler: Sampler,
    frames: Vec<Frame>,
    scaler: Option<ff::software::scaling::Context>,
    rgb: ff::frame::Video,
    n_frames: u64,
    last_t: f64,
    v_base: f64,
    v_start: f64,
    fps: f64,
    width: u32,
    height: u32,
    out_w: u32,
    out_h: u32,
    max_s: f64,
    codec: String,
}

impl VideoTrack {
    fn on_frame(&mut self, decoded: &ff::frame::Video) -> Result<(), Failure> {
        let t = match decoded.timestamp() {
            Some(ts) => (ts as f64 * self.v_base - self.v_start).max(0.0),
            None if self.fps > 0.0 => self.n_frames as f64 / self.fps,
            None => self.n_frames as f64 / 25.0,
        };
        self.n_frames += 1;
        if t > self.max_s {
            return Err(Failure::TooLong);
        }
        self.last_t = self.last_t.max(t);
        if !self.sampler.wants(t) {
            return Ok(());
        }
        let (width, height) = (self.width, self.height);
        if decoded.width() != width || decoded.height() != height {
            return Err(Failure::Bad(format!(
                "its picture size changes from {width}x{height} to {}x{}",
                decoded.width(),
                decoded.height()
            )));
        }
        if self.scaler.is_none() {
            self.scaler = Some(
                ff::software::scaling::Context::get(
                    decoded.format(),
                    width,
                    height,
                    ff::format::Pixel::RGB24,
                    self.out_w,
                    self.out_h,
                    ff::software::scaling::Flags::AREA,
                )
                .map_err(|e| Failure::Bad(format!("its pictures cannot be converted: {e}")))?,
            );
        }
        let sc = self.scaler.as_mut().expect("set above");
        sc.run(decoded, &mut self.rgb)
            .map_err(|e| Failure::Bad(format!("a picture cannot be converted: {e}")))?;
        let pixels = packed_rgb(&self.rgb, self.out_w, self.out_h);
        if let Some(scene) = self.sampler.offer(t, &pixels) {
            let f = frame(t, scene, pixels, self.out_w, self.out_h, &self.codec);
            self.frames.push(f);
        }
        Ok(())
    }
}

/// The size that fits `w`x`h` within `side` on its longest side (never larger, even sizes).
fn fit(w: u32, h: u32, side: u32) -> (u32, u32) {
    let side = side.max(16);
    let long = w.max(h);
    if long <= side {
        return (w, h);
    }
    let s = f64::from(side) / f64::from(long);
    let even = |v: u32| ((f64::from(v) * s).round() as u32).max(2) & !1;
    (even(w), even(h))
}

/// The RGB24 frame's rows without the line padding.
fn packed_rgb(rgb: &ff::frame::Video, w: u32, h: u32) -> Vec<u8> {
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let row = w as usize * 3;
    let mut out = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        out.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    out
}

fn frame(t: f64, scene: bool, rgb: Vec<u8>, w: u32, h: u32, codec: &str) -> Frame {
    let mut facts = ImageFacts {
        width: w,
        height: h,
        format: "video frame".into(),
        ..Default::default()
    };
    facts.extra.insert("time".into(), format!("{t:.1} s"));
    facts.extra.insert("video codec".into(), codec.to_string());
    if scene {
        facts.extra.insert("scene change".into(), "yes".into());
    }
    Frame {
        time_s: t,
        scene_change: scene,
        image: DecodedImage {
            source: frame_label(t),
            width: w,
            height: h,
            rgb,
            facts,
        },
    }
}

/// The audio stream's decoder, downmix and resampler.
struct AudioTrack {
    index: usize,
    codec: String,
    dec: ff::decoder::Audio,
    frame: ff::frame::Audio,
    resampler: Option<(u32, MonoResampler)>,
    mono: Vec<f32>,
    out: Vec<f32>,
    source_frames: u64,
    /// Frames in a format this does not read (counted, then the track is dropped).
    skipped: u64,
}

impl AudioTrack {
    fn open(stream: &ff::format::stream::Stream) -> Result<Self, String> {
        let ctx = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| format!("its audio stream cannot be decoded: {e}"))?;
        let dec = ctx
            .decoder()
            .audio()
            .map_err(|e| format!("its audio codec is not supported: {e}"))?;
        let codec = dec
            .codec()
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| format!("{:?}", dec.id()).to_lowercase());
        Ok(AudioTrack {
            index: stream.index(),
            codec,
            dec,
            frame: ff::frame::Audio::empty(),
            resampler: None,
            mono: Vec::new(),
            out: Vec::new(),
            source_frames: 0,
            skipped: 0,
        })
    }

    fn push(&mut self, packet: &ff::Packet, max_seconds: u32) -> Result<(), Failure> {
        if self.dec.send_packet(packet).is_err() {
            return Ok(());
        }
        self.drain(max_seconds)
    }

    fn drain(&mut self, max_seconds: u32) -> Result<(), Failure> {
        while self.dec.receive_frame(&mut self.frame).is_ok() {
            let rate = self.frame.rate();
            let channels = usize::from(self.frame.channels());
            if channels == 0 || channels > MAX_CHANNELS {
                return Err(Failure::Bad(format!("its audio has {channels} channels")));
            }
            if !downmix(&self.frame, channels, &mut self.mono) {
                self.skipped += 1;
                continue;
            }
            self.source_frames += self.mono.len() as u64;
            if self.source_frames > u64::from(max_seconds) * u64::from(rate.max(1)) {
                return Err(Failure::TooLong);
            }
            let rs = match &mut self.resampler {
                Some((r, rs)) if *r == rate => rs,
                Some((r, _)) => {
                    return Err(Failure::Bad(format!(
                        "its audio changes rate from {r} Hz to {rate} Hz"
                    )))
                }
                None => {
                    let rs = MonoResampler::new(rate, SPEECH_RATE).map_err(Failure::Bad)?;
                    &mut self.resampler.insert((rate, rs)).1
                }
            };
            rs.push(&self.mono, &mut self.out).map_err(Failure::Bad)?;
        }
        Ok(())
    }

    fn finish(mut self, name: &str, max_seconds: u32) -> Result<Option<AudioClip>, Failure> {
        if self.dec.send_eof().is_ok() {
            self.drain(max_seconds)?;
        }
        let Some((_, mut rs)) = self.resampler.take() else {
            return Ok(None);
        };
        rs.finish(&mut self.out).map_err(Failure::Bad)?;
        Ok(Some(AudioClip {
            source: name.to_string(),
            sample_rate: SPEECH_RATE,
            samples: self.out,
        }))
    }
}

/// The frame's samples averaged over its channels into `mono`; false for a sample format
/// this does not read.
fn downmix(frame: &ff::frame::Audio, channels: usize, mono: &mut Vec<f32>) -> bool {
    let n = frame.samples();
    mono.clear();
    mono.resize(n, 0.0);
    let (size, read): (usize, fn(&[u8]) -> f32) = match frame.format() {
        Sample::U8(_) => (1, |b| (f32::from(b[0]) - 128.0) / 128.0),
        Sample::I16(_) => (2, |b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
        Sample::I32(_) => (4, |b| {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
        }),
        Sample::F32(_) => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Sample::F64(_) => (8, |b| {
            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }),
        _ => return false,
    };
    let planar = matches!(
        frame.format(),
        Sample::U8(SampleType::Planar)
            | Sample::I16(SampleType::Planar)
            | Sample::I32(SampleType::Planar)
            | Sample::F32(SampleType::Planar)
            | Sample::F64(SampleType::Planar)
    );
    let scale = 1.0 / channels as f32;
    if planar {
        for c in 0..channels {
            let Some(data) = plane(frame, c, n * size) else {
                return false;
            };
            if data.len() < n * size {
                return false;
            }
            for (m, b) in mono.iter_mut().zip(data.chunks_exact(size)) {
                *m += read(b) * scale;
            }
        }
    } else {
        let data = frame.data(0);
        if data.len() < n * size * channels {
            return false;
        }
        for (m, px) in mono.iter_mut().zip(data.chunks_exact(size * channels)) {
            *m = px.chunks_exact(size).map(read).sum::<f32>() * scale;
        }
    }
    true
}

/// Channel `c`'s plane of a planar audio frame, `len` bytes. FFmpeg sets only the first
/// line size for audio (every plane has it), so the ffmpeg-next accessor cannot be used.
fn plane(frame: &ff::frame::Audio, c: usize, len: usize) -> Option<&[u8]> {
    // SAFETY: the frame is decoded and owned by the caller for the borrow's life;
    // extended_data holds one pointer per channel, each to linesize[0] bytes.
    unsafe {
        let f = frame.as_ptr();
        let line = usize::try_from((*f).linesize[0]).ok()?;
        let channels = usize::try_from((*f).ch_layout.nb_channels).ok()?;
        if (*f).extended_data.is_null() || c >= channels || len > line {
            return None;
        }
        let p = *(*f).extended_data.add(c);
        (!p.is_null()).then(|| std::slice::from_raw_parts(p, len))
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn frames_fit_the_side() {
        assert_eq!(fit(1920, 1080, 768), (768, 432));
        assert_eq!(fit(640, 480, 768), (640, 480));
        assert_eq!(fit(1080, 1920, 768), (432, 768));
    }
}
