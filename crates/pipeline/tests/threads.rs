//! A pipeline's `threads` replaces the default thread count the CLI pins at start, and
//! yields to the person's own RAYON_NUM_THREADS (its own process: it sets the environment).

use percept_pipeline::def::{load, pin_thread_count};

#[test]
fn a_pipelines_thread_count_beats_the_pinned_default_only() {
    let mut def = load("default").expect("built-in pipeline");
    def.runtime.threads = Some(2);
    // The person's own value, set before start, wins.
    std::env::set_var("RAYON_NUM_THREADS", "3");
    pin_thread_count();
    def.runtime.apply_threads();
    assert_eq!(std::env::var("RAYON_NUM_THREADS").as_deref(), Ok("3"));
    // Without one, the default pinned at start gives way to the pipeline's.
    std::env::remove_var("RAYON_NUM_THREADS");
    pin_thread_count();
    def.runtime.threads = Some(1);
    def.runtime.apply_threads();
    assert_eq!(std::env::var("RAYON_NUM_THREADS").as_deref(), Ok("1"));
}
