use super::*;

#[test]
fn no_speech_rule_uses_the_reference_thresholds() {
    let o = Options::default();
    assert_eq!((o.no_speech_threshold, o.logprob_threshold), (0.6, -1.0));
    assert!(o.is_no_speech(0.61, -1.5));
    assert!(o.is_no_speech(0.9, -1.0));
    // Confident text is kept even when the model also leans to no speech.
    assert!(!o.is_no_speech(0.95, -0.7));
    assert!(!o.is_no_speech(0.6, -3.0));
}

#[test]
fn slice_source_hands_out_one_window_at_a_time() {
    let x = vec![0.5f32; N_SAMPLES * 2 + 10];
    let mut src = SliceSource(Some(&x));
    let mut out = Vec::new();
    let mut reads = 0;
    while src.read(&mut out).unwrap() {
        reads += 1;
        assert!(out.len() <= reads * N_SAMPLES);
    }
    assert_eq!((reads, out.len()), (3, x.len()));
}
