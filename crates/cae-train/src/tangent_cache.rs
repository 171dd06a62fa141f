//! The Manifold Tangent Classifier's tangents: the pretrained encoder's leading Jacobian
//! directions at every training point, found once before fine-tuning, and the batches of them
//! (every tangent, or random sign combinations of them) that each step propagates.
use cae_core::LoadedModel;
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor};
use rand::Rng;

use crate::{TangentProp, TrainError};

/// Every training point's tangents, `k × input` values each, found once with the frozen
/// pretrained encoder. Memory: `points × k × input × 4` bytes (MNIST's 50,000 fitting images,
/// k = 10: 1.6 GB). Stored tangent-major, `[k, points, input]`, the layout a batch needs, so
/// gathering a batch copies rows and transposes nothing.
pub(crate) struct TangentCache {
    k: usize,
    points: usize,
    input: usize,
    values: Vec<f32>,
}

/// Points per subspace-iteration batch when finding tangents.
const TANGENT_BATCH: usize = 500;

impl TangentCache {
    pub(crate) fn compute(
        base: &LoadedModel,
        data: &Dataset,
        points: usize,
        t: &TangentProp,
        seed: u64,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let encoder = base.model(DType::F32, device)?;
        let (k, input) = (t.tangents, data.image_dim());
        let mut values = vec![0f32; k * points * input];
        for start in (0..points).step_by(TANGENT_BATCH) {
            let end = (start + TANGENT_BATCH).min(points);
            let x = data.to_tensor(start..end, device)?;
            // In the encoder's input space, where the classifier's penalty applies them.
            let x = encoder.prepare_inputs(&x)?;
            let basis = encoder.tangent_basis(&x, k, t.iterations, seed ^ start as u64)?;
            // `[k, B, input]`: tangent j of these points goes to rows start..end of slab j.
            let host = basis.flatten_all()?.to_vec1::<f32>()?;
            let rows = (end - start) * input;
            for (j, slab) in host.chunks_exact(rows).enumerate() {
                let at = (j * points + start) * input;
                values[at..at + rows].copy_from_slice(slab);
            }
        }
        Ok(Self {
            k,
            points,
            input,
            values,
        })
    }

    /// The tangents of the points `indices`, `[k, B, input]`.
    pub(crate) fn gather(&self, indices: &[usize], device: &Device) -> Result<Tensor, TrainError> {
        let mut out = Vec::with_capacity(self.k * indices.len() * self.input);
        for j in 0..self.k {
            for &i in indices {
                let at = (j * self.points + i) * self.input;
                out.extend_from_slice(&self.values[at..at + self.input]);
            }
        }
        Ok(Tensor::from_vec(
            out,
            (self.k, indices.len(), self.input),
            device,
        )?)
    }

    /// `probes` random sign combinations of the tangents of each of the points `indices`,
    /// `[probes, B, input]` (see [`TangentProp::probes`]).
    pub(crate) fn gather_probes(
        &self,
        indices: &[usize],
        probes: usize,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<Tensor, TrainError> {
        let signs: Vec<bool> = (0..probes * indices.len() * self.k)
            .map(|_| rng.random())
            .collect();
        self.combine(indices, probes, &signs, device)
    }

    /// The combinations `Σ_j ±u_j / √probes` with the signs `signs[(p·B + b)·k + j]` (true: +).
    fn combine(
        &self,
        indices: &[usize],
        probes: usize,
        signs: &[bool],
        device: &Device,
    ) -> Result<Tensor, TrainError> {
        let scale = 1.0 / (probes as f32).sqrt();
        let mut out = vec![0f32; probes * indices.len() * self.input];
        let rows = out.chunks_exact_mut(self.input);
        for ((row, &i), point_signs) in rows
            .zip(indices.iter().cycle())
            .zip(signs.chunks_exact(self.k))
        {
            for (j, &plus) in point_signs.iter().enumerate() {
                let at = (j * self.points + i) * self.input;
                let s = if plus { scale } else { -scale };
                for (o, u) in row.iter_mut().zip(&self.values[at..at + self.input]) {
                    *o += s * u;
                }
            }
        }
        Ok(Tensor::from_vec(
            out,
            (probes, indices.len(), self.input),
            device,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of `k` tangents for each of `points` points, values from a fixed pattern.
    fn cache(k: usize, points: usize, input: usize) -> TangentCache {
        let values = (0..k * points * input)
            .map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0)
            .collect();
        TangentCache {
            k,
            points,
            input,
            values,
        }
    }

    /// `Σ_rows ‖A·row‖²` for the linear map `A[o][i] = cos(o + 3i)`, computed in f64: the
    /// tangent-propagation penalty is the squared norm of a linear map of each direction.
    fn squared_image(rows: &[f32], input: usize) -> f64 {
        rows.chunks_exact(input)
            .map(|row| {
                (0..5)
                    .map(|o| {
                        let dot: f64 = row
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| f64::from(v) * ((o + 3 * i) as f64).cos())
                            .sum();
                        dot * dot
                    })
                    .sum::<f64>()
            })
            .sum()
    }

    /// Averaged over every sign pattern, the probes' squared image is exactly every tangent's:
    /// the estimate is unbiased, for one probe and for several.
    #[test]
    fn probes_average_to_the_full_penalty_over_all_sign_patterns() {
        let (k, input) = (3, 6);
        let cache = cache(k, 4, input);
        let indices = [2, 0, 3];
        let full = cache.gather(&indices, &Device::Cpu).unwrap();
        let full = squared_image(&full.flatten_all().unwrap().to_vec1().unwrap(), input);
        for probes in [1, 2] {
            let bits = probes * indices.len() * k;
            let mut mean = 0.0;
            for pattern in 0..1u32 << bits {
                let signs: Vec<bool> = (0..bits).map(|b| pattern >> b & 1 == 1).collect();
                let v = cache
                    .combine(&indices, probes, &signs, &Device::Cpu)
                    .unwrap();
                assert_eq!(v.dims(), [probes, indices.len(), input]);
                let v: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
                mean += squared_image(&v, input) / f64::from(1u32 << bits);
            }
            assert!(
                (mean - full).abs() <= 1e-5 * full,
                "{probes} probes: {mean} against {full}"
            );
        }
    }

    /// One draw is a signed sum of the point's own tangents: with every sign +, probe `p` of
    /// point `b` is `Σ_j u_j(b) / √probes`.
    #[test]
    fn a_probe_combines_its_own_points_tangents() {
        let (k, input) = (2, 3);
        let cache = cache(k, 5, input);
        let indices = [4, 1];
        let v = cache
            .combine(&indices, 2, &[true; 8], &Device::Cpu)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        for (b, &i) in indices.iter().enumerate() {
            for d in 0..input {
                let sum: f32 = (0..k)
                    .map(|j| cache.values[(j * cache.points + i) * input + d])
                    .sum();
                for probe in &v {
                    assert!((probe[b][d] - sum / 2f32.sqrt()).abs() < 1e-6);
                }
            }
        }
    }
}
