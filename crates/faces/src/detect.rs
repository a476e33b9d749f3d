//! The sliding-window search, as OpenCV's `detectMultiScale` runs it: the picture is scaled
//! down by 1.1 at each step of a pyramid, a cascade-sized window slides over each level
//! (every 2 pixels while the scale is under 2, then every pixel), a window whose pixels
//! pass every stage is a hit, and hits that overlap are grouped; a group needs more than
//! `min_neighbors` hits to count.

use crate::cascade::{Cascade, HaarRect};
use percept_core::DecodedImage;
use serde::Serialize;

/// 8-bit luminance, row-major.
#[derive(Debug, Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// A face's box in the picture's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Face {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Search settings; the defaults are OpenCV's, with `min_neighbors` raised from 3 to 5 so
/// that a stray texture is not reported as a person.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub scale_factor: f64,
    pub min_neighbors: usize,
    /// Pictures are first scaled so that their longer side is at most this, and at most
    /// 2048 (the search cost grows with the area; faces under `cascade width x side /
    /// max_side` are missed).
    pub max_side: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            scale_factor: 1.1,
            min_neighbors: 5,
            max_side: 800,
        }
    }
}

/// ITU-R BT.601 luma, as OpenCV's RGB-to-gray conversion computes it (14-bit fixed point).
pub fn to_gray(img: &DecodedImage) -> Gray {
    let pixels = img
        .rgb
        .chunks_exact(3)
        .map(|p| {
            let v = 4899 * u32::from(p[0]) + 9617 * u32::from(p[1]) + 1868 * u32::from(p[2]);
            ((v + (1 << 13)) >> 14).min(255) as u8
        })
        .collect();
    Gray {
        width: img.width as usize,
        height: img.height as usize,
        pixels,
    }
}

/// Bilinear resize with pixel centres aligned (OpenCV's `INTER_LINEAR`).
fn resize(src: &Gray, width: usize, height: usize) -> Gray {
    let (sx, sy) = (
        src.width as f64 / width as f64,
        src.height as f64 / height as f64,
    );
    let axis = |i: usize, scale: f64, len: usize| {
        let f = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (f.floor() as usize).min(len - 1);
        let i1 = (i0 + 1).min(len - 1);
        (i0, i1, (f - i0 as f64).min(1.0))
    };
    let cols: Vec<_> = (0..width).map(|x| axis(x, sx, src.width)).collect();
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let (y0, y1, fy) = axis(y, sy, src.height);
        let (r0, r1) = (
            &src.pixels[y0 * src.width..][..src.width],
            &src.pixels[y1 * src.width..][..src.width],
        );
        for &(x0, x1, fx) in &cols {
            let top = f64::from(r0[x0]) * (1.0 - fx) + f64::from(r0[x1]) * fx;
            let bottom = f64::from(r1[x0]) * (1.0 - fx) + f64::from(r1[x1]) * fx;
            pixels.push((top * (1.0 - fy) + bottom * fy).round() as u8);
        }
    }
    Gray {
        width,
        height,
        pixels,
    }
}

/// Sums and sums of squares over every rectangle from the origin, with a zero first row and
/// column: any rectangle's sum is four lookups. Pictures are at most `max_side` square, so
/// an `i32` holds any sum (255 x 2^20 < 2^31).
struct Integral {
    stride: usize,
    sum: Vec<i32>,
    sq: Vec<f64>,
}

impl Integral {
    fn new(g: &Gray) -> Self {
        let stride = g.width + 1;
        let mut sum = vec![0i32; stride * (g.height + 1)];
        let mut sq = vec![0f64; stride * (g.height + 1)];
        for y in 0..g.height {
            let (mut row, mut row_sq) = (0i32, 0f64);
            for x in 0..g.width {
                let v = i32::from(g.pixels[y * g.width + x]);
                row += v;
                row_sq += f64::from(v * v);
                let at = (y + 1) * stride + x + 1;
                sum[at] = sum[at - stride] + row;
                sq[at] = sq[at - stride] + row_sq;
            }
        }
        Integral { stride, sum, sq }
    }

    /// The four corner offsets of a rectangle, from a window's top-left corner.
    fn corners(&self, x: usize, y: usize, w: usize, h: usize) -> [usize; 4] {
        let (a, b) = (y * self.stride + x, (y + h) * self.stride + x);
        [a, a + w, b, b + w]
    }

    fn sum_at(&self, base: usize, c: &[usize; 4]) -> i32 {
        self.sum[base + c[3]] - self.sum[base + c[2]] - self.sum[base + c[1]]
            + self.sum[base + c[0]]
    }

    fn sq_at(&self, base: usize, c: &[usize; 4]) -> f64 {
        self.sq[base + c[3]] - self.sq[base + c[2]] - self.sq[base + c[1]] + self.sq[base + c[0]]
    }
}

