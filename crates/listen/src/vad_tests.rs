use super::*;

const RATE: u32 = 16_000;

/// Deterministic white noise of the given peak amplitude.
fn noise(n: usize, amp: f32, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (*seed >> 40) as f32 / (1u64 << 24) as f32;
            (u * 2.0 - 1.0) * amp
        })
        .collect()
}

/// `secs` of noise with 440 Hz tone bursts (start, end) in seconds mixed in.
fn signal(secs: f64, bursts: &[(f64, f64)], noise_amp: f32) -> Vec<f32> {
    let n = (secs * RATE as f64) as usize;
    let mut seed = 7;
    let mut x = noise(n, noise_amp, &mut seed);
    for &(a, b) in bursts {
        let (a, b) = ((a * RATE as f64) as usize, (b * RATE as f64) as usize);
        for (i, s) in x.iter_mut().enumerate().take(b.min(n)).skip(a) {
            *s += 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / RATE as f32).sin();
        }
    }
    x
}

/// Final utterances only.
fn run(cfg: VadConfig, x: &[f32], piece: usize) -> Vec<Utterance> {
    let mut all = run_all(cfg, x, piece);
    all.retain(|u| !u.tentative);
    all
}

fn run_all(cfg: VadConfig, x: &[f32], piece: usize) -> Vec<Utterance> {
    let mut vad = Vad::new(cfg, RATE).unwrap();
    let mut out = Vec::new();
    for chunk in x.chunks(piece) {
        vad.push(chunk, &mut out);
    }
    out.extend(vad.finish());
    out
}

#[test]
fn tone_bursts_in_noise_give_one_utterance_each_with_their_boundaries() {
    let bursts = [(1.0, 1.8), (3.3, 4.0), (5.5, 6.7)];
    let x = signal(8.0, &bursts, 0.01);
    let cfg = VadConfig::default();
    let got = run(cfg.clone(), &x, 1000);
    assert_eq!(got.len(), 3);
    let frame = cfg.frame_ms as f64 / 1000.0;
    let pre = cfg.pre_roll_ms as f64 / 1000.0;
    for (i, (u, &(a, b))) in got.iter().zip(&bursts).enumerate() {
        assert_eq!(u.index, i as u64);
        assert!(
            (u.end_s - b).abs() <= frame + 1e-9,
            "end {} vs {b}",
            u.end_s
        );
        assert!(
            (u.start_s - (a - pre)).abs() <= frame + 1e-9,
            "start {} vs {}",
            u.start_s,
            a - pre
        );
        // Closed once the hangover ran out after the end point.
        let hang = cfg.hangover_ms as f64 / 1000.0;
        assert!((u.decided_s - u.end_s - hang).abs() <= frame + 1e-9);
        let secs = u.samples.len() as f64 / RATE as f64;
        assert!((secs - (u.decided_s - u.start_s)).abs() < 1e-6);
        assert!(!u.cut);
    }
}

#[test]
fn a_tentative_end_comes_early_and_the_final_confirms_it() {
    let cfg = VadConfig::default();
    // A pause shorter than the hangover inside the first burst, then a clean end.
    let x = signal(6.0, &[(1.0, 1.6), (1.9, 2.5), (4.0, 4.6)], 0.01);
    let all = run_all(cfg.clone(), &x, 700);
    let early = cfg.early_ms as f64 / 1000.0;
    let frame = cfg.frame_ms as f64 / 1000.0;
    let finals: Vec<&Utterance> = all.iter().filter(|u| !u.tentative).collect();
    assert_eq!(finals.len(), 2);
    for f in &finals {
        // The last tentative before each final has the same index, span and speech.
        let t = all
            .iter()
            .rev()
            .find(|u| u.tentative && u.index == f.index)
            .expect("a tentative before the final");
        assert_eq!((t.start_s, t.end_s), (f.start_s, f.end_s));
        assert!((t.decided_s - t.end_s - early).abs() <= frame + 1e-9);
        assert_eq!(t.samples[..], f.samples[..t.samples.len()]);
    }
    // The pause inside the first utterance gave a tentative that the final did not confirm.
    let first: Vec<&Utterance> = all.iter().filter(|u| u.tentative && u.index == 0).collect();
    assert_eq!(first.len(), 2);
    assert!(first[0].end_s < finals[0].end_s);
    // Off when early_ms is 0.
    let off = VadConfig {
        early_ms: 0,
        ..VadConfig::default()
    };
    assert!(run_all(off, &x, 700).iter().all(|u| !u.tentative));
}

