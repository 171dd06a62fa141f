//! Products with a sparse left operand, for the matrix products that involve the input batch.
//!
//! Images are mostly background: about 19% of MNIST's pixels are non-zero. The encoder's
//! `x·Wᵀ` and its weight gradient `δᵀ·x` then do five times the work they need as dense products;
//! here they skip the zeros. Each output element is summed over the non-zeros in index order, so the
//! result does not depend on the thread count.
use std::ops::Range;

use rayon::prelude::*;

/// Above this fraction of non-zeros the dense `gemm` kernel is as fast. Measured for a 600×784 batch
/// against the 784×1000 encoder on two cores: the sparse product takes 3.4 ms at MNIST's 19%
/// non-zeros, 6.8 ms at 35% and 9.5 ms at 50% (Fashion-MNIST), the dense one 7.5–9 ms.
const MAX_DENSITY: f64 = 0.3;

/// The non-zeros of a row-major matrix, row by row (compressed sparse rows).
#[derive(Debug)]
pub struct Csr {
    offsets: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    cols: usize,
}

impl Csr {
    /// The non-zeros of the row-major `[rows, cols]` matrix `data` when at most [`MAX_DENSITY`] of
    /// its entries are non-zero, else `None` (the dense product is as fast). They are counted
    /// first, so a dense matrix costs one cheap pass.
    pub fn from_dense_if_sparse(data: &[f32], rows: usize, cols: usize) -> Option<Self> {
        let non_zeros: usize = data
            .par_chunks(1 << 14)
            .map(|c| c.iter().map(|&v| usize::from(v != 0.0)).sum::<usize>())
            .sum();
        (non_zeros as f64 <= MAX_DENSITY * data.len() as f64)
            .then(|| Self::from_dense(data, rows, cols))
    }

    /// The non-zeros of the row-major `[rows, cols]` matrix `data`.
    pub fn from_dense(data: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix size");
        assert!(u32::try_from(cols).is_ok(), "too many columns");
        let group_rows = rows.div_ceil(4 * rayon::current_num_threads()).max(1);
        let groups: Vec<(Vec<usize>, Vec<u32>, Vec<f32>)> = data
            .par_chunks((group_rows * cols).max(1))
            .map(|block| {
                let (mut lengths, mut indices, mut values) = (Vec::new(), Vec::new(), Vec::new());
                // A row is compacted in a buffer without branches (every entry is written, the cursor
                // moves past non-zeros only): image zeros follow no pattern a branch predictor learns.
                let (mut row_idx, mut row_val) = (vec![0u32; cols], vec![0f32; cols]);
                for row in block.chunks_exact(cols.max(1)) {
                    let mut len = 0;
                    for (i, &v) in row.iter().enumerate() {
                        row_idx[len] = i as u32;
                        row_val[len] = v;
                        // In bounds: at most `i` non-zeros come before entry `i`.
                        len += usize::from(v != 0.0);
                    }
                    lengths.push(len);
                    indices.extend_from_slice(&row_idx[..len]);
                    values.extend_from_slice(&row_val[..len]);
                }
                (lengths, indices, values)
            })
            .collect();
        let nnz = groups.iter().map(|g| g.1.len()).sum();
        let mut csr = Self {
            offsets: Vec::with_capacity(rows + 1),
            indices: Vec::with_capacity(nnz),
            values: Vec::with_capacity(nnz),
            cols,
        };
        csr.offsets.push(0);
        let mut end = 0;
        for (lengths, indices, values) in groups {
            for len in lengths {
                end += len;
                csr.offsets.push(end);
            }
            csr.indices.extend_from_slice(&indices);
            csr.values.extend_from_slice(&values);
        }
        csr.offsets.resize(rows + 1, end);
        csr
    }

    /// The same non-zeros as the rows of the transpose (compressed sparse columns of `self`).
    pub fn transpose(&self) -> Self {
        let rows = self.rows();
        let mut counts = vec![0usize; self.cols + 1];
        for &i in &self.indices {
            counts[i as usize + 1] += 1;
        }
        for c in 0..self.cols {
            counts[c + 1] += counts[c];
        }
        let offsets = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.indices.len()];
        let mut values = vec![0f32; self.values.len()];
        for r in 0..rows {
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                let slot = &mut next[c as usize];
                indices[*slot] = r as u32;
                values[*slot] = v;
                *slot += 1;
            }
        }
        Self {
            offsets,
            indices,
            values,
            cols: rows,
        }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.offsets[r]..self.offsets[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }
}

