//! Zero-copy access to the data of CPU `f32` tensors, for the fused CPU kernels.
use std::ops::Range;

use candle_core::{Storage, StorageRef, Tensor};

/// The elements of a tensor as an `f32` slice in row-major order: borrowed in place when the tensor
/// is a contiguous `f32` tensor on the CPU, else a converted copy.
///
/// A borrowed view holds the tensor's storage read-locked until it is dropped: do not modify the
/// tensor (e.g. through `Var::set`) while a view of it is alive, or that call deadlocks.
#[derive(Debug)]
pub enum HostF32<'a> {
    /// The tensor's own storage, and the range of it the tensor covers.
    Borrowed(StorageRef<'a>, Range<usize>),
    /// A copy, for tensors on another device, of another dtype, or not contiguous.
    Owned(Vec<f32>),
}

impl<'a> HostF32<'a> {
    /// A view of `t`'s elements.
    pub fn new(t: &'a Tensor) -> candle_core::Result<Self> {
        let (storage, layout) = t.storage_and_layout();
        let borrowable = match (&*storage, layout.contiguous_offsets()) {
            (Storage::Cpu(cpu), Some((start, end))) if cpu.as_slice::<f32>().is_ok() => {
                Some(start..end)
            }
            _ => None,
        };
        if let Some(range) = borrowable {
            return Ok(Self::Borrowed(storage, range));
        }
        drop(storage);
        Ok(Self::Owned(
            t.to_device(&candle_core::Device::Cpu)?
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        ))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Self::Borrowed(storage, range) => match &**storage {
                Storage::Cpu(cpu) => {
                    let all = cpu
                        .as_slice::<f32>()
                        // invariant: `new` borrows only storage whose `as_slice::<f32>` succeeded.
                        .expect("checked to be f32 when borrowed");
                    &all[range.clone()]
                }
                _ => unreachable!("only CPU storage is borrowed"),
            },
            Self::Owned(v) => v,
        }
    }
}