#[test]
fn result_does_not_depend_on_piece_sizes() {
    let x = signal(5.0, &[(1.0, 2.0), (3.0, 3.6)], 0.01);
    let a = run(VadConfig::default(), &x, 16_000);
    let b = run(VadConfig::default(), &x, 37);
    assert_eq!(a, b);
}

#[test]
fn a_pause_shorter_than_the_hangover_keeps_one_utterance() {
    let cfg = VadConfig {
        hangover_ms: 500,
        ..VadConfig::default()
    };
    let short_gap = signal(4.0, &[(1.0, 1.6), (1.9, 2.5)], 0.01);
    assert_eq!(run(cfg.clone(), &short_gap, 512).len(), 1);
    let long_gap = signal(4.0, &[(1.0, 1.6), (2.3, 2.9)], 0.01);
    assert_eq!(run(cfg, &long_gap, 512).len(), 2);
}

#[test]
fn clicks_shorter_than_min_speech_are_not_utterances() {
    let x = signal(3.0, &[(1.0, 1.06)], 0.01);
    assert!(run(VadConfig::default(), &x, 800).is_empty());
}

#[test]
fn silence_and_steady_noise_give_nothing() {
    assert!(run(VadConfig::default(), &vec![0.0; RATE as usize * 3], 640).is_empty());
    assert!(run(VadConfig::default(), &signal(5.0, &[], 0.02), 640).is_empty());
}

#[test]
fn the_floor_learns_a_louder_background_and_speech_over_it_still_counts() {
    // Quiet room for 1 s, then a fan 26 dB louder for 14 s, with a burst at 12 s.
    let mut seed = 3;
    let mut x = noise(RATE as usize, 0.001, &mut seed);
    x.extend(noise(RATE as usize * 14, 0.02, &mut seed));
    let t0 = 12 * RATE as usize;
    for (i, s) in x.iter_mut().enumerate().skip(t0).take(RATE as usize) {
        *s += 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 300.0 / RATE as f32).sin();
    }
    let got = run(VadConfig::default(), &x, 1600);
    // At most one utterance while the floor catches up with the fan, then the burst alone.
    let last = got.last().expect("the burst is found");
    assert!((last.end_s - 13.0).abs() < 0.05, "{:?}", last.end_s);
    assert!(got.len() <= 2, "{}", got.len());
}

#[test]
fn an_endless_sound_is_cut_at_the_maximum_length() {
    let cfg = VadConfig {
        max_utterance_ms: 2000,
        floor_rise_db_per_s: 0.0,
        ..VadConfig::default()
    };
    let x = signal(5.0, &[(0.5, 5.0)], 0.01);
    let got = run(cfg, &x, 1000);
    assert!(got.len() >= 2);
    assert!(got[0].cut);
    assert!(got[0].samples.len() <= 2 * RATE as usize);
}

#[test]
fn discard_drops_the_utterance_in_progress_and_keeps_time() {
    let x = signal(2.0, &[(0.5, 1.5)], 0.01);
    let mut vad = Vad::new(VadConfig::default(), RATE).unwrap();
    let mut out = Vec::new();
    vad.push(&x[..RATE as usize], &mut out);
    assert!(vad.in_speech());
    assert!(vad.discard(1600));
    vad.push(&x[RATE as usize..], &mut out);
    out.extend(vad.finish());
    out.retain(|u| !u.tentative);
    // The second half of the burst after the hole is its own utterance, timed after the gap.
    assert_eq!(out.len(), 1);
    assert!(out[0].start_s >= 1.1 - 0.2 - 1e-9, "{}", out[0].start_s);
}

#[test]
fn bad_settings_name_their_field() {
    let e = Vad::new(
        VadConfig {
            threshold_db: -1.0,
            ..VadConfig::default()
        },
        RATE,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("threshold_db"), "{e}");
    assert!(Vad::new(VadConfig::default(), 0).is_err());
}
