//! `device = "cpu" | "cuda:N" | "metal"`: parsed once, checked against what this build has.

use crate::error::{PipelineError, Result};
use candle_core::Device;

/// A device as written in a pipeline definition or `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Metal,
}

impl std::str::FromStr for DeviceSpec {
    type Err = PipelineError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "metal" => Ok(DeviceSpec::Metal),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => Err(PipelineError::Device(format!(
                    "unknown device `{s}` (expected cpu, cuda:N or metal)"
                ))),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal => write!(f, "metal"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device. A backend this binary was built without is named with the cargo
    /// feature that adds it, so the fix is one rebuild away.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(not_built("cuda:N", "cuda"));
                }
                Device::new_cuda(n)
                    .map_err(|e| PipelineError::Device(format!("opening cuda:{n}: {e}")))
            }
            DeviceSpec::Metal => {
                if !candle_core::utils::metal_is_available() {
                    return Err(not_built("metal", "metal"));
                }
                Device::new_metal(0)
                    .map_err(|e| PipelineError::Device(format!("opening metal: {e}")))
            }
        }
    }
}

fn not_built(device: &str, feature: &str) -> PipelineError {
    PipelineError::Device(format!(
        "device {device}: this percept was built without the `{feature}` feature \
         (rebuild with `cargo build --release --features {feature}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::DeviceSpec;

    #[test]
    fn devices_parse_and_print_back() {
        for s in ["cpu", "cuda:0", "cuda:3", "metal"] {
            let d: DeviceSpec = s.parse().expect(s);
            assert_eq!(d.to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Cuda(0)));
        for bad in ["gpu", "cuda:x", "cuda:-1", ""] {
            let e = bad.parse::<DeviceSpec>().expect_err(bad).to_string();
            assert!(e.contains("expected cpu, cuda:N or metal"), "{e}");
        }
    }

    #[test]
    fn a_backend_not_built_names_its_feature() {
        assert!(DeviceSpec::Cpu.open().is_ok());
        if !candle_core::utils::cuda_is_available() {
            let e = DeviceSpec::Cuda(0).open().expect_err("no cuda").to_string();
            assert!(e.contains("`cuda` feature"), "{e}");
        }
        if !candle_core::utils::metal_is_available() {
            let e = DeviceSpec::Metal.open().expect_err("no metal").to_string();
            assert!(e.contains("`metal` feature"), "{e}");
        }
    }
}
