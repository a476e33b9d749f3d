//! EfficientNet-Lite on candle: MBConv blocks without squeeze-and-excitation, ReLU6, and
//! every batch norm folded into the convolution before it when the weights load.
//!
//! Tensor names follow the EfficientNet-PyTorch layout the Lite checkpoints use
//! (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv` ...). The input is NCHW; after the
//! stem everything is channels-last (NHWC), where a 1x1 convolution is one matmul over
//! all pixels of the batch and the depthwise taps run along contiguous channels.

use crate::bias_act::bias_act;
use crate::config::EfficientNetConfig;
use crate::depthwise;
use crate::error::ClassifyError;
use crate::im2col;
use candle_core::{DType, Device, Module, Tensor, D};
use std::collections::HashMap;

type Result<T> = std::result::Result<T, ClassifyError>;

/// Images per forward pass on the CPU (see [`EfficientNet::forward`]).
pub const CPU_CHUNK: usize = 4;

/// A convolution with its batch norm folded in: `conv(x, w * s) + (beta - mean * s)`
/// where `s = gamma / sqrt(var + eps)`. Equal to conv-then-BN in inference, one pass fewer.
#[derive(Debug, Clone)]
pub struct FoldedConv {
    kind: Kind,
    bias: Tensor,
}

#[derive(Debug, Clone)]
enum Kind {
    /// 1x1: `weight` [in, out], applied to `[pixels, in]`.
    Pointwise { weight: Tensor },
    /// One filter per channel: `taps` [k * k, channels].
    Depthwise {
        taps: Tensor,
        k: usize,
        stride: usize,
    },
    /// A full convolution on NCHW input (the stem): `weight` [out, in, k, k], and the
    /// same as `cols` [k * k * in, out] for patches in (ky, kx, in) order.
    Full {
        weight: Tensor,
        cols: Tensor,
        k: usize,
        stride: usize,
    },
}

struct Weights<'a> {
    map: HashMap<String, Tensor>,
    device: &'a Device,
    eps: f64,
}

