//! The legacy torch checkpoint reader: any bytes as the classifier's `.pth` (the bounded
//! pickle VM, storages checked against the file), then the network built from the
//! state dict as `Classifier::load` builds it.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use percept_classify::{read_legacy_pth, Classifier, EfficientNetConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(tensors) = read_legacy_pth(data) else {
        return;
    };
    let _ = Classifier::from_tensors(tensors, EfficientNetConfig::lite0(), &Device::Cpu);
});
