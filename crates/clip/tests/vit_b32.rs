//! A model with exactly ViT-B/32's tensor names and shapes (listed by transformers in
//! tests/fixtures/clip/vit_b32.json) loads through the same path as a hub download:
//! `config.json` + `model.safetensors` in a folder, read by `Clip::load`.

use candle_core::{DType, Device, Tensor};
use percept_clip::Clip;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

#[test]
fn vit_b32_layout_loads_and_runs() {
    let spec_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip/vit_b32.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), spec["config"].to_string()).unwrap();

    let mut tensors = HashMap::new();
    let mut total = 0usize;
    for (name, shape) in spec["tensors"].as_object().unwrap() {
        let shape: Vec<usize> = shape
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        total += shape.iter().product::<usize>();
        // Small constant weights: zeros would make every norm divide 0 by 0.
        let t = (Tensor::ones(shape, DType::F16, &Device::Cpu).unwrap() * 0.01).unwrap();
        tensors.insert(name.clone(), t);
    }
    assert!(
        total > 150_000_000,
        "ViT-B/32 has about 151M parameters, got {total}"
    );
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    drop(tensors);

    let clip = Clip::load(dir.path(), &Device::Cpu).expect("ViT-B/32 layout loads");
    assert_eq!(clip.model.config.projection_dim, 512);
    let img = percept_core::DecodedImage {
        source: "gray".into(),
        width: 300,
        height: 200,
        rgb: vec![128; 300 * 200 * 3],
        facts: Default::default(),
    };
    let e = clip.embed_images(&[&img]).unwrap();
    assert_eq!(e[0].len(), 512);
    let t = clip.embed_texts(&["a photo of a cat."], true).unwrap();
    assert_eq!(t[0].len(), 512);
}

#[test]
fn random_vit_b32_for_benchmarks_runs() {
    let clip = Clip::random(&percept_clip::ClipConfig::vit_b32(), &Device::Cpu).unwrap();
    let img = percept_core::DecodedImage {
        source: "noise".into(),
        width: 224,
        height: 224,
        rgb: (0..224 * 224 * 3).map(|i| (i * 31 % 256) as u8).collect(),
        facts: Default::default(),
    };
    let e = clip.embed_images(&[&img, &img]).unwrap();
    assert_eq!((e.len(), e[1].len()), (2, 512));
}