/// One pyramid level with every feature's rectangles turned into corner offsets for its
/// integral image (as OpenCV precomputes them per scale), so a window costs lookups only.
struct Level<'a> {
    cascade: &'a Cascade,
    ii: Integral,
    /// Corners and weight of each rectangle, all features one after the other.
    rects: Vec<([usize; 4], f64)>,
    /// Where each feature's rectangles start in `rects` (one more entry than features).
    first: Vec<usize>,
    norm_rect: [usize; 4],
    norm_area: f64,
}

impl<'a> Level<'a> {
    fn new(cascade: &'a Cascade, gray: &Gray) -> Self {
        let ii = Integral::new(gray);
        let mut rects = Vec::new();
        let mut first = Vec::with_capacity(cascade.features.len() + 1);
        for f in &cascade.features {
            first.push(rects.len());
            rects.extend(f.iter().map(|r: &HaarRect| {
                let c = ii.corners(
                    r.x as usize,
                    r.y as usize,
                    r.width as usize,
                    r.height as usize,
                );
                (c, f64::from(r.weight))
            }));
        }
        first.push(rects.len());
        // The variance over the window less a 1-pixel border normalises every feature, so
        // lighting and contrast do not matter.
        let (w, h) = (cascade.width as usize - 2, cascade.height as usize - 2);
        let norm_rect = ii.corners(1, 1, w, h);
        Level {
            cascade,
            ii,
            rects,
            first,
            norm_rect,
            norm_area: (w * h) as f64,
        }
    }

    /// Whether the window at (`x`, `y`) passes every stage.
    fn passes(&self, x: usize, y: usize) -> bool {
        let base = y * self.ii.stride + x;
        let s = f64::from(self.ii.sum_at(base, &self.norm_rect));
        let nf = self.norm_area * self.ii.sq_at(base, &self.norm_rect) - s * s;
        let norm = if nf > 0.0 { 1.0 / nf.sqrt() } else { 1.0 };
        let value = |f: usize| -> f64 {
            let raw: f64 = self.rects[self.first[f]..self.first[f + 1]]
                .iter()
                .map(|(c, weight)| weight * f64::from(self.ii.sum_at(base, c)))
                .sum();
            raw * norm
        };
        self.cascade.stages.iter().all(|stage| {
            let mut total = 0.0f64;
            for t in &stage.trees {
                let mut idx = 0i32;
                total += loop {
                    let node = &t.nodes[idx as usize];
                    idx = if value(node.feature) < f64::from(node.threshold) {
                        node.left
                    } else {
                        node.right
                    };
                    if idx <= 0 {
                        break f64::from(t.leaves[(-idx) as usize]);
                    }
                };
            }
            total >= f64::from(stage.threshold)
        })
    }
}

/// Every face `cascade` finds in `gray`, grouped, in the picture's own pixels.
pub fn detect(cascade: &Cascade, gray: &Gray, params: &Params) -> Vec<Face> {
    let (cw, ch) = (cascade.width as usize, cascade.height as usize);
    if gray.width < cw || gray.height < ch || gray.pixels.len() != gray.width * gray.height {
        return Vec::new();
    }
    let longer = gray.width.max(gray.height);
    // An i32 integral image holds sums up to 2048 x 2048 pixels.
    let max_side = params.max_side.clamp(cw.max(ch), 2048);
    let shrunk;
    let (base, shrink) = if longer > max_side {
        let s = longer as f64 / max_side as f64;
        let (w, h) = (
            (gray.width as f64 / s).round() as usize,
            (gray.height as f64 / s).round() as usize,
        );
        shrunk = resize(gray, w.max(cw), h.max(ch));
        (&shrunk, s)
    } else {
        (gray, 1.0)
    };
    let mut hits = Vec::new();
    let mut factor = 1.0f64;
    loop {
        let (w, h) = (
            (base.width as f64 / factor).round() as usize,
            (base.height as f64 / factor).round() as usize,
        );
        if w < cw || h < ch {
            break;
        }
        let level = if factor == 1.0 {
            Level::new(cascade, base)
        } else {
            Level::new(cascade, &resize(base, w, h))
        };
        let step = if factor > 2.0 { 1 } else { 2 };
        let win = (
            (cw as f64 * factor).round() as u32,
            (ch as f64 * factor).round() as u32,
        );
        for y in (0..=h - ch).step_by(step) {
            for x in (0..=w - cw).step_by(step) {
                if level.passes(x, y) {
                    hits.push(Face {
                        x: (x as f64 * factor).round() as u32,
                        y: (y as f64 * factor).round() as u32,
                        width: win.0,
                        height: win.1,
                    });
                }
            }
        }
        factor *= params.scale_factor.max(1.01);
    }
    group(&hits, params.min_neighbors, 0.2)
        .into_iter()
        .map(|f| Face {
            x: (f64::from(f.x) * shrink).round() as u32,
            y: (f64::from(f.y) * shrink).round() as u32,
            width: (f64::from(f.width) * shrink).round() as u32,
            height: (f64::from(f.height) * shrink).round() as u32,
        })
        .collect()
}