/// Panel rows per block of a product: 32 KB of panel, the size of L1. Measured on MNIST
/// batches (600×784 by 784×1000, two cores): 2.0–2.8 ms against 3.4–4.1 ms with no blocks, blocks
/// of 64 and 196 rows in between.
const BLOCK: usize = 128;

/// The most rows a thread takes at once in a product.
const MAX_GROUP_ROWS: usize = 128;

/// Width of a column panel: 64 `f32` sums are eight AVX registers, and a panel of a 784-row matrix
/// (200 KB) stays in L2 while a group of rows uses it. (Measured against widths 8, 16 and 32 with
/// several accumulator chains: 64 with one chain was the fastest.)
const PANEL: usize = 64;

/// A dense `[k, n]` matrix stored as column panels: panel `p` holds columns `[64p, 64p + 64)` as one
/// contiguous row-major `[k, 64]` block (the last one padded with zeros), so the rows a sparse
/// product picks at random come from a few pages of one block.
#[derive(Debug)]
pub struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Panels {
    /// The panels of the row-major `[k, n]` matrix `m`.
    #[cfg(any(test, feature = "bench"))]
    pub fn from_row_major(m: &[f32], k: usize, n: usize) -> Self {
        Self::from_row_major_in(Vec::new(), m, k, n)
    }

    /// [`Panels::from_row_major`] in `buffer`'s storage (from [`Panels::into_buffer`]): a step that
    /// builds panels of the same size every time then neither allocates nor zeroes them again.
    pub fn from_row_major_in(buffer: Vec<f32>, m: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(m.len(), k * n, "matrix size");
        Self::filled(buffer, k, n, |c0, width, panel| {
            for (r, out) in panel.chunks_exact_mut(PANEL).enumerate() {
                out[..width].copy_from_slice(&m[r * n + c0..][..width]);
            }
        })
    }

    /// The panels of `wᵀ`, for `w` row-major `[n, k]`.
    #[cfg(any(test, feature = "bench"))]
    pub fn from_transpose(w: &[f32], n: usize, k: usize) -> Self {
        Self::from_transpose_in(Vec::new(), w, n, k)
    }

    /// [`Panels::from_transpose`] in `buffer`'s storage, as [`Panels::from_row_major_in`].
    pub fn from_transpose_in(buffer: Vec<f32>, w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size");
        Self::filled(buffer, k, n, |c0, width, panel| {
            // Output rows in order; the reads walk `width` source rows side by side.
            let src = &w[c0 * k..][..width * k];
            for (r, out) in panel.chunks_exact_mut(PANEL).enumerate() {
                for (t, slot) in out[..width].iter_mut().enumerate() {
                    *slot = src[t * k + r];
                }
            }
        })
    }

    /// The storage, for the next [`Panels::from_row_major_in`] or [`Panels::from_transpose_in`].
    pub fn into_buffer(self) -> Vec<f32> {
        self.data
    }

    /// Panels for `[k, n]` in `buffer`'s storage, each filled in parallel by
    /// `fill(first column, width, panel)` (which writes the first `width` columns of its rows);
    /// the columns of the last panel past `n` are zeroed.
    fn filled(
        mut data: Vec<f32>,
        k: usize,
        n: usize,
        fill: impl Fn(usize, usize, &mut [f32]) + Sync,
    ) -> Self {
        data.resize(k * n.div_ceil(PANEL) * PANEL, 0.0);
        if k > 0 {
            data.par_chunks_mut(k * PANEL)
                .enumerate()
                .for_each(|(p, panel)| {
                    let c0 = p * PANEL;
                    let width = PANEL.min(n - c0);
                    fill(c0, width, panel);
                    if width < PANEL {
                        panel
                            .chunks_exact_mut(PANEL)
                            .for_each(|row| row[width..].fill(0.0));
                    }
                });
        }
        Self { data, k, n }
    }
}

/// `out = a · m`: `a` sparse `[R, K]`, `m` dense `[K, n]`, `out` row-major `[R, n]`.
pub fn sparse_times_dense(out: &mut [f32], a: &Csr, m: &Panels) {
    assert_eq!(out.len(), a.rows() * m.n, "output size");
    product(Output::Rows(out), a, m)
}

/// `out_t += (a · m)ᵀ`: `a` sparse `[R, K]`, `m` dense `[K, n]`, `out_t` row-major `[n, R]`. For
/// a weight gradient `δᵀ·x` with `x` sparse, computed as `(xᵀ·δ)ᵀ` straight into the layout of
/// the weights, without a transposed copy.
pub fn add_sparse_times_dense_transposed(out_t: &mut [f32], a: &Csr, m: &Panels) {
    assert_eq!(out_t.len(), a.rows() * m.n, "output size");
    product(Output::AddTransposed(out_t), a, m)
}

