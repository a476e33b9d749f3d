//! The front end thread: capture chunks in, whole utterances out.
//!
//! chunks (source rate) -> resampler (16 kHz) -> endpointer -> utterance queue. It is the only
//! consumer of the capture queue, so the capture callback only ever copies samples.

use crate::capture::CaptureRx;
use crate::error::ListenError;
use crate::queue::{Pushed, UtteranceQueue};
use crate::vad::{Utterance, Vad, VadConfig};
use crossbeam_channel::Sender;
use percept_media::{MonoResampler, SPEECH_RATE};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the front end has to say while it runs (the CLI prints these).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The models fell behind; this utterance was dropped whole.
    Dropped {
        index: u64,
        start_s: f64,
        end_s: f64,
    },
    /// The capture queue overflowed; `lost_samples` (at the source rate) are missing and the
    /// utterance in progress, if any, was dropped whole.
    Overrun {
        at_s: f64,
        lost_samples: u64,
        discarded_utterance: bool,
    },
    /// A non-fatal problem reported by the capture device.
    Device(String),
}

/// Totals when the stream ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrontendStats {
    pub stream_secs: f64,
    pub utterances: u64,
    pub dropped: u64,
    pub overruns: u64,
}

/// Starts the front end. `source_rate` is the rate of the chunks in `capture`. Ends when every
/// capture sender is gone, after closing an utterance still in progress.
pub fn spawn_frontend(
    capture: CaptureRx,
    source_rate: u32,
    vad: VadConfig,
    queue: UtteranceQueue,
    notices: Sender<Notice>,
) -> Result<JoinHandle<FrontendStats>, ListenError> {
    let mut vad = Vad::new(vad, SPEECH_RATE)?;
    let mut resampler =
        MonoResampler::new(source_rate, SPEECH_RATE).map_err(|reason| ListenError::Resample {
            from: source_rate,
            reason,
        })?;
    let handle = std::thread::Builder::new()
        .name("listen-frontend".into())
        .spawn(move || {
            let mut stats = FrontendStats::default();
            let mut origin: Option<Instant> = None;
            let mut out16 = Vec::new();
            let mut closed = Vec::new();
            let emit = |closed: &mut Vec<Utterance>, stats: &mut FrontendStats, origin| {
                for mut u in closed.drain(..) {
                    u.end_at = anchor(origin, u.end_s);
                    u.closed_at = Some(Instant::now());
                    if u.tentative {
                        // Only worth it while the models are idle; never counted or dropped.
                        queue.offer(u);
                        continue;
                    }
                    stats.utterances += 1;
                    if let Pushed::Dropped {
                        index,
                        start_s,
                        end_s,
                    } = queue.push(u)
                    {
                        stats.dropped += 1;
                        let _ = notices.send(Notice::Dropped {
                            index,
                            start_s,
                            end_s,
                        });
                    }
                }
            };
            for (lost, chunk) in capture.rx.iter() {
                if origin.is_none() {
                    // The first chunk arrives once it has been recorded: stream time 0 was
                    // one chunk earlier.
                    let secs = chunk.len() as f64 / source_rate as f64;
                    origin = Instant::now().checked_sub(Duration::from_secs_f64(secs));
                }
                if lost > 0 {
                    stats.overruns += 1;
                    let skip = lost * SPEECH_RATE as u64 / source_rate as u64;
                    let at_s = vad.stream_secs();
                    let discarded_utterance = vad.discard(skip);
                    let _ = notices.send(Notice::Overrun {
                        at_s,
                        lost_samples: lost,
                        discarded_utterance,
                    });
                }
                out16.clear();
                if let Err(e) = resampler.push(&chunk, &mut out16) {
                    let _ = notices.send(Notice::Device(format!("resampler: {e}")));
                    continue;
                }
                vad.push(&out16, &mut closed);
                emit(&mut closed, &mut stats, origin);
            }
            out16.clear();
            if resampler.finish(&mut out16).is_ok() {
                vad.push(&out16, &mut closed);
            }
            closed.extend(vad.finish());
            emit(&mut closed, &mut stats, origin);
            stats.stream_secs = vad.stream_secs();
            stats
        })
        .map_err(|e| ListenError::Host(format!("cannot start the front end thread: {e}")))?;
    Ok(handle)
}

fn anchor(origin: Option<Instant>, secs: f64) -> Option<Instant> {
    origin.map(|o| o + Duration::from_secs_f64(secs.max(0.0)))
}

#[cfg(test)]
#[path = "frontend_tests.rs"]
mod tests;
