//! The safetensors header: any bytes as `model.safetensors`, read the two ways percept
//! reads one: Whisper's Hugging Face layout (a file, every tensor converted to f32, the
//! dimensions taken from them) and CLIP's (a buffer, tensors loaded by name).
#![no_main]

use candle_core::safetensors::BufferedSafetensors;
use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use percept_whisper::weights::Weights;

fuzz_target!(|data: &[u8]| {
    let dir = percept_fuzz::scratch_dir().join("safetensors");
    if !dir.join("config.json").is_file() {
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(
            dir.join("config.json"),
            br#"{"encoder_attention_heads": 2, "decoder_attention_heads": 2}"#,
        )
        .expect("write config.json");
    }
    std::fs::write(dir.join("model.safetensors"), data).expect("write model.safetensors");
    let _ = Weights::load(&dir, &Device::Cpu);

    if let Ok(st) = BufferedSafetensors::new(data.to_vec()) {
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        for name in names {
            let _ = st.load(&name, &Device::Cpu);
        }
    }
});
