//! EfficientNet-Lite0 against PyTorch (tests/fixtures/classify/reference.json, written by
//! scripts/fixtures/efficientnet_reference.py from the same checkpoint). Needs the model
//! from the store: `percept models fetch efficientnet-lite0` (part of the default set).

use candle_core::{Device, Tensor};
use percept_classify::{preprocess, Classifier, MODEL_ID};
use percept_media::image::{decode_image_file, ImageOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn classifier() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| {
        let dir = percept_models::locate(MODEL_ID).unwrap_or_else(|e| {
            panic!("model {MODEL_ID} is required for this test but was not found ({e}); run `percept models fetch {MODEL_ID}`")
        });
        Classifier::load(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("loading {MODEL_ID}: {e}"))
    })
}

fn reference() -> Value {
    let path = root().join("tests/fixtures/classify/reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("reference.json")).expect("json")
}

fn floats(v: &Value) -> Vec<f32> {
    let a = v.as_array().expect("array");
    a.iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn top5(v: &Value) -> Vec<usize> {
    let a = v.as_array().expect("top5");
    a.iter()
        .map(|t| t["index"].as_u64().expect("index") as usize)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits_of(inputs: Vec<f32>, n: usize) -> Vec<Vec<f32>> {
    let x = Tensor::from_vec(inputs, (n, 3, 224, 224), &Device::Cpu).expect("input");
    let logits = classifier().logits(&x).expect("forward");
    logits.to_vec2::<f32>().expect("logits")
}

#[test]
fn all_images_in_one_batch_match_torch() {
    let reference = reference();
    let images = reference["images"].as_object().expect("images");
    let clf = classifier();
    let cfg = &clf.model.config.preprocess;
    let mut inputs = Vec::new();
    let mut decoded = Vec::new();
    for name in images.keys() {
        let path = root().join("assets/images").join(name);
        let img = decode_image_file(&path, &ImageOptions::default()).expect("decode");
        let crop = preprocess::resize_and_crop(&img.rgb, img.width, img.height, cfg);
        let hash = hex::encode(Sha256::digest(&crop));
        let same_pixels = hash == images[name]["crop_sha256"].as_str().expect("hash");
        // PNG decoding is exact and the resize is Pillow's, so the crops must be identical;
        // JPEG decoders may round differently.
        if name.ends_with(".png") {
            assert!(
                same_pixels,
                "{name}: preprocessed pixels differ from Pillow's"
            );
        }
        inputs.extend(preprocess::normalize(&crop, cfg));
        decoded.push((name.clone(), img, same_pixels));
    }
    let logits = logits_of(inputs, images.len());
    for ((name, _, same_pixels), got) in decoded.iter().zip(&logits) {
        let want = floats(&images[name]["logits"]);
        let diff = max_abs_diff(got, &want);
        eprintln!("{name}: max |logit - torch| = {diff:.2e} (identical input: {same_pixels})");
        if *same_pixels {
            assert!(diff < 1e-3, "{name}: logits differ by {diff}");
        }
    }
    // The public path, top-5 on every image (JPEG included).
    let refs: Vec<_> = decoded.iter().map(|(_, img, _)| img).collect();
    let labels = clf.classify(&refs).expect("classify");
    for ((name, _, _), got) in decoded.iter().zip(&labels) {
        let got: Vec<usize> = got.iter().map(|l| l.index).collect();
        assert_eq!(got, top5(&images[name]["top5"]), "{name}: top-5");
        let first = &images[name]["top5"][0];
        let p = first["probability"].as_f64().expect("p") as f32;
        let l = &labels[decoded.iter().position(|d| &d.0 == name).expect("pos")][0];
        assert_eq!(l.name, first["name"].as_str().expect("name"));
        assert!(
            (l.probability - p).abs() < 5e-3,
            "{name}: p {} vs {p}",
            l.probability
        );
    }
}

#[test]
fn saved_crops_give_torchs_logits() {
    let reference = reference();
    let cfg = classifier().model.config.preprocess;
    let names: Vec<String> = reference["saved_crops"]
        .as_array()
        .expect("saved_crops")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect();
    let mut inputs = Vec::new();
    for name in &names {
        let path = root().join(format!("tests/fixtures/classify/crops/{name}.rgb.gz"));
        let mut crop = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).expect("crop"))
            .read_to_end(&mut crop)
            .expect("gunzip");
        assert_eq!(crop.len(), 224 * 224 * 3);
        inputs.extend(preprocess::normalize(&crop, &cfg));
    }
    let logits = logits_of(inputs, names.len());
    for (name, got) in names.iter().zip(&logits) {
        let img = &reference["images"][name.as_str()];
        let diff = max_abs_diff(got, &floats(&img["logits"]));
        eprintln!("{name} (Pillow's crop): max |logit - torch| = {diff:.2e}");
        assert!(diff < 1e-3, "{name}: logits differ by {diff}");
        let probs = classifier()
            .top(
                &Tensor::new(got.as_slice(), &Device::Cpu)
                    .and_then(|t| t.unsqueeze(0))
                    .expect("t"),
                5,
            )
            .expect("top");
        let got: Vec<usize> = probs[0].iter().map(|l| l.index).collect();
        assert_eq!(got, top5(&img["top5"]), "{name}: top-5");
    }
}

#[test]
fn a_batch_gives_each_image_its_own_answer() {
    let load = |f: &str| {
        decode_image_file(
            &root().join("assets/images").join(f),
            &ImageOptions::default(),
        )
        .expect("decode")
    };
    let (cat, coffee) = (load("chelsea.png"), load("coffee.png"));
    let clf = classifier();
    let batch = clf.classify(&[&cat, &coffee, &cat]).expect("batch");
    let alone = clf.classify(&[&coffee]).expect("single");
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0], batch[2]);
    assert_eq!(batch[0][0].name, "tiger cat");
    assert_eq!(batch[1][0].name, "espresso");
    for (a, b) in batch[1].iter().zip(&alone[0]) {
        assert_eq!(a.index, b.index);
        assert!((a.probability - b.probability).abs() < 1e-5);
    }
    assert!(clf.classify(&[]).expect("empty").is_empty());
}
