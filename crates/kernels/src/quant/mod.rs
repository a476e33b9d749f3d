//! Matrix products of GGML block-quantised weights with activations quantised to 8 bits,
//! on the CPU, with the kernel chosen at run time from the CPU's features.
//!
//! A [`QMatrix`] keeps a GGUF tensor's bytes as stored (one row of blocks per output). A
//! [`QInput`] quantises its rows once, on first use, and every matrix that reads it
//! reuses that. [`QMatrix::matmul`] splits the weight rows into bands over rayon's pool;
//! each band reads its rows once for every input row, so a prompt of many tokens streams
//! the weights once rather than once per token.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod format;
#[cfg(target_arch = "aarch64")]
mod neon;
mod q8;

pub use format::{dequantize, Format};
pub use q8::QInput;

use crate::parallel::{chunk_len, for_chunks};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("{what}: {len} bytes, but {rows} rows of {cols} {format:?} weights take {expected}")]
    Size {
        what: String,
        format: Format,
        rows: usize,
        cols: usize,
        len: usize,
        expected: usize,
    },
    #[error("{what}: {cols} columns are not whole {format:?} blocks of {block}")]
    Columns {
        what: String,
        format: Format,
        cols: usize,
        block: usize,
    },
    #[error("matrix product: input rows of {got} values for a matrix of {cols} columns")]
    Input { got: usize, cols: usize },
    #[error("matrix product: {got} outputs given for {expected}")]
    Output { got: usize, expected: usize },
}

/// Which kernels run: chosen once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    Scalar,
    Avx2,
    /// AVX2 for one token, AVX-512 VNNI for prompts.
    Avx512,
    /// NEON on aarch64.
    Neon,
}

impl Kernels {
    /// Whether the AVX2 tiles (and the AVX2 element-wise loops) run.
    pub fn has_avx2(self) -> bool {
        matches!(self, Kernels::Avx2 | Kernels::Avx512)
    }
}

