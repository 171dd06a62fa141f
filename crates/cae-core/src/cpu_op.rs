//! What the custom CPU ops share: reading their operands as slices of one float dtype, and running
//! a generic kernel on them in that dtype.
use candle_core::{CpuStorage, Layout, Result, Tensor, WithDType};

use crate::matmul::Element;

pub(crate) fn contiguous<'a, T: WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("{what}: operands must be contiguous"),
    }
}

pub(crate) fn dims4(l: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [a, b, c, d] => Ok((a, b, c, d)),
        ref other => candle_core::bail!("{what} must have rank 4, got shape {other:?}"),
    }
}

/// The operands of an op, all of one dtype.
pub(crate) enum Operands<'a> {
    F32(Vec<&'a [f32]>),
    F64(Vec<&'a [f64]>),
}

pub(crate) fn operands<'a>(name: &str, args: &[(&'a CpuStorage, &Layout)]) -> Result<Operands<'a>> {
    if args.iter().all(|(s, _)| matches!(s, CpuStorage::F32(_))) {
        let v = args.iter().map(|(s, l)| contiguous(s, l, name));
        return Ok(Operands::F32(v.collect::<Result<_>>()?));
    }
    if args.iter().all(|(s, _)| matches!(s, CpuStorage::F64(_))) {
        let v = args.iter().map(|(s, l)| contiguous(s, l, name));
        return Ok(Operands::F64(v.collect::<Result<_>>()?));
    }
    candle_core::bail!("{name}: operands must be all f32 or all f64")
}

/// Runs the kernel `f` on the operands, in their dtype.
macro_rules! run_kernel {
    ($name:expr, $args:expr, |$ops:ident| $body:expr) => {
        match operands($name, $args)? {
            Operands::F32($ops) => CpuStorage::F32($body),
            Operands::F64($ops) => CpuStorage::F64($body),
        }
    };
}

pub(crate) fn optional<'a, T: Element>(ops: &[&'a [T]], i: usize) -> Option<&'a [T]> {
    ops.get(i).copied()
}
pub(crate) use run_kernel;

/// Reads a CPU tensor's data as a contiguous slice of `T` and runs `f` on it (for the backward
/// passes, which receive tensors rather than storages).
pub(crate) fn with_slice<T: WithDType, R>(
    t: &Tensor,
    f: impl FnOnce(&[T]) -> Result<R>,
) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => f(contiguous(cpu, layout, "custom op")?),
        _ => candle_core::bail!("custom CPU op: CPU tensors only"),
    }
}

/// A custom op against its candle-ops reference, for the ops' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use candle_core::{DType, Device, Tensor, Var};

    pub(crate) fn random(shape: &[usize], dtype: DType) -> Var {
        let t = Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap();
        Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
    }

    pub(crate) fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        let scale = b
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .max(1e-30);
        let diff = (a - b).unwrap().abs().unwrap().max(0).unwrap();
        diff.to_scalar::<f64>().unwrap() / scale
    }

    /// The value and every operand's gradient of `Σ op(args) ⊙ g` by each implementation.
    pub(crate) fn compare(
        what: &str,
        shapes: &[&[usize]],
        dtype: DType,
        fast: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
        reference: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    ) {
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
        let vars: Vec<Var> = shapes.iter().map(|s| random(s, dtype)).collect();
        let args: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y_ref = reference(&args).unwrap();
        let g = random(y_ref.dims(), dtype);
        let y = fast(&args).unwrap();
        assert_eq!(y.dims(), y_ref.dims(), "{what}: shape");
        let err = max_rel_diff(&y, &y_ref);
        assert!(err < tol, "{what} {dtype:?}: forward rel err {err:e}");
        let backward = |y: Tensor| {
            (y * g.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        let (grads, grads_ref) = (backward(y), backward(y_ref));
        for (i, v) in vars.iter().enumerate() {
            let err = max_rel_diff(grads.get(v).unwrap(), grads_ref.get(v).unwrap());
            assert!(
                err < tol,
                "{what} {dtype:?}: gradient of operand {i} rel err {err:e}"
            );
        }
    }
}
