//! The CTranslate2 `model.bin` reader: any bytes as a Whisper model directory's
//! `model.bin`, read into Hugging Face-named tensors and the model's dimensions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_whisper::weights::Weights;
use percept_whisper::Device;

fuzz_target!(|data: &[u8]| {
    let dir = percept_fuzz::scratch_dir().join("ct2");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("model.bin"), data).expect("write model.bin");
    let _ = Weights::load(&dir, &Device::Cpu);
});
