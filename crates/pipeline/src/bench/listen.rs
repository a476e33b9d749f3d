//! `percept bench listen`: the live path on a file played in real time; for each utterance,
//! the time from the end of speech (the endpointer's end point, in stream time) to the first
//! answer token, split into endpointing, transcription and prefill.

use super::median;
use crate::error::{PipelineError, Result};
use crate::listen::{session, Live, Source, TurnReport};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ListenBench {
    pub whisper: String,
    pub model: String,
    pub threads: usize,
    pub turns: Vec<TurnReport>,
    /// End of speech to first answer token over the turns that have one.
    pub latency_ms_median: f64,
    pub latency_ms_max: f64,
}

/// Runs the session `live` describes (its source a file), discarding the answers as they
/// stream, and sums up the turns' latencies.
pub fn listen(live: &Live) -> Result<ListenBench> {
    let Source::File(input, _) = &live.source else {
        return Err(PipelineError::invalid(
            "bench listen plays a file, not a microphone",
        ));
    };
    let turns = session(live, &mut |_| Ok(()))?;
    if turns.is_empty() {
        let input = input.display();
        return Err(PipelineError::invalid(format!(
            "{input}: no utterance was answered"
        )));
    }
    let latencies: Vec<f64> = turns.iter().filter_map(|t| t.latency_ms).collect();
    let latency_ms_max = latencies.iter().copied().fold(f64::NAN, f64::max);
    Ok(ListenBench {
        whisper: live.def.whisper.clone(),
        model: live.def.llm.clone(),
        threads: std::thread::available_parallelism().map_or(0, |n| n.get()),
        turns,
        latency_ms_median: median(latencies),
        latency_ms_max,
    })
}
