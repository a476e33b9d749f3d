//! percept-pipeline: how a question, a conversation or a folder flows through the stages.
//!
//! - [`def`]: pipeline definitions (`pipelines/*.toml`) and the flags that override them;
//! - [`load`]: the one stage loader, each stage on its definition's device;
//! - [`prompt`]: who said what (the person's words are the user turn, media is data);
//! - [`service`]: the stages as threads that take jobs (the CLI's `ask` and the server);
//! - [`ask`], [`listen`], [`batch`]: the three sessions, and [`chat`] with text alone.
//!   Front ends (the CLI, the server) parse, render and decide nothing here;
//! - [`bench`] and [`demo`]: what `percept bench` measures and the steps `percept demo` runs.

pub mod ask;
pub mod batch;
pub mod bench;
pub mod chat;
pub mod def;
pub mod demo;
pub mod device;
mod error;
pub mod listen;
pub mod load;
pub mod probe;
pub mod prompt;
pub mod search;
pub mod service;
pub mod video;

pub use ask::{ask, ask_with, AskOutcome, AskReport, AskRequest};
pub use def::{load as load_def, Overrides, PipelineDef, Sampling, StageKind};
pub use device::DeviceSpec;
pub use error::{PipelineError, Result};
pub use load::{
    add_labels, add_text, facts_only, load_classifier, load_clip, load_llm, load_ocr, load_speech,
    load_stages, load_vision, load_vision_stages, load_whisper, missing_clip_line, model_name,
    read_labels, LabelChoice, Need, Stages,
};
pub use prompt::{describe_image, question_prompt};
pub use service::{JobError, Media, Prepared, Question, Service};
