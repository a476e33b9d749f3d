//! percept-core: what every stage shares and nothing model-specific.
//!
//! - [`Stage`]: one typed transformation (`Input -> Output`) run on its own thread.
//! - [`Pipeline`]: wires stages with bounded channels and collects per-stage [`StageMetrics`].
//! - [`messages`]: the data that flows between stages.
//!
//! This crate must never depend on candle or any model code.

mod error;
pub mod messages;
mod metrics;
mod runner;
mod shutdown;
mod stage;

pub use error::{ItemError, StageError};
pub use messages::{
    describe_image, describe_text, AnswerEvent, AudioClip, DecodedImage, FinishReason, ImageFacts,
    Prompt, Segment, Tag, Transcript, Turn, TurnRole, Untrusted, VisionContext, NO_SUBJECT_FACT,
    PEOPLE_FACT,
};
pub use metrics::StageMetrics;
pub use runner::{Envelope, Input, ItemId, Pipeline, PipelineReport, SendError};
pub use shutdown::Shutdown;
pub use stage::{FnStage, Stage};
