//! Eigen-decomposition of small real symmetric tridiagonal matrices (the
//! Lanczos projections): implicit QL with Wilkinson-type shifts.

/// Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal
/// matrix with diagonal `diag` (n) and off-diagonal `off` (n - 1).
///
/// Returns `(values, vectors)` with eigenvector `j` in
/// `vectors[j * n .. (j + 1) * n]`.
pub fn eigh_tridiagonal(diag: &[f64], off: &[f64]) -> (Vec<f64>, Vec<f64>) {
    ql(diag, off, true)
}

/// The lowest eigenvalue and its unit eigenvector: eigenvalues by QL without
/// vectors (O(n^2)), the vector by inverse iteration (O(n) per sweep).
pub fn lowest_pair(diag: &[f64], off: &[f64]) -> (f64, Vec<f64>) {
    let (vals, _) = ql(diag, off, false);
    (vals[0], vector_at(diag, off, vals[0]))
}

/// The two lowest eigenvalues with unit eigenvectors (the second `None` for n = 1).
pub fn lowest_two(diag: &[f64], off: &[f64]) -> ((f64, Vec<f64>), Option<(f64, Vec<f64>)>) {
    let (vals, _) = ql(diag, off, false);
    let first = (vals[0], vector_at(diag, off, vals[0]));
    let second = if vals.len() > 1 && vals[1] > vals[0] { Some((vals[1], vector_at(diag, off, vals[1]))) } else { None };
    (first, second)
}

/// Unit eigenvector of the eigenvalue `theta` by inverse iteration.
pub fn vector_at(diag: &[f64], off: &[f64], theta: f64) -> Vec<f64> {
    let n = diag.len();
    if n == 1 {
        return vec![1.0];
    }
    let scale = diag.iter().map(|x| x.abs()).chain(off.iter().map(|x| x.abs())).fold(0.0f64, f64::max).max(1e-300);
    let shift = theta - 1e-10 * scale;
    let mut y = vec![1.0; n];
    for _ in 0..3 {
        // Thomas algorithm for (T - shift) z = y
        let mut c = vec![0.0; n];
        let mut z = vec![0.0; n];
        let mut b0 = diag[0] - shift;
        if b0 == 0.0 {
            b0 = 1e-300;
        }
        c[0] = if n > 1 { off[0] / b0 } else { 0.0 };
        z[0] = y[0] / b0;
        for i in 1..n {
            let mut m = diag[i] - shift - off[i - 1] * c[i - 1];
            if m == 0.0 {
                m = 1e-300;
            }
            c[i] = if i + 1 < n { off[i] / m } else { 0.0 };
            z[i] = (y[i] - off[i - 1] * z[i - 1]) / m;
        }
        for i in (0..n - 1).rev() {
            z[i] -= c[i] * z[i + 1];
        }
        let nz = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        y = z.iter().map(|x| x / nz).collect();
    }
    y
}

/// `sqrt(a^2 + b^2)`: the plain formula (libm's `hypot` is several times slower), and
/// `hypot` where the squares would overflow or underflow.
#[inline]
fn hyp(a: f64, b: f64) -> f64 {
    let s = a * a + b * b;
    if s.is_finite() && s > 1e-290 {
        s.sqrt()
    } else {
        a.hypot(b)
    }
}

fn ql(diag: &[f64], off: &[f64], want_vectors: bool) -> (Vec<f64>, Vec<f64>) {
    let n = diag.len();
    let mut d = diag.to_vec();
    let mut e = vec![0.0; n];
    e[..n.saturating_sub(1)].copy_from_slice(&off[..n.saturating_sub(1)]);
    // z row-major: z[k * n + j] = component k of vector j
    let mut z = vec![0.0; if want_vectors { n * n } else { 0 }];
    if want_vectors {
        for i in 0..n {
            z[i * n + i] = 1.0;
        }
    }
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 100 {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = hyp(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut i = m;
            let mut deflated = false;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = hyp(f, g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for k in 0..if want_vectors { n } else { 0 } {
                    let zf = z[k * n + i + 1];
                    z[k * n + i + 1] = s * z[k * n + i] + c * zf;
                    z[k * n + i] = c * z[k * n + i] - s * zf;
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| d[a].partial_cmp(&d[b]).unwrap_or(std::cmp::Ordering::Equal));
    let values = order.iter().map(|&j| d[j]).collect();
    if !want_vectors {
        return (values, Vec::new());
    }
    let mut vectors = vec![0.0; n * n];
    for (jj, &j) in order.iter().enumerate() {
        for k in 0..n {
            vectors[jj * n + k] = z[k * n + j];
        }
    }
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenpairs_satisfy_t_v_equals_lambda_v() {
        for n in [1usize, 2, 3, 7, 30] {
            let diag: Vec<f64> = (0..n).map(|i| ((i * 13 % 7) as f64) - 3.0).collect();
            let off: Vec<f64> = (0..n.saturating_sub(1)).map(|i| 0.5 + (i % 3) as f64 * 0.25).collect();
            let (vals, vecs) = eigh_tridiagonal(&diag, &off);
            for j in 0..n {
                let v = &vecs[j * n..(j + 1) * n];
                for k in 0..n {
                    let mut tv = diag[k] * v[k];
                    if k > 0 {
                        tv += off[k - 1] * v[k - 1];
                    }
                    if k + 1 < n {
                        tv += off[k] * v[k + 1];
                    }
                    assert!((tv - vals[j] * v[k]).abs() < 1e-12, "n={n} j={j}");
                }
                let norm: f64 = v.iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-12);
            }
            assert!(vals.windows(2).all(|w| w[0] <= w[1]));
            let (t, y) = lowest_pair(&diag, &off);
            assert!((t - vals[0]).abs() < 1e-12);
            let dotp: f64 = y.iter().zip(&vecs[..n]).map(|(a, b)| a * b).sum();
            assert!((dotp.abs() - 1.0).abs() < 1e-9, "n={n}: {dotp}");
        }
    }
}