/// Where a product's sums go.
enum Output<'a> {
    /// Stored into the row-major `[R, n]` product.
    Rows(&'a mut [f32]),
    /// Added into the row-major `[n, R]` transpose of the product.
    AddTransposed(&'a mut [f32]),
}

/// The output of one group of rows; groups write disjoint elements.
#[derive(Clone, Copy)]
struct OutPtr {
    ptr: *mut f32,
    transposed: bool,
}

// SAFETY: each group writes only the output elements of its own rows (`product` hands every row
// to exactly one group), so groups on different threads never touch the same element.
unsafe impl Send for OutPtr {}
// SAFETY: as for `Send`: shared between the groups' threads, it is only written through at
// disjoint elements.
unsafe impl Sync for OutPtr {}

fn product(out: Output, a: &Csr, m: &Panels) {
    assert_eq!(m.k, a.cols, "inner dimensions");
    let rows = a.rows();
    if m.n == 0 || rows == 0 {
        return;
    }
    let out = match out {
        Output::Rows(o) => OutPtr {
            ptr: o.as_mut_ptr(),
            transposed: false,
        },
        Output::AddTransposed(o) => OutPtr {
            ptr: o.as_mut_ptr(),
            transposed: true,
        },
    };
    // A few row groups per thread for balance, and no more rows than keep a group's tile of sums
    // (256 bytes a row) near L1: capping 10,000-row products at 128-row groups took the
    // encoder's product from 42-53 ms to 37-45 ms.
    let group_rows = rows
        .div_ceil(4 * rayon::current_num_threads())
        .clamp(1, MAX_GROUP_ROWS);
    (0..rows.div_ceil(group_rows))
        .into_par_iter()
        .for_each(|g| {
            let group = g * group_rows..((g + 1) * group_rows).min(rows);
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx2_fma() {
                // SAFETY: the CPU supports the features this function is compiled for; the
                // output pointer's size was checked by the caller and groups are disjoint.
                unsafe { group_avx2_fma(out, a, group, m) };
                return;
            }
            // SAFETY: as above.
            unsafe { group_portable(out, a, group, m) };
        });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2_fma(out: OutPtr, a: &Csr, rows: Range<usize>, m: &Panels) {
    // SAFETY: passed on from the caller.
    unsafe { group::<true>(out, a, rows, m) }
}

unsafe fn group_portable(out: OutPtr, a: &Csr, rows: Range<usize>, m: &Panels) {
    // SAFETY: passed on from the caller.
    unsafe { group::<false>(out, a, rows, m) }
}

/// The products of rows `rows` of `a`, written through `out` (`[R, n]`, or added into `[n, R]`).
///
/// Panel by panel, the sums of the group's rows are built in a tile over blocks of [`BLOCK`]
/// panel rows: each block stays in L1 while every row of the group picks its rows from it, and
/// each sum still runs over the non-zeros in index order.
///
/// # Safety
/// `out` points to `a.rows() · m.n` elements that no one else touches at their indices for these
/// rows.
#[inline(always)]
unsafe fn group<const FMA: bool>(out: OutPtr, a: &Csr, rows: Range<usize>, m: &Panels) {
    let (n, total_rows) = (m.n, a.rows());
    let blocks = m.k.div_ceil(BLOCK).max(1);
    // Row `rows.start + i`'s entries in block `b` are `bounds[i][b]..bounds[i][b + 1]`.
    let bounds: Vec<Vec<usize>> = rows
        .clone()
        .map(|r| {
            let first = a.offsets[r];
            let (indices, _) = a.row(r);
            let mut bounds = Vec::with_capacity(blocks + 1);
            bounds.push(first);
            bounds.extend((1..=blocks).map(|b| {
                let limit = (b * BLOCK).min(m.k) as u32;
                first + indices.partition_point(|&k| k < limit)
            }));
            bounds
        })
        .collect();
    let mut tile = vec![[0f32; PANEL]; rows.len()];
    for (p, panel) in m.data.chunks_exact(m.k * PANEL).enumerate() {
        let c0 = p * PANEL;
        let w = PANEL.min(n - c0);
        tile.iter_mut().for_each(|t| *t = [0.0; PANEL]);
        for b in 0..blocks {
            for (sums, bounds) in tile.iter_mut().zip(&bounds) {
                let entries = bounds[b]..bounds[b + 1];
                let (indices, values) = (&a.indices[entries.clone()], &a.values[entries]);
                accumulate::<FMA>(sums, indices, values, panel);
            }
        }
        if out.transposed {
            for t in 0..w {
                // SAFETY: in bounds (`c0 + t < n`, the group's rows `< R`), and this group's own
                // elements.
                let out_row = unsafe { out.ptr.add((c0 + t) * total_rows + rows.start) };
                for (i, sums) in tile.iter().enumerate() {
                    // SAFETY: as above.
                    unsafe { *out_row.add(i) += sums[t] };
                }
            }
        } else {
            for (sums, r) in tile.iter().zip(rows.clone()) {
                // SAFETY: as above, `c0 + w <= n`.
                unsafe { std::ptr::copy_nonoverlapping(sums.as_ptr(), out.ptr.add(r * n + c0), w) };
            }
        }
    }
}

/// `sums += Σ_k v_k · panel[i_k]` over some of a row's non-zeros, the 64 sums held in registers.
#[inline(always)]
fn accumulate<const FMA: bool>(
    sums: &mut [f32; PANEL],
    indices: &[u32],
    values: &[f32],
    panel: &[f32],
) {
    let mut acc = *sums;
    for (&k, &v) in indices.iter().zip(values) {
        debug_assert!((k as usize + 1) * PANEL <= panel.len());
        // SAFETY: a `Csr`'s indices are below its `cols` (its constructors keep them so), and
        // `sparse_times_dense` asserts `cols` equals the panel's row count `k`.
        let row: &[f32; PANEL] =
            unsafe { &*(panel.as_ptr().add(k as usize * PANEL) as *const [f32; PANEL]) };
        for t in 0..PANEL {
            acc[t] = if FMA {
                v.mul_add(row[t], acc[t])
            } else {
                acc[t] + v * row[t]
            };
        }
    }
    *sums = acc;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The transpose of the row-major `[rows, cols]` matrix `src`, row-major `[cols, rows]`.
    pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        assert_eq!(src.len(), rows * cols, "matrix size");
        let mut dst = vec![0f32; rows * cols];
        if rows == 0 || cols == 0 {
            return dst;
        }
        // Bands of 16 output rows: each reads 16 adjacent source columns, a few cache lines per row.
        const BAND: usize = 16;
        dst.par_chunks_mut(BAND * rows)
            .enumerate()
            .for_each(|(band, out)| {
                let c0 = band * BAND;
                let width = out.len() / rows;
                for r in 0..rows {
                    let src_row = &src[r * cols + c0..][..width];
                    for (t, &v) in src_row.iter().enumerate() {
                        out[t * rows + r] = v;
                    }
                }
            });
        dst
    }

    fn random_sparse(rows: usize, cols: usize, density: f64, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..rows * cols)
            .map(|_| {
                if rng.random_bool(density) {
                    rng.random_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Checks `got = a · m` against the product in `f64`, to within the rounding any `f32`
    /// summation order may make (a small multiple of the sum of the terms' magnitudes).
    fn assert_product(
        got: &[f32],
        a: &[f32],
        m: &[f32],
        (rows, k, n): (usize, usize, usize),
        what: &str,
    ) {
        for r in 0..rows {
            for c in 0..n {
                let terms = (0..k).map(|i| a[r * k + i] as f64 * m[i * n + c] as f64);
                let (want, magnitude) = terms.fold((0.0, 0.0), |(s, g), t| (s + t, g + t.abs()));
                let got = got[r * n + c] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * magnitude + 1e-7,
                    "{what} [{r},{c}]: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn product_matches_a_dense_f64_product_for_every_panel_width_and_density() {
        // n = 139 covers full 64-column panels and a padded one; densities from empty to full.
        for (rows, k, n) in [(37, 23, 139), (5, 784, 72), (1, 1, 1), (64, 30, 8)] {
            for density in [0.0, 0.05, 0.2, 0.7, 1.0] {
                let a = random_sparse(rows, k, density, 1);
                let m = random_sparse(k, n, 1.0, 2);
                let csr = Csr::from_dense(&a, rows, k);
                let nnz = a.iter().filter(|v| **v != 0.0).count();
                assert_eq!(csr.indices.len(), nnz);
                let panels = Panels::from_row_major(&m, k, n);
                let mut out = vec![f32::NAN; rows * n];
                sparse_times_dense(&mut out, &csr, &panels);
                assert_product(&out, &a, &m, (rows, k, n), &format!("density {density}"));
                assert_transposed_add(
                    |out_t| add_sparse_times_dense_transposed(out_t, &csr, &panels),
                    &out,
                    (rows, n),
                );
            }
        }
    }

    /// Checks that `add` adds the transpose of the `[rows, n]` product `product` into what it is
    /// given, element by element.
    fn assert_transposed_add(
        add: impl FnOnce(&mut [f32]),
        product: &[f32],
        (rows, n): (usize, usize),
    ) {
        let start: Vec<f32> = (0..rows * n).map(|i| i as f32 * 0.25 - 3.0).collect();
        let mut out_t = start.clone();
        add(&mut out_t);
        for r in 0..rows {
            for c in 0..n {
                let want = start[c * rows + r] + product[r * n + c];
                assert_eq!(out_t[c * rows + r], want, "transposed [{c},{r}]");
            }
        }
    }

    #[test]
    fn panels_built_in_a_used_buffer_equal_fresh_ones() {
        // Buffers left by larger and smaller panels, filled with NaN: the reused panels must hold
        // what fresh ones do, bit for bit, the zeroed padding columns included.
        let mut buffer = vec![f32::NAN; 300 * 3 * PANEL];
        let bits = |p: &Panels| p.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (k, n) in [(23, 139), (40, 72), (7, 200)] {
            let m = random_sparse(k, n, 1.0, 11);
            let reused = Panels::from_row_major_in(buffer, &m, k, n);
            assert_eq!(bits(&reused), bits(&Panels::from_row_major(&m, k, n)));
            buffer = reused.into_buffer();
            buffer.fill(f32::NAN);
            let reused = Panels::from_transpose_in(buffer, &m, k, n);
            assert_eq!(bits(&reused), bits(&Panels::from_transpose(&m, k, n)));
            buffer = reused.into_buffer();
        }
    }

    #[test]
    fn only_matrices_sparse_enough_to_pay_get_a_sparse_form() {
        let (rows, cols) = (30, 50);
        for (density, sparse) in [(0.0, true), (0.2, true), (0.5, false), (1.0, false)] {
            let a = random_sparse(rows, cols, density, 8);
            let csr = Csr::from_dense_if_sparse(&a, rows, cols);
            assert_eq!(csr.is_some(), sparse, "density {density}");
        }
    }

    #[test]
    fn portable_kernel_matches_the_dense_product_too() {
        // The AVX2/FMA kernel is picked at run time where the CPU has it; check the other one here.
        let (rows, k, n) = (11, 50, 139);
        let a = random_sparse(rows, k, 0.2, 6);
        let m = random_sparse(k, n, 1.0, 7);
        let mut out = vec![f32::NAN; rows * n];
        let (csr, panels) = (
            Csr::from_dense(&a, rows, k),
            Panels::from_row_major(&m, k, n),
        );
        let portable = |out: &mut [f32], transposed| {
            let out = OutPtr {
                ptr: out.as_mut_ptr(),
                transposed,
            };
            // SAFETY: `out` holds `rows · n` elements and this is the only group.
            unsafe { group_portable(out, &csr, 0..rows, &panels) }
        };
        portable(&mut out, false);
        assert_product(&out, &a, &m, (rows, k, n), "portable kernel");
        assert_transposed_add(|out_t| portable(out_t, true), &out, (rows, n));
    }

    #[test]
    fn csr_transpose_holds_the_non_zeros_of_the_transposed_matrix() {
        let (rows, cols) = (19, 41);
        let a = random_sparse(rows, cols, 0.3, 3);
        let at = transpose(&a, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(at[c * rows + r], a[r * cols + c]);
            }
        }
        let packed = Panels::from_transpose(&a, rows, cols);
        let repacked = Panels::from_row_major(&at, cols, rows);
        assert_eq!(packed.data, repacked.data);
        let from_transpose = Csr::from_dense(&at, cols, rows);
        let transposed = Csr::from_dense(&a, rows, cols).transpose();
        assert_eq!(transposed.offsets, from_transpose.offsets);
        assert_eq!(transposed.indices, from_transpose.indices);
        assert_eq!(transposed.values, from_transpose.values);
        assert_eq!(transposed.cols, rows);
    }

    #[test]
    fn product_does_not_depend_on_the_thread_count() {
        let (rows, k, n) = (50, 200, 130);
        let a = random_sparse(rows, k, 0.2, 4);
        let m = random_sparse(k, n, 1.0, 5);
        let csr = Csr::from_dense(&a, rows, k);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let panels = Panels::from_row_major(&m, k, n);
            let mut out = vec![0f32; rows * n];
            let mut out_t = vec![1f32; rows * n];
            pool.install(|| {
                sparse_times_dense(&mut out, &csr, &panels);
                add_sparse_times_dense_transposed(&mut out_t, &csr, &panels);
            });
            (out, out_t)
        };
        assert_eq!(run(1), run(3));
    }
}
