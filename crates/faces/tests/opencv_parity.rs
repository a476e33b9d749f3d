//! The bundled photos through Debian's frontal-face cascade, against OpenCV's own
//! `detectMultiScale` on the same files and cascade (tests/fixtures/opencv_faces.json, from
//! scripts/fixtures/faces_opencv.py with the same scale factor and neighbour count).

use percept_faces::{detect, to_gray, Cascade, Face, Params, SYSTEM_CASCADE};
use percept_media::image::{decode_image_file, ImageOptions};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn iou(a: &Face, b: &Face) -> f64 {
    let (ax2, ay2, bx2, by2) = (a.x + a.width, a.y + a.height, b.x + b.width, b.y + b.height);
    let w = ax2.min(bx2).saturating_sub(a.x.max(b.x));
    let h = ay2.min(by2).saturating_sub(a.y.max(b.y));
    let inter = f64::from(w * h);
    inter / (f64::from(a.width * a.height) + f64::from(b.width * b.height) - inter)
}

#[test]
fn the_bundled_photos_give_the_faces_opencv_finds() {
    let cascade = Cascade::load(Path::new(SYSTEM_CASCADE))
        .unwrap_or_else(|e| panic!("{e} (scripts/setup installs opencv-data)"));
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("crates/faces/tests/fixtures/opencv_faces.json"))
            .expect("fixture"),
    )
    .expect("json");
    assert_eq!(fixture["scale_factor"], 1.1);
    assert_eq!(fixture["min_neighbors"], 5);
    let images = fixture["images"].as_object().expect("images");
    assert_eq!(images.len(), 5);
    for (name, boxes) in images {
        let img = decode_image_file(
            &root().join("assets/images").join(name),
            &ImageOptions::default(),
        )
        .expect("decodes");
        let found = detect(&cascade, &to_gray(&img), &Params::default());
        let want: Vec<Face> = boxes
            .as_array()
            .expect("boxes")
            .iter()
            .map(|b| {
                let v = |i: usize| b[i].as_u64().expect("int") as u32;
                Face {
                    x: v(0),
                    y: v(1),
                    width: v(2),
                    height: v(3),
                }
            })
            .collect();
        assert_eq!(
            found.len(),
            want.len(),
            "{name}: {found:?} vs OpenCV {want:?}"
        );
        for w in &want {
            let best = found.iter().map(|f| iou(f, w)).fold(0.0, f64::max);
            assert!(
                best > 0.8,
                "{name}: {found:?} vs OpenCV {w:?} (IoU {best:.2})"
            );
        }
    }
}
