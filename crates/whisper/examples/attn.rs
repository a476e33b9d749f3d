use candle_core::{Device, Tensor};
use std::time::Instant;
fn t<F: FnMut() -> candle_core::Result<Tensor>>(
    name: &str,
    mut f: F,
) -> candle_core::Result<Tensor> {
    let r = f()?;
    let s = Instant::now();
    for _ in 0..5 {
        f()?;
    }
    println!("{name:28} {:.2} ms", s.elapsed().as_secs_f64() * 200.0);
    Ok(r)
}
fn main() -> candle_core::Result<()> {
    let d = Device::Cpu;
    let (h, n, dh) = (6usize, 1500usize, 64usize);
    let q = Tensor::randn(0f32, 1., (1, h, n, dh), &d)?;
    let k = Tensor::randn(0f32, 1., (1, h, n, dh), &d)?;
    let kt = k.t()?.contiguous()?;
    t("q@k.t()", || q.matmul(&k.t()?))?;
    t("q@kt contiguous", || q.matmul(&kt))?;
    let q3 = q.squeeze(0)?;
    let kt3 = kt.squeeze(0)?;
    t("3d q@kt", || q3.matmul(&kt3))?;
    t("per head loop", || {
        let mut v = Vec::new();
        for i in 0..h {
            v.push(q3.get(i)?.matmul(&kt3.get(i)?)?);
        }
        Tensor::stack(&v, 0)
    })?;
    t("chunked 128 rows", || {
        let mut v = Vec::new();
        for i in 0..h {
            let kk = kt3.get(i)?;
            let qq = q3.get(i)?;
            let mut s = 0;
            while s < n {
                let l = 128.min(n - s);
                v.push(qq.narrow(0, s, l)?.matmul(&kk)?);
                s += l;
            }
        }
        Tensor::cat(&v, 0)
    })?;
    let w = q.matmul(&kt)?;
    t("softmax", || candle_nn::ops::softmax_last_dim(&w))?;
    Ok(())
}
