//! Work splitting over rayon's global pool, the pool candle's matmul already uses.

use rayon::prelude::*;

/// Calls `f(first_index, chunk)` for consecutive chunks of `out` of `chunk` elements,
/// on several threads when there is more than one chunk, each compiled for the CPU's SIMD.
pub(crate) fn for_chunks(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let chunk = chunk.max(1);
    if out.len() <= chunk {
        crate::simd::run(|| f(0, out));
        return;
    }
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| crate::simd::run(|| f(i * chunk, c)));
}

/// A chunk length, a multiple of `unit`, that splits `units` units of `cost` each into
/// tasks of at least `min_cost`, and into at most a few tasks per thread.
pub(crate) fn chunk_len(units: usize, unit: usize, cost: usize, min_cost: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_cost = min_cost.div_ceil(cost.max(1)).max(1);
    let by_threads = units.div_ceil(threads * 4).max(1);
    by_cost.max(by_threads) * unit
}