/// OpenCV's `groupRectangles`: hits whose edges all lie within `eps` of the smaller size
/// are one group (transitively); a group of more than `min_neighbors` hits becomes their
/// average box, unless it lies inside a stronger group's box.
pub fn group(hits: &[Face], min_neighbors: usize, eps: f64) -> Vec<Face> {
    let similar = |a: &Face, b: &Face| {
        let delta = eps * f64::from(a.width.min(b.width) + a.height.min(b.height)) * 0.5;
        let near = |p: u32, q: u32| (f64::from(p) - f64::from(q)).abs() <= delta;
        near(a.x, b.x)
            && near(a.y, b.y)
            && near(a.x + a.width, b.x + b.width)
            && near(a.y + a.height, b.y + b.height)
    };
    let mut parent: Vec<usize> = (0..hits.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..hits.len() {
        for j in i + 1..hits.len() {
            if similar(&hits[i], &hits[j]) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut sums: std::collections::BTreeMap<usize, ([u64; 4], usize)> = Default::default();
    for (i, h) in hits.iter().enumerate() {
        let e = sums.entry(root(&mut parent, i)).or_default();
        for (s, v) in e.0.iter_mut().zip([h.x, h.y, h.width, h.height]) {
            *s += u64::from(v);
        }
        e.1 += 1;
    }
    let groups: Vec<(Face, usize)> = sums
        .into_values()
        .map(|(s, n)| {
            let avg = |v: u64| (v as f64 / n as f64) as u32;
            let f = Face {
                x: avg(s[0]),
                y: avg(s[1]),
                width: avg(s[2]),
                height: avg(s[3]),
            };
            (f, n)
        })
        .filter(|&(_, n)| n > min_neighbors)
        .collect();
    groups
        .iter()
        .filter(|(a, na)| {
            !groups.iter().any(|(b, nb)| {
                let (dx, dy) = (
                    (f64::from(b.width) * eps) as i64,
                    (f64::from(b.height) * eps) as i64,
                );
                let (ax, ay, bx, by) = (
                    i64::from(a.x),
                    i64::from(a.y),
                    i64::from(b.x),
                    i64::from(b.y),
                );
                a != b
                    && ax >= bx - dx
                    && ay >= by - dy
                    && ax + i64::from(a.width) <= bx + i64::from(b.width) + dx
                    && ay + i64::from(a.height) <= by + i64::from(b.height) + dy
                    && (*nb > (*na).max(3) || *na < 3)
            })
        })
        .map(|&(f, _)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cascade::{Node, Stage, Tree};

    /// A one-stump cascade that accepts a window whose top half is darker than its bottom.
    fn tiny() -> Cascade {
        let rect = |y, weight| HaarRect {
            x: 0,
            y,
            width: 4,
            height: 2,
            weight,
        };
        Cascade {
            width: 4,
            height: 4,
            features: vec![vec![rect(0, -1.0), rect(2, 1.0)]],
            stages: vec![Stage {
                threshold: 0.5,
                trees: vec![Tree {
                    nodes: vec![Node {
                        left: 0,
                        right: -1,
                        feature: 0,
                        threshold: 0.1,
                    }],
                    leaves: vec![-1.0, 1.0],
                }],
            }],
        }
    }

    #[test]
    fn any_size_and_content_is_searched_without_panicking() {
        let c = tiny();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for (w, h) in [
            (1, 1),
            (3, 9),
            (4, 4),
            (5, 4),
            (4, 5),
            (37, 11),
            (64, 64),
            (2100, 9),
        ] {
            let pixels = (0..w * h)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let g = Gray {
                width: w,
                height: h,
                pixels,
            };
            for f in detect(&c, &g, &Params::default()) {
                assert!(f.x + f.width <= w as u32 + 1 && f.y + f.height <= h as u32 + 1);
            }
        }
        let wrong = Gray {
            width: 10,
            height: 10,
            pixels: vec![0; 7],
        };
        assert!(detect(&c, &wrong, &Params::default()).is_empty());
    }

    #[test]
    fn overlapping_hits_become_one_box_and_lone_hits_none() {
        let at = |x, y| Face {
            x,
            y,
            width: 40,
            height: 40,
        };
        let cluster: Vec<Face> = (0..6).map(|i| at(100 + i, 50 + i)).collect();
        let mut hits = cluster.clone();
        hits.push(at(400, 400));
        let groups = group(&hits, 5, 0.2);
        assert_eq!(groups, [at(102, 52)]);
        assert!(group(&cluster[..5], 5, 0.2).is_empty());
    }
}
