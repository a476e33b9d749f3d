//! percept-listen: the live audio front end of `percept listen`.
//!
//! source (microphone or a file played in real time) -> [`capture`] queue (the callback never
//! blocks) -> [`frontend`] thread: resample to 16 kHz, [`vad`] endpointing -> [`queue`] of
//! whole utterances (full: the oldest waiting utterance is dropped whole) -> the models.
//!
//! This crate never prints; the CLI reports [`Notice`]s.

pub mod capture;
mod error;
pub mod file_source;
pub mod frontend;
#[cfg(feature = "mic")]
pub mod mic;
pub mod queue;
pub mod vad;

pub use capture::{capture_queue, CaptureRx, CaptureTx};
pub use error::ListenError;
pub use file_source::{FileSource, Pace};
pub use frontend::{spawn_frontend, FrontendStats, Notice};
pub use queue::{utterance_queue, Overflow, Pushed, UtteranceQueue};
pub use vad::{frame_db, Utterance, Vad, VadConfig};

/// Whether this build can capture from a microphone.
pub const HAS_MIC: bool = cfg!(feature = "mic");
