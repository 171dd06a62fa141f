//! Choosing a device by name, and describing it for reports.
use candle_core::Device;

use crate::{CaeError, Result};

/// Picks a device by name: `auto` (the best one compiled in and present), `cpu`, `cuda`, `cuda:N`, `metal`.
///
/// GPU support is opt-in at build time: `cargo build --release --features cuda` (or `metal`).
pub fn device(request: &str) -> Result<Device> {
    let unavailable = |hint: &str| CaeError::DeviceUnavailable {
        requested: request.to_string(),
        hint: hint.to_string(),
    };
    match request {
        "auto" => {
            if candle_core::utils::cuda_is_available() {
                return Ok(Device::new_cuda(0)?);
            }
            if candle_core::utils::metal_is_available() {
                return Ok(Device::new_metal(0)?);
            }
            Ok(Device::Cpu)
        }
        "cpu" => Ok(Device::Cpu),
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(unavailable(
                    "this build has no Metal support or no Metal GPU was found; rebuild with `--features metal` on macOS",
                ));
            }
            Ok(Device::new_metal(0)?)
        }
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let ordinal = match cuda.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| {
                    unavailable("write the GPU number after `cuda:`, e.g. `cuda:0`")
                })?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(unavailable(
                    "this build has no CUDA support; rebuild with `--features cuda` (needs the CUDA toolkit)",
                ));
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        _ => Err(unavailable("use one of: auto, cpu, cuda, cuda:N, metal")),
    }
}

/// A one-line description of a device for logs.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}
