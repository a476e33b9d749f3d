//! Microphone capture and device listing through cpal (the `mic` feature).
//!
//! The data callback downmixes to mono f32 and hands the chunk to the capture queue without
//! blocking; everything else happens on the front end thread.

use crate::capture::CaptureTx;
use crate::error::ListenError;
use crate::frontend::Notice;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfig};
use crossbeam_channel::Sender;
use percept_media::SPEECH_RATE;

/// One input device as `percept devices` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub name: String,
    /// Host-qualified id (`alsa:default`); accepted by `--device` like the name.
    pub id: String,
    pub is_default: bool,
    /// Channel counts offered.
    pub channels: Vec<u16>,
    /// Sample-rate ranges offered (min, max) in Hz.
    pub rates: Vec<(u32, u32)>,
}

/// Input devices of the default host; an empty list when there are none.
pub fn input_devices() -> Result<Vec<DeviceInfo>, ListenError> {
    let _quiet = quiet_alsa();
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host
        .input_devices()
        .map_err(|e| ListenError::Host(e.to_string()))?;
    let mut out = Vec::new();
    for d in devices {
        let id = d.id().ok();
        // ALSA's `null` device "captures" zeros: never a microphone.
        if id.as_ref().is_some_and(|i| i.id() == "null") {
            continue;
        }
        let Ok(configs) = d.supported_input_configs() else {
            continue;
        };
        let mut channels = Vec::new();
        let mut rates = Vec::new();
        for c in configs {
            if !channels.contains(&c.channels()) {
                channels.push(c.channels());
            }
            let r = (c.min_sample_rate(), c.max_sample_rate());
            if !rates.contains(&r) {
                rates.push(r);
            }
        }
        if channels.is_empty() {
            continue;
        }
        channels.sort_unstable();
        rates.sort_unstable();
        out.push(DeviceInfo {
            name: device_name(&d),
            id: id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
            is_default: id.is_some() && id == default_id,
            channels,
            rates,
        });
    }
    Ok(out)
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|x| x.name().to_string())
        .or_else(|_| d.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "(unnamed)".into())
}

/// A running capture stream; dropping it stops capture (and drops its capture sender).
pub struct Mic {
    _stream: cpal::Stream,
    pub name: String,
    pub rate: u32,
    pub channels: u16,
}

/// Opens `wanted` (name or id; default input device when None) and starts capturing into
/// `tx`. Device errors during capture go to `notices`.
pub fn open_mic(
    wanted: Option<&str>,
    tx: CaptureTx,
    notices: Sender<Notice>,
) -> Result<Mic, ListenError> {
    let _quiet = quiet_alsa();
    let host = cpal::default_host();
    let device = match wanted {
        None => host.default_input_device(),
        Some(w) => host
            .input_devices()
            .map_err(|e| ListenError::Host(e.to_string()))?
            .find(|d| {
                device_name(d) == w || d.id().is_ok_and(|i| i.to_string() == w || i.id() == w)
            }),
    }
    .ok_or_else(|| ListenError::NoDevice {
        wanted: wanted.map(str::to_string),
    })?;
    let name = device_name(&device);
    let fail = |reason: String| ListenError::Device {
        name: name.clone(),
        reason,
    };
    let supported = pick_config(&device).map_err(fail)?;
    let format = supported.sample_format();
    let config: StreamConfig = supported.config();
    let channels = config.channels.max(1);
    let on_error = move |e: cpal::Error| {
        let _ = notices.send(Notice::Device(e.to_string()));
    };
    let stream = match format {
        SampleFormat::F32 => build::<f32>(&device, &config, tx, on_error),
        SampleFormat::I16 => build::<i16>(&device, &config, tx, on_error),
        SampleFormat::I32 => build::<i32>(&device, &config, tx, on_error),
        SampleFormat::U16 => build::<u16>(&device, &config, tx, on_error),
        SampleFormat::I8 => build::<i8>(&device, &config, tx, on_error),
        SampleFormat::U8 => build::<u8>(&device, &config, tx, on_error),
        other => return Err(fail(format!("unsupported sample format {other}"))),
    }
    .map_err(|e| fail(e.to_string()))?;
    stream.play().map_err(|e| fail(e.to_string()))?;
    Ok(Mic {
        _stream: stream,
        name: name.clone(),
        rate: config.sample_rate,
        channels,
    })
}

/// Prefers 16 kHz (no resampling) with the fewest channels; else the device default.
fn pick_config(device: &cpal::Device) -> Result<SupportedStreamConfig, String> {
    let known = |f: SampleFormat| {
        matches!(
            f,
            SampleFormat::F32
                | SampleFormat::I16
                | SampleFormat::I32
                | SampleFormat::U16
                | SampleFormat::I8
                | SampleFormat::U8
        )
    };
    if let Ok(ranges) = device.supported_input_configs() {
        let mut fits: Vec<_> = ranges
            .filter(|r| {
                known(r.sample_format())
                    && r.min_sample_rate() <= SPEECH_RATE
                    && SPEECH_RATE <= r.max_sample_rate()
            })
            .collect();
        fits.sort_by_key(|r| (r.channels(), r.sample_format() != SampleFormat::F32));
        if let Some(r) = fits.into_iter().next() {
            if let Some(c) = r.try_with_sample_rate(SPEECH_RATE) {
                return Ok(c);
            }
        }
    }
    device.default_input_config().map_err(|e| e.to_string())
}

fn build<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    tx: CaptureTx,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let channels = config.channels.max(1) as usize;
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            let mono: Vec<f32> = data
                .chunks(channels)
                .map(|frame| {
                    frame.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() / frame.len() as f32
                })
                .collect();
            // Never waits: a full queue counts the chunk as lost.
            tx.push(mono);
        },
        on_error,
        None,
    )
}

/// ALSA prints every failed probe of a pseudo device (no sound card, no JACK server) straight
/// to stderr; collect them in a buffer instead, for this thread.
#[cfg(target_os = "linux")]
fn quiet_alsa() -> Option<impl Sized> {
    alsa::Output::local_error_handler().ok()
}

#[cfg(not(target_os = "linux"))]
fn quiet_alsa() -> Option<()> {
    None
}
