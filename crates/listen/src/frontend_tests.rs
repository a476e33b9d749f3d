use super::*;
use crate::capture::capture_queue;
use crate::queue::{utterance_queue, Overflow};

const RATE: u32 = 16_000;

/// Quiet noise with 440 Hz bursts of `burst` seconds every `period` seconds.
fn bursts(count: usize, burst: f64, period: f64) -> Vec<f32> {
    let n = (count as f64 * period * RATE as f64) as usize + RATE as usize;
    let mut seed: u64 = 11;
    (0..n)
        .map(|i| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let noise = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.01;
            let t = i as f64 / RATE as f64;
            let k = (t / period).floor();
            let inside = k < count as f64 && t - k * period >= 0.5 && t - k * period < 0.5 + burst;
            let tone = if inside {
                0.3 * (t as f32 * 2.0 * std::f32::consts::PI * 440.0).sin()
            } else {
                0.0
            };
            noise + tone
        })
        .collect()
}

#[test]
fn a_consumer_that_falls_behind_loses_whole_utterances_and_is_told() {
    let (cap_tx, cap_rx) = capture_queue(10_000);
    let (queue, utt_rx) = utterance_queue(1, Overflow::DropOldest);
    let (ntx, nrx) = crossbeam_channel::unbounded();
    let fe = spawn_frontend(cap_rx, RATE, VadConfig::default(), queue, ntx).unwrap();
    let x = bursts(4, 0.6, 2.0);
    for c in x.chunks(320) {
        assert!(cap_tx.push(c.to_vec()));
    }
    drop(cap_tx);
    // Nobody consumed while the four utterances were closed: three were dropped.
    let stats = fe.join().unwrap();
    assert_eq!(stats.utterances, 4);
    assert_eq!(stats.dropped, 3);
    let notices: Vec<Notice> = nrx.try_iter().collect();
    let dropped: Vec<u64> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::Dropped { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, [0, 1, 2]);
    let left: Vec<Utterance> = utt_rx.try_iter().filter(|u| !u.tentative).collect();
    assert_eq!(left.len(), 1);
    let u = &left[0];
    assert_eq!(u.index, 3);
    // Whole: pre-roll, the full burst and the hangover.
    let secs = u.samples.len() as f64 / RATE as f64;
    assert!((secs - (u.decided_s - u.start_s)).abs() < 1e-6);
    assert!(
        u.end_s - u.start_s >= 0.6 + 0.2 - 0.05,
        "{} {}",
        u.start_s,
        u.end_s
    );
    assert!(u.end_at.is_some());
}

#[test]
fn resampled_sources_are_timed_in_their_own_stream_time() {
    // 48 kHz input: the front end resamples before endpointing.
    let x16 = bursts(2, 0.8, 2.5);
    let x48: Vec<f32> = x16.iter().flat_map(|&s| [s, s, s]).collect();
    let (cap_tx, cap_rx) = capture_queue(100_000);
    let (queue, utt_rx) = utterance_queue(8, Overflow::Block);
    let (ntx, _nrx) = crossbeam_channel::unbounded();
    let fe = spawn_frontend(cap_rx, 48_000, VadConfig::default(), queue, ntx).unwrap();
    for c in x48.chunks(960) {
        assert!(cap_tx.push_blocking(c.to_vec()));
    }
    drop(cap_tx);
    fe.join().unwrap();
    let got: Vec<Utterance> = utt_rx.try_iter().filter(|u| !u.tentative).collect();
    assert_eq!(got.len(), 2);
    for (k, u) in got.iter().enumerate() {
        let end = k as f64 * 2.5 + 0.5 + 0.8;
        assert!((u.end_s - end).abs() < 0.05, "{} vs {end}", u.end_s);
    }
}

#[test]
fn lost_capture_audio_drops_the_utterance_it_cut() {
    let (cap_tx, cap_rx) = capture_queue(1);
    let (queue, utt_rx) = utterance_queue(8, Overflow::Block);
    let (ntx, nrx) = crossbeam_channel::unbounded();
    let x = bursts(1, 1.5, 3.0);
    // Half a second into the burst, the next chunks find the queue full and are lost.
    let cut = (1.0 * RATE as f64) as usize;
    assert!(cap_tx.push(x[..cut].to_vec()));
    assert!(!cap_tx.push(x[cut..cut + 1600].to_vec()));
    let fe = spawn_frontend(cap_rx, RATE, VadConfig::default(), queue, ntx).unwrap();
    for c in x[cut + 1600..].chunks(320) {
        assert!(cap_tx.push_blocking(c.to_vec()));
    }
    drop(cap_tx);
    let stats = fe.join().unwrap();
    assert_eq!(stats.overruns, 1);
    let notices: Vec<Notice> = nrx.try_iter().collect();
    assert!(notices.iter().any(|n| matches!(
        n,
        Notice::Overrun {
            lost_samples: 1600,
            discarded_utterance: true,
            ..
        }
    )));
    // Only the part after the hole comes out, timed after the hole (1.0 s + 0.1 s lost).
    let got: Vec<Utterance> = utt_rx.try_iter().filter(|u| !u.tentative).collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].start_s >= 1.1 - 1e-6, "{}", got[0].start_s);
}