impl Weights<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .map
            .remove(name)
            .ok_or_else(|| ClassifyError::Weights(format!("`{name}` is missing")))?;
        if t.dims() != shape {
            return Err(ClassifyError::Weights(format!(
                "`{name}` has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        let t = t
            .to_dtype(DType::F32)
            .and_then(|t| t.to_device(self.device));
        t.map_err(ClassifyError::model(format!("loading `{name}`")))
    }

    /// `conv` (a `.weight` of shape [out, in, k, k]) folded with batch norm `bn`.
    fn conv_bn(
        &mut self,
        conv: &str,
        bn: &str,
        shape: [usize; 4],
        stride: usize,
    ) -> Result<FoldedConv> {
        let out = shape[0];
        let w = self.take(&format!("{conv}.weight"), &shape)?;
        let gamma = self.take(&format!("{bn}.weight"), &[out])?;
        let beta = self.take(&format!("{bn}.bias"), &[out])?;
        let mean = self.take(&format!("{bn}.running_mean"), &[out])?;
        let var = self.take(&format!("{bn}.running_var"), &[out])?;
        // The step counter of training; inference never reads it.
        self.map.remove(&format!("{bn}.num_batches_tracked"));
        let (k, cin) = (shape[2], shape[1]);
        let fold = || -> candle_core::Result<FoldedConv> {
            let scale = gamma.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            let weight = w.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
            let bias = (beta - mean.mul(&scale)?)?;
            let kind = if k == 1 && stride == 1 {
                let weight = weight.reshape((out, cin))?.t()?.contiguous()?;
                Kind::Pointwise { weight }
            } else if cin == 1 && out > 1 {
                let taps = weight.reshape((out, k * k))?.t()?.contiguous()?;
                Kind::Depthwise { taps, k, stride }
            } else {
                let cols = weight.permute((2, 3, 1, 0))?.reshape((k * k * cin, out))?;
                let weight = weight.contiguous()?;
                Kind::Full {
                    weight,
                    cols,
                    k,
                    stride,
                }
            };
            Ok(FoldedConv { kind, bias })
        };
        fold().map_err(ClassifyError::model(format!("folding `{bn}`")))
    }
}

impl FoldedConv {
    /// `act(conv(x) + bias (+ residual))`, with `act` ReLU6 or nothing. `x` is NHWC
    /// except for a full convolution (the stem), which takes NCHW; all return NHWC.
    fn forward(
        &self,
        x: &Tensor,
        cfg: &EfficientNetConfig,
        residual: Option<&Tensor>,
        relu6: bool,
    ) -> candle_core::Result<Tensor> {
        match &self.kind {
            Kind::Pointwise { weight } => {
                let (n, h, w, c) = x.dims4()?;
                let out = weight.dim(1)?;
                let y = x.reshape((n * h * w, c))?.matmul(weight)?;
                let r = residual.map(|r| r.reshape((n * h * w, out))).transpose()?;
                bias_act(y, &self.bias, r.as_ref(), relu6)?.reshape((n, h, w, out))
            }
            Kind::Depthwise { taps, k, stride } => {
                let (_, h, w, _) = x.dims4()?;
                let (top, bottom) = cfg.pad(h, *k, *stride);
                let (left, right) = cfg.pad(w, *k, *stride);
                let pad = [top, bottom, left, right];
                depthwise::conv(x, taps, &self.bias, *stride, pad, relu6)
            }
            Kind::Full {
                weight,
                cols,
                k,
                stride,
            } => {
                let (n, _, h, w) = x.dims4()?;
                let (top, bottom) = cfg.pad(h, *k, *stride);
                let (left, right) = cfg.pad(w, *k, *stride);
                let out = weight.dim(0)?;
                let on_cpu = matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32;
                let y = if on_cpu {
                    let pad = [top, bottom, left, right];
                    let p = im2col::patches(x, *k, *stride, pad)?;
                    let (oh, ow) = (
                        (h + top + bottom - k) / stride + 1,
                        (w + left + right - k) / stride + 1,
                    );
                    p.matmul(cols)?.reshape((n, oh, ow, out))?
                } else {
                    let x = x.pad_with_zeros(D::Minus2, top, bottom)?;
                    let x = x.pad_with_zeros(D::Minus1, left, right)?;
                    let y = x.conv2d(weight, 0, *stride, 1, 1)?;
                    y.permute((0, 2, 3, 1))?.contiguous()?
                };
                bias_act(y, &self.bias, residual, relu6)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    expand: Option<FoldedConv>,
    depthwise: FoldedConv,
    project: FoldedConv,
    residual: bool,
}

#[derive(Debug, Clone)]
pub struct EfficientNet {
    pub config: EfficientNetConfig,
    stem: FoldedConv,
    blocks: Vec<Block>,
    head: FoldedConv,
    fc: candle_nn::Linear,
}

impl EfficientNet {
    /// Builds the network from a state dict, checking every tensor's shape against
    /// `config`; tensors left over mean the checkpoint is some other network.
    pub fn from_tensors(
        tensors: Vec<(String, Tensor)>,
        config: EfficientNetConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut wts = Weights {
            map: tensors.into_iter().collect(),
            device,
            eps: config.bn_eps,
        };
        let stem_c = config.stem_channels;
        let stem = wts.conv_bn("_conv_stem", "_bn0", [stem_c, 3, 3, 3], 2)?;
        let mut blocks = Vec::new();
        let mut cin = stem_c;
        for (i, (k, stride, expand, cout)) in config.blocks().into_iter().enumerate() {
            let p = format!("_blocks.{i}");
            let mid = cin * expand;
            let expand_conv = if expand != 1 {
                let name = format!("{p}._expand_conv");
                Some(wts.conv_bn(&name, &format!("{p}._bn0"), [mid, cin, 1, 1], 1)?)
            } else {
                None
            };
            let dw_name = format!("{p}._depthwise_conv");
            let depthwise = wts.conv_bn(&dw_name, &format!("{p}._bn1"), [mid, 1, k, k], stride)?;
            let pj_name = format!("{p}._project_conv");
            let project = wts.conv_bn(&pj_name, &format!("{p}._bn2"), [cout, mid, 1, 1], 1)?;
            blocks.push(Block {
                expand: expand_conv,
                depthwise,
                project,
                residual: stride == 1 && cin == cout,
            });
            cin = cout;
        }
        let head_c = config.head_channels;
        let head = wts.conv_bn("_conv_head", "_bn1", [head_c, cin, 1, 1], 1)?;
        let fc_w = wts.take("_fc.weight", &[config.num_classes, head_c])?;
        let fc_b = wts.take("_fc.bias", &[config.num_classes])?;
        if !wts.map.is_empty() {
            let mut left: Vec<&String> = wts.map.keys().collect();
            left.sort();
            return Err(ClassifyError::Weights(format!(
                "{} tensors not used by the network (a different architecture?), e.g. {:?}",
                left.len(),
                &left[..left.len().min(3)]
            )));
        }
        Ok(EfficientNet {
            config,
            stem,
            blocks,
            head,
            fc: candle_nn::Linear::new(fc_w, Some(fc_b)),
        })
    }

    /// Logits `[n, num_classes]` for preprocessed pixels `[n, 3, h, w]`.
    ///
    /// On the CPU a large batch runs in chunks of [`CPU_CHUNK`] images: the first blocks'
    /// activations grow by 38 MB per 8 images at 224x224, and a chunk whose activations
    /// stay in the last-level cache is faster per image than the whole batch at once
    /// (batch 8, one thread, alternating runs: 175-183 ms in chunks of 4, 198-203 ms whole).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        if matches!(x.device(), Device::Cpu) && n > CPU_CHUNK {
            let parts = (0..n)
                .step_by(CPU_CHUNK)
                .map(|i| self.forward_all(&x.narrow(0, i, CPU_CHUNK.min(n - i))?))
                .collect::<candle_core::Result<Vec<_>>>()?;
            return Tensor::cat(&parts, 0);
        }
        self.forward_all(x)
    }

    fn forward_all(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let cfg = &self.config;
        let mut x = self.stem.forward(x, cfg, None, true)?;
        for b in &self.blocks {
            let input = x.clone();
            if let Some(e) = &b.expand {
                x = e.forward(&x, cfg, None, true)?;
            }
            x = b.depthwise.forward(&x, cfg, None, true)?;
            x = b
                .project
                .forward(&x, cfg, b.residual.then_some(&input), false)?;
        }
        let x = self.head.forward(&x, cfg, None, true)?;
        let (n, h, w, c) = x.dims4()?;
        let pooled = x.reshape((n, h * w, c))?.mean(1)?;
        self.fc.forward(&pooled)
    }
}
