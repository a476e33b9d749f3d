//! A file played into the live path as if a microphone heard it.
//!
//! Samples leave in small chunks at their source rate, each chunk once its duration has
//! passed (like a capture callback delivering what was just recorded), through the same
//! non-blocking capture queue the microphone uses. `Pace::Fast` sends as fast as the
//! consumer takes them instead (for tests: nothing is dropped).

use crate::capture::CaptureTx;
use crate::error::ListenError;
use percept_core::AudioClip;
use percept_media::{AudioStream, SPEECH_RATE};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Chunk length, like a typical capture callback period.
const CHUNK_MS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    RealTime,
    Fast,
}

pub struct FileSource {
    feed: Feed,
    rate: u32,
}

/// Where the samples come from: decoded as they are sent, or already decoded (a video's
/// audio track, which FFmpeg decodes whole).
enum Feed {
    Stream(Box<AudioStream>),
    Decoded(Option<Vec<f32>>),
}

impl Feed {
    fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, ListenError> {
        match self {
            Feed::Stream(s) => Ok(s.next_chunk()?),
            Feed::Decoded(samples) => Ok(samples.take()),
        }
    }
}

impl FileSource {
    /// Opens `path` and keeps its own sample rate, so the front end's resampler does the
    /// conversion exactly as for a device.
    pub fn open(path: &Path) -> Result<Self, ListenError> {
        let probe = AudioStream::open(path, SPEECH_RATE)?;
        let rate = match probe.source_rate() {
            0 => SPEECH_RATE,
            r => r,
        };
        drop(probe);
        let stream = AudioStream::open(path, rate)?;
        Ok(FileSource {
            feed: Feed::Stream(Box::new(stream)),
            rate,
        })
    }

    /// Plays an already decoded clip, at its own sample rate.
    pub fn from_clip(clip: AudioClip) -> Self {
        FileSource {
            rate: clip.sample_rate.max(1),
            feed: Feed::Decoded(Some(clip.samples)),
        }
    }

    /// Sample rate of the chunks this source sends.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Sends the whole file (or until `stop`); returns the samples sent. Dropping `tx` at the
    /// end is the end of the stream.
    pub fn run(mut self, tx: CaptureTx, pace: Pace, stop: &AtomicBool) -> Result<u64, ListenError> {
        let piece = (self.rate as u64 * CHUNK_MS / 1000).max(1) as usize;
        let started = Instant::now();
        let mut sent: u64 = 0;
        let mut carry: Vec<f32> = Vec::new();
        loop {
            let next = self.feed.next_chunk()?;
            let done = next.is_none();
            if let Some(samples) = next {
                carry.extend_from_slice(&samples);
            }
            let mut offset = 0;
            while carry.len() - offset >= piece || (done && offset < carry.len()) {
                if stop.load(Ordering::SeqCst) {
                    return Ok(sent);
                }
                let end = (offset + piece).min(carry.len());
                let chunk = carry[offset..end].to_vec();
                offset = end;
                sent += chunk.len() as u64;
                let ok = match pace {
                    Pace::Fast => tx.push_blocking(chunk),
                    Pace::RealTime => {
                        let due = Duration::from_secs_f64(sent as f64 / self.rate as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                        // A full queue loses the chunk, exactly as a device would.
                        tx.push(chunk);
                        true
                    }
                };
                if !ok {
                    return Ok(sent);
                }
            }
            carry.drain(..offset);
            if done {
                return Ok(sent);
            }
        }
    }
}
