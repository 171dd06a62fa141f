//! Flushing subnormals to zero leaves a model's figures as they are: codes, `J v` and the tangent
//! basis of an encoder with many subnormal weights (as a trained CAE has), computed on a thread
//! (and pool) that flushes, against the same on threads that do not.
mod common;

use cae_core::{Activation, ContractiveAutoencoder};
use candle_core::{DType, Device, Tensor};
use common::*;

fn figures(model: &ContractiveAutoencoder, x: &Tensor, v: &Tensor) -> Vec<Vec<f32>> {
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    vec![
        flat(model.encode(x).unwrap()),
        flat(model.jvp(x, v).unwrap()),
        flat(model.tangent_basis(x, 3, 20, 5).unwrap()),
    ]
}

#[test]
fn flushing_subnormals_changes_no_figure() {
    let config = mlp_config(&[], 7, Activation::Sigmoid, false);
    let (model, varmap) =
        ContractiveAutoencoder::init(&config, 2, DType::F32, &Device::Cpu).unwrap();
    // Every third encoder weight subnormal, as the weights of always-zero pixels become.
    let w = varmap.data().lock().unwrap()["encoder.0.weight"].clone();
    let values: Vec<f32> = w
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i % 3 == 0 {
                f32::MIN_POSITIVE / 64.0
            } else {
                v
            }
        })
        .collect();
    w.set(&Tensor::from_vec(values, w.dims(), &Device::Cpu).unwrap())
        .unwrap();
    let x = inputs(6, H * W, 1).to_dtype(DType::F32).unwrap();
    let v = inputs(12, H * W, 2)
        .to_dtype(DType::F32)
        .unwrap()
        .reshape((2, 6, H * W))
        .unwrap();
    // One-thread pools: the computation runs where the mode is (or is not) set.
    let run = |flush: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            if flush {
                cae_core::flush_subnormals_on_this_thread();
            }
            figures(&model, &x, &v)
        })
    };
    let (kept, flushed) = (run(false), run(true));
    for (what, (a, b)) in ["codes", "J v", "tangents"]
        .iter()
        .zip(kept.iter().zip(&flushed))
    {
        let worst = a
            .iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{what}: differs by {worst}");
    }
}