/// The kernels this CPU runs: on x86-64 AVX-512 VNNI for prompts where present, AVX2 (with
/// FMA and F16C) otherwise; NEON on aarch64; unless the environment sets
/// `PERCEPT_KERNELS=scalar` (or `avx2`).
pub fn kernels() -> Kernels {
    static CHOSEN: OnceLock<Kernels> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let forced = std::env::var("PERCEPT_KERNELS").unwrap_or_default();
        if forced == "scalar" {
            Kernels::Scalar
        } else if cfg!(target_arch = "aarch64") {
            Kernels::Neon
        } else if !has_avx2() {
            Kernels::Scalar
        } else if forced != "avx2" && has_avx512() {
            Kernels::Avx512
        } else {
            Kernels::Avx2
        }
    })
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx512::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix of `rows` outputs by `cols` inputs in a block format.
pub struct QMatrix {
    format: Format,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QMatrix")
            .field("format", &self.format)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl QMatrix {
    /// `what` names the tensor in errors.
    pub fn new(
        what: &str,
        format: Format,
        rows: usize,
        cols: usize,
        data: Vec<u8>,
    ) -> Result<Self, QuantError> {
        let block = format.block_len();
        if cols == 0 || !cols.is_multiple_of(block) {
            return Err(QuantError::Columns {
                what: what.to_string(),
                format,
                cols,
                block,
            });
        }
        let row_bytes = cols / block * format.block_bytes();
        let expected = rows.checked_mul(row_bytes);
        if expected != Some(data.len()) {
            return Err(QuantError::Size {
                what: what.to_string(),
                format,
                rows,
                cols,
                len: data.len(),
                expected: expected.unwrap_or(usize::MAX),
            });
        }
        Ok(QMatrix {
            format,
            rows,
            cols,
            row_bytes,
            data,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights of row `r` (`out.len() == cols`); an `r` past the end is an error.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        if r >= self.rows || out.len() != self.cols {
            return Err(QuantError::Output {
                got: out.len(),
                expected: self.cols,
            });
        }
        dequantize(self.format, self.row(r), out);
        Ok(())
    }

    fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// `out[t][j] = x[t] . W[j]` for every input row `t`: `out` is `x.rows() x self.rows()`.
    pub fn matmul(&self, x: &QInput, out: &mut [f32]) -> Result<(), QuantError> {
        self.matmul_with(kernels(), x, out, None)
    }

    fn check(&self, x: &QInput, out_len: usize) -> Result<(), QuantError> {
        if x.k() != self.cols {
            return Err(QuantError::Input {
                got: x.k(),
                cols: self.cols,
            });
        }
        let expected = x.rows() * self.rows;
        if out_len != expected {
            return Err(QuantError::Output {
                got: out_len,
                expected,
            });
        }
        Ok(())
    }

    /// The full product, or with `band = Some(first)` (one input row only) the rows
    /// `first..first + out.len()` on this thread.
    pub(crate) fn matmul_with(
        &self,
        k: Kernels,
        x: &QInput,
        out: &mut [f32],
        band: Option<usize>,
    ) -> Result<(), QuantError> {
        match band {
            None => self.check(x, out.len())?,
            Some(first) if x.rows() != 1 || first + out.len() > self.rows => {
                return Err(QuantError::Output {
                    got: first + out.len(),
                    expected: self.rows,
                })
            }
            Some(_) => {}
        }
        let f = self.format;
        #[cfg(target_arch = "x86_64")]
        if k == Kernels::Avx512 && band.is_none() && x.rows() >= PROMPT_ROWS {
            self.prompt_avx512(x, out);
            return Ok(());
        }
        x.prepare(f.is_k());
        match k {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 | Kernels::Avx512 if f.is_k() => {
                let k = avx2::tiles256(f, avx2::Build::for_cpu(k == Kernels::Avx512));
                // SAFETY: `Kernels::Avx2` is only chosen where the CPU has AVX2, FMA and
                // F16C; `new` and the checks above make every row and input `cols` long.
                self.run(
                    x,
                    out,
                    band,
                    |t| x.row256(t),
                    |r, a| unsafe { (k.one)([r], [a])[0][0] },
                    |r, a| unsafe { (k.rows)(r, [a]).map(|v| v[0]) },
                    |r, a| unsafe { r.map(|r| (k.tokens)([r], a)[0]) },
                );
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 | Kernels::Avx512 => {
                let k = avx2::tiles32(f, avx2::Build::for_cpu(k == Kernels::Avx512));
                // SAFETY: as for the k-quants.
                self.run(
                    x,
                    out,
                    band,
                    |t| x.row32(t),
                    |r, a| unsafe { (k.one)([r], [a])[0][0] },
                    |r, a| unsafe { (k.rows)(r, [a]).map(|v| v[0]) },
                    |r, a| unsafe { (k.tokens)(r, a) },
                );
            }
            #[cfg(target_arch = "aarch64")]
            Kernels::Neon if f.is_k() => {
                // SAFETY: NEON is part of every aarch64 CPU; `new` and the checks above make
                // every row and input `cols` long.
                self.run_each(
                    x,
                    out,
                    band,
                    |t| x.row256(t),
                    |r, a| unsafe { neon::dot256(f, r, a) },
                );
            }
            #[cfg(target_arch = "aarch64")]
            Kernels::Neon => {
                // SAFETY: as for the k-quants.
                self.run_each(
                    x,
                    out,
                    band,
                    |t| x.row32(t),
                    |r, a| unsafe { neon::dot32(f, r, a) },
                );
            }
            _ if f.is_k() => {
                self.run_each(
                    x,
                    out,
                    band,
                    |t| x.row256(t),
                    |r, a| format::dot256(f, r, a),
                );
            }
            _ => {
                self.run_each(x, out, band, |t| x.row32(t), |r, a| format::dot32(f, r, a));
            }
        }
        Ok(())
    }

    /// The product for many input rows on AVX-512 VNNI: each task decodes a band of weight
    /// rows (see `avx512`) small enough to stay in cache, then meets every input row with it.
    #[cfg(target_arch = "x86_64")]
    fn prompt_avx512(&self, x: &QInput, out: &mut [f32]) {
        use std::cell::RefCell;
        thread_local! {
            static BAND: RefCell<avx512::Band> = RefCell::new(avx512::Band::default());
        }
        /// The output, written by several threads at once, each in its own columns.
        struct Out(*mut f32);
        // SAFETY: the tasks below write disjoint columns of it.
        unsafe impl Sync for Out {}
        impl Out {
            fn ptr(&self) -> *mut f32 {
                self.0
            }
        }
        let (t_rows, n) = (x.rows(), self.rows);
        x.prepare(false);
        let acts: Vec<_> = (0..t_rows).map(|t| x.row32(t)).collect();
        // About 192 KiB decoded (three bytes per weight), and at least four bands per thread.
        let threads = rayon::current_num_threads().max(1);
        let by_size = ((1 << 16) / self.cols).max(4);
        let band_rows = by_size.min(n.div_ceil(4 * threads)).max(4).div_ceil(4) * 4;
        let dst = Out(out.as_mut_ptr());
        let task = |j0: usize| {
            let rows = band_rows.min(n - j0);
            BAND.with_borrow_mut(|band| {
                // SAFETY: `Kernels::Avx512` is only chosen where the CPU has the features
                // `avx512::available` checks (and AVX2, FMA, F16C); `new` and `check` make
                // every row and input `cols` long and `out` `t_rows x n`; each task writes
                // its own rows' columns.
                unsafe {
                    band.decode(self.format, self.cols, (j0..j0 + rows).map(|j| self.row(j)));
                    band.product(&acts, dst.ptr(), n, j0);
                }
            });
        };
        use rayon::prelude::*;
        (0..n).into_par_iter().step_by(band_rows).for_each(task);
    }

    /// [`QMatrix::run`] with every tile made of one-row, one-input products.
    fn run_each<A: Copy + Sync>(
        &self,
        x: &QInput,
        out: &mut [f32],
        band: Option<usize>,
        act: impl Fn(usize) -> A + Sync,
        one: impl Fn(&[u8], A) -> f32 + Sync,
    ) {
        self.run(
            x,
            out,
            band,
            act,
            &one,
            |r, a| r.map(|r| one(r, a)),
            |r, a| r.map(|r| a.map(|a| one(r, a))),
        );
    }

    /// Splits the weight rows into bands over the pool. One input row meets four weight rows
    /// at a time; more input rows meet a band's weights two rows by four inputs at a time,
    /// while the band stays in cache.
    #[allow(clippy::too_many_arguments)]
    fn run<A: Copy + Sync>(
        &self,
        x: &QInput,
        out: &mut [f32],
        band: Option<usize>,
        act: impl Fn(usize) -> A + Sync,
        one: impl Fn(&[u8], A) -> f32 + Sync,
        rows4: impl Fn([&[u8]; 4], A) -> [f32; 4] + Sync,
        tokens4: impl Fn([&[u8]; 2], [A; 4]) -> [[f32; 4]; 2] + Sync,
    ) {
        let (t_rows, n) = (x.rows(), self.rows);
        let cost = t_rows * self.row_bytes;
        // Rows j0.. against input row `a`, results to `outs[dj * step]`.
        let by_rows = |j0: usize, a: A, outs: &mut [f32], step: usize| {
            let rows = outs.len().div_ceil(step);
            let mut dj = 0;
            while dj + 4 <= rows {
                let j = j0 + dj;
                let r = rows4(
                    [
                        self.row(j),
                        self.row(j + 1),
                        self.row(j + 2),
                        self.row(j + 3),
                    ],
                    a,
                );
                for (k, v) in r.into_iter().enumerate() {
                    outs[(dj + k) * step] = v;
                }
                dj += 4;
            }
            for dj in dj..rows {
                outs[dj * step] = one(self.row(j0 + dj), a);
            }
        };
        if let Some(first) = band {
            by_rows(first, act(0), out, 1);
            return;
        }
        if t_rows == 1 {
            let a = act(0);
            // One task per thread: a token's worth of work is small enough that more tasks
            // cost more in scheduling than they gain in balance.
            let threads = rayon::current_num_threads().max(1);
            let chunk =
                chunk_len(n.div_ceil(4), 4, 4 * cost, 1 << 14).max(n.div_ceil(4 * threads) * 4);
            for_chunks(out, chunk, |first, outs| by_rows(first, a, outs, 1));
            return;
        }
        // Output-major ([n, t_rows]) so each task owns a contiguous band of weight rows.
        let mut out_t = vec![0f32; n * t_rows];
        let chunk = chunk_len(n.div_ceil(4), 4 * t_rows, 4 * cost, 1 << 14);
        for_chunks(&mut out_t, chunk, |first, outs| {
            let (j0, rows) = (first / t_rows, outs.len() / t_rows);
            let mut t = 0;
            while t + 4 <= t_rows {
                let acts = [act(t), act(t + 1), act(t + 2), act(t + 3)];
                let mut dj = 0;
                while dj + 2 <= rows {
                    let r = tokens4([self.row(j0 + dj), self.row(j0 + dj + 1)], acts);
                    for (k, vs) in r.iter().enumerate() {
                        outs[(dj + k) * t_rows + t..][..4].copy_from_slice(vs);
                    }
                    dj += 2;
                }
                for dj in dj..rows {
                    for (k, &a) in acts.iter().enumerate() {
                        outs[dj * t_rows + t + k] = one(self.row(j0 + dj), a);
                    }
                }
                t += 4;
            }
            for t in t..t_rows {
                by_rows(j0, act(t), &mut outs[t..], t_rows);
            }
        });
        for (j, col) in out_t.chunks_exact(t_rows).enumerate() {
            for (t, &v) in col.iter().enumerate() {
                out[t * n + j] = v;
            }
        }
    }
}

/// The fewest input rows that take the AVX-512 prompt kernel: it decodes its weights first,
/// which fewer rows do not repay.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PROMPT_ROWS: usize = 4;

/// Several matrices' products with the same input (a layer's Q, K and V, or its gate and
/// up projections). One token's products run as one parallel pass over all the matrices'
/// rows instead of one pass per matrix: a pass costs tens of microseconds in thread wake-ups,
/// about as much as a small matrix's product.
pub fn matmul_many(x: &QInput, products: &mut [(&QMatrix, &mut [f32])]) -> Result<(), QuantError> {
    let k = kernels();
    if x.rows() != 1 {
        for (m, out) in products.iter_mut() {
            m.matmul_with(k, x, out, None)?;
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads().max(1);
    let mut tasks: Vec<(&QMatrix, usize, &mut [f32])> = Vec::new();
    for (m, out) in products.iter_mut() {
        m.check(x, out.len())?;
        x.prepare(m.format.is_k());
        let chunk = m.rows.div_ceil(4 * threads).max(1) * 4;
        for (i, band) in out.chunks_mut(chunk).enumerate() {
            tasks.push((*m, i * chunk, band));
        }
    }
    use rayon::prelude::*;
    tasks
        .par_iter_mut()
        .try_for_each(|(m, first, out)| crate::simd::run(|| m.matmul_with(k, x, out, Some(*first))))
}

#[cfg(test)]
mod tests;
