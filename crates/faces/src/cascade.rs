//! OpenCV's cascade XML (the format `opencv_traincascade` writes, as in Debian's
//! `opencv-data`): a window size, stages of boosted decision trees, and the Haar features
//! the trees test. Every index and rectangle is checked when the file is read, so
//! evaluation never goes out of bounds or loops.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    #[error(
        "face detection is off: no face cascade at {path} (Debian: apt install opencv-data; \
         or set PERCEPT_FACE_CASCADE)"
    )]
    Missing { path: String },
    #[error("{path}: cannot read the face cascade: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a usable face cascade: {reason}")]
    Invalid { path: String, reason: String },
}

/// One rectangle of a Haar feature, in window coordinates, with its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HaarRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub weight: f32,
}

/// A split: the feature's normalised value below `threshold` goes `left`. A child above 0
/// is another node; 0 or below is the leaf `-child`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub left: i32,
    pub right: i32,
    pub feature: usize,
    pub threshold: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub leaves: Vec<f32>,
}

/// A window passes a stage when its trees' leaves add up to at least `threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub threshold: f32,
    pub trees: Vec<Tree>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    /// The window the cascade was trained on (24x24 for the frontal-face one).
    pub width: u32,
    pub height: u32,
    pub stages: Vec<Stage>,
    pub features: Vec<Vec<HaarRect>>,
}

impl Cascade {
    pub fn load(path: &Path) -> Result<Self, CascadeError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CascadeError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| CascadeError::Invalid { path: name, reason })
    }

    /// Reads a cascade from its XML text.
    pub fn parse(xml: &str) -> Result<Self, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let cascade = doc
            .descendants()
            .find(|n| n.has_tag_name("cascade"))
            .ok_or("no <cascade> element (only the format opencv_traincascade writes is read)")?;
        let text = |tag: &str| -> Result<&str, String> {
            child(cascade, tag)
                .and_then(|n| n.text())
                .map(str::trim)
                .ok_or_else(|| format!("no <{tag}>"))
        };
        if text("stageType")? != "BOOST" || text("featureType")? != "HAAR" {
            return Err("only boosted cascades of Haar features are read".into());
        }
        let width: u32 = number(text("width")?)?;
        let height: u32 = number(text("height")?)?;
        if !(4..=256).contains(&width) || !(4..=256).contains(&height) {
            return Err(format!("window {width}x{height} out of range"));
        }
        let features = items(child(cascade, "features").ok_or("no <features>")?)
            .map(|f| feature(f, width, height))
            .collect::<Result<Vec<_>, _>>()?;
        let stages = items(child(cascade, "stages").ok_or("no <stages>")?)
            .map(|s| stage(s, features.len()))
            .collect::<Result<Vec<_>, _>>()?;
        if stages.is_empty() {
            return Err("no stages".into());
        }
        Ok(Cascade {
            width,
            height,
            stages,
            features,
        })
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

/// The `<_>` entries of a list element.
fn items<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.has_tag_name("_"))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("`{s}` is not a number"))
}

fn numbers(n: Option<roxmltree::Node>, what: &str) -> Result<Vec<f64>, String> {
    let text = n
        .and_then(|n| n.text())
        .ok_or_else(|| format!("no <{what}>"))?;
    text.split_whitespace().map(number).collect()
}

