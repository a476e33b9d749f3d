//! Which frames to keep: one every time step, and one whenever the picture changes (a
//! luma-histogram distance between consecutive checks), up to a cap.

/// Bins of the luma histogram.
const BINS: usize = 32;
/// Shortest gap between two kept frames, so a flickering scene does not fill the cap.
const MIN_GAP_S: f64 = 0.5;

/// The luma (BT.601) histogram of row-major RGB, normalised to sum to 1.
pub fn luma_histogram(rgb: &[u8]) -> Vec<f32> {
    let mut h = vec![0f32; BINS];
    let mut n = 0f32;
    for px in rgb.chunks_exact(3) {
        let y = (299 * px[0] as u32 + 587 * px[1] as u32 + 114 * px[2] as u32) / 1000;
        h[(y as usize * BINS / 256).min(BINS - 1)] += 1.0;
        n += 1.0;
    }
    if n > 0.0 {
        h.iter_mut().for_each(|v| *v /= n);
    }
    h
}

/// Half the L1 distance between two normalised histograms: 0 alike, 1 disjoint.
pub fn scene_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / 2.0
}

/// Decides, frame by frame in time order, which to look at and which to keep.
#[derive(Debug, Clone)]
pub struct Sampler {
    step_s: f64,
    check_s: f64,
    threshold: f32,
    max_frames: usize,
    kept: usize,
    last_kept: Option<f64>,
    next_check: f64,
    last_hist: Option<Vec<f32>>,
}

impl Sampler {
    /// `duration_s` (declared, when known) widens the step so `max_frames` cover it all.
    pub fn new(step_s: f64, threshold: f32, max_frames: usize, duration_s: Option<f64>) -> Self {
        let mut step = if step_s.is_finite() && step_s > 0.0 {
            step_s
        } else {
            2.0
        };
        if let Some(d) = duration_s.filter(|d| d.is_finite() && *d > 0.0) {
            if max_frames > 0 {
                step = step.max(d / max_frames as f64);
            }
        }
        Sampler {
            step_s: step,
            check_s: step.min(MIN_GAP_S),
            threshold,
            max_frames,
            kept: 0,
            last_kept: None,
            next_check: f64::NEG_INFINITY,
            last_hist: None,
        }
    }

    /// Whether the frame at `t` should be converted and offered to [`Sampler::offer`].
    pub fn wants(&self, t: f64) -> bool {
        self.kept < self.max_frames && t >= self.next_check
    }

    /// Whether all the frames allowed are kept.
    pub fn full(&self) -> bool {
        self.kept >= self.max_frames
    }

    /// Looks at the frame at `t` (its RGB); returns `Some(scene_change)` when it is kept.
    pub fn offer(&mut self, t: f64, rgb: &[u8]) -> Option<bool> {
        if self.full() {
            return None;
        }
        // Checks and steps sit on a grid from 0, so they do not drift with the frame rate.
        self.next_check = ((t / self.check_s).floor() + 1.0) * self.check_s;
        let hist = luma_histogram(rgb);
        let scene = self
            .last_hist
            .as_ref()
            .is_some_and(|h| scene_distance(h, &hist) > self.threshold);
        self.last_hist = Some(hist);
        let keep = match self.last_kept {
            None => true,
            Some(last) => {
                let slot = |x: f64| (x / self.step_s + 1e-9).floor();
                t >= last + MIN_GAP_S && (scene || slot(t) > slot(last))
            }
        };
        if !keep {
            return None;
        }
        self.kept += 1;
        self.last_kept = Some(t);
        Some(scene)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: u8) -> Vec<u8> {
        vec![v; 4 * 4 * 3]
    }

    #[test]
    fn histograms_tell_different_pictures_apart() {
        let (dark, light) = (luma_histogram(&flat(10)), luma_histogram(&flat(240)));
        assert!((dark.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(scene_distance(&dark, &dark), 0.0);
        assert!((scene_distance(&dark, &light) - 1.0).abs() < 1e-5);
    }

    /// Frames at 25 fps for 8 s: dark for 3.3 s, then light.
    fn run(s: &mut Sampler) -> Vec<(f64, bool)> {
        let mut kept = Vec::new();
        for i in 0..200 {
            let t = i as f64 / 25.0;
            if !s.wants(t) {
                continue;
            }
            let px = if t < 3.3 { flat(10) } else { flat(240) };
            if let Some(scene) = s.offer(t, &px) {
                kept.push((t, scene));
            }
        }
        kept
    }

    #[test]
    fn keeps_a_frame_per_step_and_at_scene_changes() {
        let kept = run(&mut Sampler::new(2.0, 0.3, 16, Some(8.0)));
        let times: Vec<f64> = kept.iter().map(|k| k.0).collect();
        assert_eq!(&times[..2], &[0.0, 2.0], "{kept:?}");
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= MIN_GAP_S),
            "{kept:?}"
        );
        let scenes: Vec<_> = kept.iter().filter(|k| k.1).collect();
        assert_eq!(scenes.len(), 1, "{kept:?}");
        assert!((3.3..3.9).contains(&scenes[0].0), "{kept:?}");
        assert!(
            times.contains(&6.0) && (5..=6).contains(&kept.len()),
            "{kept:?}"
        );
    }

    #[test]
    fn the_cap_widens_the_step_and_holds() {
        let kept = run(&mut Sampler::new(0.1, 0.3, 3, Some(8.0)));
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept[0].0, 0.0);
        assert!(kept[1].0 >= 2.6, "{kept:?}");
        let mut none = Sampler::new(2.0, 0.3, 0, None);
        assert!(!none.wants(0.0));
        assert_eq!(none.offer(0.0, &flat(1)), None);
    }
}
