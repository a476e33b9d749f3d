use percept_media::AudioError;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("listen setting `{field}`: {reason}")]
    Config { field: &'static str, reason: String },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("resampling {from} Hz to 16000 Hz: {reason}")]
    Resample { from: u32, reason: String },
    #[error("no audio input device{}", match .wanted { Some(w) => format!(" named `{w}`"), None => String::new() })]
    NoDevice { wanted: Option<String> },
    #[error("audio input device `{name}`: {reason}")]
    Device { name: String, reason: String },
    #[error("audio host: {0}")]
    Host(String),
    #[error("this build has no microphone support (build with the `mic` feature)")]
    NoMic,
}