fn feature(f: roxmltree::Node, width: u32, height: u32) -> Result<Vec<HaarRect>, String> {
    if child(f, "tilted").and_then(|t| t.text()).map(str::trim) == Some("1") {
        return Err("tilted Haar features are not supported".into());
    }
    let rects = child(f, "rects").ok_or("a feature without <rects>")?;
    let rects = items(rects)
        .map(|r| {
            let v = numbers(Some(r), "rects")?;
            let [x, y, w, h, weight] = v[..] else {
                return Err(format!("a rectangle needs 5 numbers, not {}", v.len()));
            };
            let inside = x >= 0.0
                && y >= 0.0
                && w > 0.0
                && h > 0.0
                && x + w <= f64::from(width)
                && y + h <= f64::from(height);
            if !inside || [x, y, w, h].iter().any(|v| v.fract() != 0.0) {
                return Err(format!(
                    "rectangle {x} {y} {w} {h} is not inside the window"
                ));
            }
            Ok(HaarRect {
                x: x as u32,
                y: y as u32,
                width: w as u32,
                height: h as u32,
                weight: weight as f32,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if rects.is_empty() || rects.len() > 3 {
        return Err(format!("a feature has {} rectangles (1 to 3)", rects.len()));
    }
    Ok(rects)
}

fn stage(s: roxmltree::Node, n_features: usize) -> Result<Stage, String> {
    let threshold = numbers(child(s, "stageThreshold"), "stageThreshold")?;
    let [threshold] = threshold[..] else {
        return Err("a stage threshold is one number".into());
    };
    let trees = items(child(s, "weakClassifiers").ok_or("a stage without <weakClassifiers>")?)
        .map(|w| tree(w, n_features))
        .collect::<Result<Vec<_>, _>>()?;
    if trees.is_empty() {
        return Err("a stage without trees".into());
    }
    Ok(Stage {
        threshold: threshold as f32,
        trees,
    })
}

fn tree(w: roxmltree::Node, n_features: usize) -> Result<Tree, String> {
    let raw = numbers(child(w, "internalNodes"), "internalNodes")?;
    let leaves: Vec<f32> = numbers(child(w, "leafValues"), "leafValues")?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    if raw.is_empty() || raw.len() % 4 != 0 {
        return Err("internal nodes come in fours (left, right, feature, threshold)".into());
    }
    let n_nodes = raw.len() / 4;
    let mut nodes = Vec::with_capacity(n_nodes);
    for (at, q) in raw.chunks_exact(4).enumerate() {
        // A node's children come after it, so a walk down the tree always ends.
        let child = |v: f64| -> Result<i32, String> {
            let ok = v.fract() == 0.0
                && if v > 0.0 {
                    (v as usize) > at && (v as usize) < n_nodes
                } else {
                    ((-v) as usize) < leaves.len()
                };
            if ok {
                Ok(v as i32)
            } else {
                Err(format!("tree child {v} names no node or leaf"))
            }
        };
        let feature = q[2];
        if feature < 0.0 || feature.fract() != 0.0 || feature as usize >= n_features {
            return Err(format!("tree feature {feature} does not exist"));
        }
        nodes.push(Node {
            left: child(q[0])?,
            right: child(q[1])?,
            feature: feature as usize,
            threshold: q[3] as f32,
        });
    }
    Ok(Tree { nodes, leaves })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"<?xml version="1.0"?>
<opencv_storage><cascade type_id="opencv-cascade-classifier">
<stageType>BOOST</stageType><featureType>HAAR</featureType>
<height>4</height><width>4</width><stageNum>1</stageNum>
<stages><_><maxWeakCount>1</maxWeakCount><stageThreshold>0.5</stageThreshold>
<weakClassifiers><_><internalNodes>0 -1 0 1.5e-01</internalNodes>
<leafValues>-1. 1.</leafValues></_></weakClassifiers></_></stages>
<features><_><rects><_>0 0 4 2 -1.</_><_>0 2 4 2 1.</_></rects></_></features>
</cascade></opencv_storage>"#;

    #[test]
    fn reads_a_stump_cascade() {
        let c = Cascade::parse(TINY).expect("parses");
        assert_eq!((c.width, c.height), (4, 4));
        assert_eq!(c.features[0].len(), 2);
        assert_eq!(c.features[0][1].weight, 1.0);
        let t = &c.stages[0].trees[0];
        assert_eq!((t.nodes[0].left, t.nodes[0].right), (0, -1));
        assert_eq!(t.leaves, [-1.0, 1.0]);
    }

    #[test]
    fn bad_indices_and_rectangles_are_refused() {
        for (from, to) in [
            ("0 -1 0 1.5e-01", "0 -2 0 1.5e-01"),
            ("0 -1 0 1.5e-01", "0 -1 7 1.5e-01"),
            ("0 -1 0 1.5e-01", "1 -1 0 1.5e-01"),
            ("0 2 4 2 1.", "0 3 4 2 1."),
            ("<width>4</width>", "<width>x</width>"),
        ] {
            let bad = TINY.replace(from, to);
            assert!(Cascade::parse(&bad).is_err(), "{to}");
        }
    }
}
