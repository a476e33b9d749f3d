//! A checkpoint written by real torch in the legacy format (scripts/fixtures/
//! efficientnet_reference.py) reads back with torch's values: strided, shared-storage,
//! offset, float16, int64 and Parameter tensors.

use candle_core::DType;
use percept_classify::read_legacy_pth;
use serde_json::Value;
use std::path::Path;

#[test]
fn torch_written_legacy_checkpoint_reads_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/classify");
    let bytes = std::fs::read(dir.join("tiny_legacy.pth")).expect("fixture");
    let reference: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).expect("reference"))
            .expect("json");
    let expected = reference["tiny"].as_object().expect("tiny");
    let tensors = read_legacy_pth(&bytes).expect("torch's own legacy file");
    assert_eq!(tensors.len(), expected.len());
    for (name, t) in &tensors {
        let want = &expected[name.as_str()];
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        assert_eq!(t.dims(), shape.as_slice(), "{name}");
        let got: Vec<f64> = t
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .expect("values");
        let want: Vec<f64> = want["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    let dtype = |n: &str| tensors.iter().find(|(k, _)| k == n).map(|(_, t)| t.dtype());
    assert_eq!(dtype("half"), Some(DType::F16));
    assert_eq!(dtype("count"), Some(DType::I64));
}
