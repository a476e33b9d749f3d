//! Attention of one query position over cached keys and values.
//!
//! Each decoding step of Whisper attends one new position to the self-attention cache
//! and to 1500 encoder positions. As a batched matmul that is a `[1, 64] x [64, 1500]`
//! product per head, which candle runs one head after another on one thread; here the
//! heads are spread over threads and each head is two passes over contiguous rows.

use crate::math::dot;
use crate::on_cpu_f32;
use crate::softmax::softmax_in_place;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `softmax(q k^T * scale) v` for `q` of shape `[b, h, 1, d]` and `k`, `v` of shape
/// `[b, h, t, d]`, without a mask (the one query sees every cached position).
pub fn attend_one(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let fast = [q, k, v].iter().all(|t| on_cpu_f32(t)) && q.dim(2)? == 1;
    if !fast {
        let w = (q * scale)?.matmul(&k.t()?)?;
        return crate::softmax_last_dim(&w)?.matmul(v);
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    q.apply_op3_no_bwd(
        &k,
        &v,
        &AttendOne {
            scale: scale as f32,
        },
    )
}

struct AttendOne {
    scale: f32,
}

impl CustomOp3 for AttendOne {
    fn name(&self) -> &'static str {
        "attend-one"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, h, _, d) = ql.shape().dims4()?;
        let (kb, kh, t, kd) = kl.shape().dims4()?;
        if (kb, kh, kd) != (b, h, d) || vl.shape().dims4()? != (b, h, t, d) {
            candle_core::bail!(
                "attend-one: q {:?}, k {:?}, v {:?}",
                ql.dims(),
                kl.dims(),
                vl.dims()
            );
        }
        let slice = |s, l| crate::contiguous_f32("attend-one", s, l);
        let (q, k, v) = (slice(qs, ql)?, slice(ks, kl)?, slice(vs, vl)?);
        let mut out = vec![0f32; b * h * d];
        out.par_chunks_mut(d.max(1)).enumerate().for_each_init(
            Vec::new,
            |scores: &mut Vec<f32>, (bh, o)| {
                let qi = &q[bh * d..(bh + 1) * d];
                let keys = &k[bh * t * d..(bh + 1) * t * d];
                let vals = &v[bh * t * d..(bh + 1) * t * d];
                attend(qi, keys, vals, self.scale, scores, o);
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((b, h, 1, d))))
    }
}

crate::simd::multiversion! {
    /// One query row against its head's keys and values (rows of `q.len()`), added to `o`.
    fn attend(q: &[f32], keys: &[f32], vals: &[f32], scale: f32, scores: &mut Vec<f32>, o: &mut [f32]) {
        let d = q.len().max(1);
        scores.resize(keys.len() / d, 0.0);
        // Plain loops: an iterator adapter's closure is compiled apart, without the features.
        for (score, kr) in scores.iter_mut().zip(keys.chunks_exact(d)) {
            *score = dot(q, kr) * scale;
        }
        softmax_in_place(scores);
        for (p, vr) in scores.iter().zip(vals.chunks_exact(d)) {
            for (o, x) in o.iter_mut().zip(vr) {
                *o += p * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_matmul_formulation() -> Result<()> {
        let dev = Device::Cpu;
        for (b, h, t, d) in [(1, 6, 1500, 64), (5, 6, 7, 64), (2, 3, 1, 10)] {
            let q = Tensor::randn(0f32, 1.0, (b, h, 1, d), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev)?;
            let scale = 1.0 / (d as f64).sqrt();
            let w = (&q * scale)?.matmul(&k.t()?)?;
            let want = candle_nn::ops::softmax_last_dim(&w)?.matmul(&v)?;
            let got = attend_one(&q, &k, &v, scale)?;
            let diff = (&got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{:?}: {diff}", (b, h, t, d));
            // Other dtypes (and other devices) take the matmul path itself.
            let f64 = candle_core::DType::F64;
            let (q, k, v) = (q.to_dtype(f64)?, k.to_dtype(f64)?, v.to_dtype(f64)?);
            let slow = attend_one(&q, &k, &v, scale)?.to_dtype(candle_core::DType::F32)?;
            let diff = (slow - &got)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "f64 path {:?}: {diff}", (b, h, t, d));
        }
        Ok(())
    }
}
