//! The pipeline TOML: any bytes as a `--pipeline FILE`, loaded and checked the way every
//! front end loads one, then everything the loader and sessions read from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_media::AudioLimits;
use percept_pipeline::{load_def, Overrides, StageKind};

fuzz_target!(|data: &[u8]| {
    let path = percept_fuzz::scratch_file("pipeline.toml", data);
    let Some(name) = path.to_str() else {
        return;
    };
    let Ok(mut def) = load_def(name) else {
        return;
    };
    for stage in [StageKind::Speech, StageKind::Vision, StageKind::Llm] {
        // load_def already checked these.
        assert!(def.device_spec(stage).is_ok());
    }
    let _ = def.gen_params();
    let _ = def.whisper_options();
    let _ = def.audio_limits(AudioLimits::SERVER);
    let _ = (def.tags(), def.probing());
    def.apply(&Overrides {
        max_audio_s: Some(60),
        ..Overrides::default()
    });
    let _ = def.gen_params();
});
