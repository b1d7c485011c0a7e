//! Tests of the annealers across their modules.

use rand::RngCore;

use super::lanes::anneal_flip_lanes_fast;
use super::swap::{descend_swap, Subsets};
use super::*;
use crate::core::exact::ground_states;
use crate::core::qubo::qubo_energy;
use crate::core::rng::{open_stream, stream, OpenXoshiro};

fn random_q(n: usize, seed: u64) -> Vec<f64> {
    crate::core::greedy::tests::random_upper(n, seed)
}

#[test]
fn lanes_reproduce_the_scalar_kernel_bit_for_bit() {
    for (n, seed) in [(1usize, 1u64), (5, 2), (17, 3), (64, 4), (100, 5), (4, 7)] {
        let mut q = random_q(n, seed);
        // A penalty-like diagonal: accepted and rejected moves both common.
        for a in 0..n {
            q[a * n + a] -= 3.0;
        }
        if n == 4 {
            // A coupling beyond f32's range (inf in W): a rejecting lane
            // must not add 0 * inf = NaN where the scalar kernel adds nothing.
            q[1] = 1e39;
        }
        let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
        let betas: Vec<f32> = geometric(0.05, 4.0, 30).iter().map(|&b| b as f32).collect();
        let mut xs = vec![0u8; LANES * n];
        let mut rngs: [OpenXoshiro; LANES] = std::array::from_fn(|l| open_stream(seed, 0, l as u64));
        for (l, r) in rngs.iter_mut().enumerate() {
            random_state(r, n, None, &mut xs[l * n..(l + 1) * n]);
        }
        let (mut xs2, mut rngs2) = (xs.clone(), rngs.clone());
        let (mut xs3, mut rngs3) = (xs.clone(), rngs.clone());
        let (mut xs4, mut rngs4) = (xs.clone(), rngs.clone());
        anneal_flip_lanes(&m, &betas, &mut rngs, &mut xs);
        let mut f = vec![0.0f32; n];
        for l in 0..LANES {
            anneal_flip(&m, &betas, &mut rngs2[l], &mut xs2[l * n..(l + 1) * n], &mut f, false);
            anneal_flip_fast(&m, &betas, &mut rngs4[l], &mut xs4[l * n..(l + 1) * n], &mut f, false);
        }
        assert_eq!(xs, xs2, "n={n}");
        assert_eq!(rngs, rngs2, "n={n}");
        assert_eq!(xs, xs4, "n={n}");
        if anneal_flip_lanes_fast(&m, &betas, &mut rngs3, &mut xs3) {
            assert_eq!(xs, xs3, "avx2 n={n}");
            assert_eq!(rngs, rngs3, "avx2 n={n}");
        }
    }
}

#[test]
fn flip_bounds_agree_with_the_exponential() {
    // Every shortcut of metropolis_flip gives the decision u < exp_neg(bd).
    let mut r = open_stream(9, 9, 9);
    for t in 0..2_000_000u32 {
        let bd = (t % 20_000) as f32 * (f32::CUTOFF / 20_000.0) + 1e-6;
        let u = f32::unit(r.next_u64());
        assert_eq!(metropolis_flip(bd, u), u < bd.exp_neg(), "bd={bd} u={u}");
        let bd64 = bd as f64;
        let u64_ = f64::unit(r.next_u64());
        assert_eq!(metropolis_flip(bd64, u64_), u64_ < bd64.exp_neg(), "bd={bd64} u={u64_}");
    }
}

#[test]
fn fields_track_flips_and_energies_are_exact() {
    let n = 12;
    let q = random_q(n, 3);
    let m = DenseModel::<f64>::new(&q, n, 0.5).unwrap();
    let mut rng = stream(1, 0, 0);
    let mut x = vec![0u8; n];
    random_state(&mut rng, n, None, &mut x);
    let mut f = vec![0.0; n];
    let betas = geometric(0.1, 3.0, 20);
    anneal_flip(&m, &betas, &mut rng, &mut x, &mut f, true);
    let mut f2 = vec![0.0; n];
    fields_of(&m, &x, &mut f2);
    for (a, b) in f.iter().zip(&f2) {
        assert!((a - b).abs() < 1e-9);
    }
    assert!((m.energy(&x) - qubo_energy(&q, 0.5, &x)).abs() < 1e-12);
    // Greedy end state is a local minimum.
    for i in 0..n {
        let mut y = x.clone();
        y[i] ^= 1;
        assert!(qubo_energy(&q, 0.5, &y) >= qubo_energy(&q, 0.5, &x) - 1e-9);
    }
}

#[test]
fn flip_and_swap_find_ground_states() {
    for seed in 0..6 {
        let n = 14;
        let q = random_q(n, seed);
        let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
        let gs = ground_states(&q, n, 0.0, None, 1).unwrap();
        let (b0, b1) = default_beta_range_flip(&m);
        let betas: Vec<f32> = geometric(b0, b1, 200).iter().map(|&v| v as f32).collect();
        let mut best = f64::INFINITY;
        for r in 0..20 {
            let mut rng = stream(7, 0, r);
            let mut x = vec![0u8; n];
            random_state(&mut rng, n, None, &mut x);
            let mut f = vec![0.0f32; n];
            anneal_flip(&m, &betas, &mut rng, &mut x, &mut f, false);
            best = best.min(m.energy(&x));
        }
        assert!((best - gs.energy).abs() < 1e-9, "seed {seed}: {best} vs {}", gs.energy);
        let k = 5;
        let gk = ground_states(&q, n, 0.0, Some(k), 1).unwrap();
        let (b0, b1) = default_beta_range_swap(&m, k);
        let betas: Vec<f32> = geometric(b0, b1, 200).iter().map(|&v| v as f32).collect();
        let mut best = f64::INFINITY;
        for r in 0..20 {
            let mut rng = stream(7, 1, r);
            let mut x = vec![0u8; n];
            random_state(&mut rng, n, Some(k), &mut x);
            let mut f = vec![0.0f32; n];
            let ones = anneal_swap(&m, &betas, &mut rng, &mut x, &mut f, false);
            assert_eq!(x.iter().filter(|&&v| v == 1).count(), k);
            assert_eq!(ones.len(), k);
            best = best.min(m.energy(&x));
        }
        assert!((best - gk.energy).abs() < 1e-9, "seed {seed} k: {best} vs {}", gk.energy);
    }
}

#[test]
fn tabu_polish_is_feasible_local_and_never_worse_than_descent() {
    let (n, k) = (16, 5);
    let mut hits = 0;
    for seed in 0..8 {
        let q = random_q(n, 100 + seed);
        let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
        let gk = ground_states(&q, n, 0.0, Some(k), 1).unwrap();
        for r in 0..4 {
            let mut rng = stream(seed, 0, r);
            let mut x0 = vec![0u8; n];
            random_state(&mut rng, n, Some(k), &mut x0);
            let mut f = vec![0.0f32; n];
            // Plain descent from the same start.
            let mut xd = x0.clone();
            fields_of(&m, &xd, &mut f);
            let mut s = Subsets::of(&xd);
            descend_swap(&m, &mut s, &mut xd, &mut f);
            let mut xp = x0.clone();
            let ones = tabu_polish_fast(&m, 50, &mut rng, &mut xp, &mut f);
            assert_eq!(ones.len(), k);
            assert_eq!(xp.iter().filter(|&&v| v == 1).count(), k);
            let e = qubo_energy(&q, 0.0, &xp);
            assert!(e <= qubo_energy(&q, 0.0, &xd) + 1e-9);
            // A 1-swap local minimum, by brute force.
            for i in (0..n).filter(|&i| xp[i] == 1) {
                for j in (0..n).filter(|&j| xp[j] == 0) {
                    let mut y = xp.clone();
                    y[i] = 0;
                    y[j] = 1;
                    assert!(qubo_energy(&q, 0.0, &y) >= e - 1e-6);
                }
            }
            hits += ((e - gk.energy).abs() < 1e-9) as usize;
        }
    }
    // Stall 50 on 16 variables explores far beyond one basin.
    assert!(hits >= 30, "{hits} of 32 reads at the ground state");
}

#[test]
fn csr_matches_dense() {
    let n = 10;
    let q = random_q(n, 9);
    let lin: Vec<f64> = (0..n).map(|i| q[i * n + i]).collect();
    let (mut r, mut c, mut v) = (vec![], vec![], vec![]);
    for a in 0..n {
        for b in a + 1..n {
            r.push(b as i64);
            c.push(a as i64);
            v.push(q[a * n + b]);
        }
    }
    let cm = CsrModel::<f64>::new(&lin, &r, &c, &v, 1.0).unwrap();
    let dm = DenseModel::<f64>::new(&q, n, 1.0).unwrap();
    let betas = geometric(0.2, 5.0, 30);
    let cfg = ReadConfig { seed: 5, k: None, greedy: false, polish: 0, sequential: false };
    let (mut s1, mut e1) = (vec![0u8; 4 * n], vec![0.0; 4]);
    let (mut s2, mut e2) = (vec![0u8; 4 * n], vec![0.0; 4]);
    run_flip_reads(&cm, &betas, &cfg, 0, 0, None, &mut s1, &mut e1);
    run_flip_reads(&dm, &betas, &cfg, 0, 0, None, &mut s2, &mut e2);
    assert_eq!(s1, s2);
    for (a, b) in e1.iter().zip(&e2) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn fast_exp_is_accurate() {
    let mut x = 0.0f32;
    while x <= 17.0 {
        let want = (-(x as f64)).exp();
        let got = x.exp_neg() as f64;
        assert!((got - want).abs() <= 2e-5 * want, "{x}: {got} vs {want}");
        x += 0.001;
    }
}

#[test]
fn schedules() {
    let g = geometric(0.1, 10.0, 3);
    assert!((g[1] - 1.0).abs() < 1e-12 && g[2] == 10.0);
    assert_eq!(linear(1.0, 3.0, 3), vec![1.0, 2.0, 3.0]);
    assert_eq!(geometric(1.0, 2.0, 1), vec![2.0]);
}

#[test]
fn default_ranges_follow_the_couplings_when_every_move_is_free() {
    // No linear terms and nonnegative couplings (beta = 0 in qfsel's problem):
    // all zeros is a local minimum where every flip is free. The range must
    // still scale with the couplings (it was a fixed (0.1, 1)).
    let n = 12;
    let base: Vec<f64> = {
        let mut q = random_q(n, 21);
        for a in 0..n {
            q[a * n + a] = 0.0;
            for b in a + 1..n {
                q[a * n + b] = q[a * n + b].abs();
            }
        }
        q
    };
    let mut seen = Vec::new();
    for s in [1e-3, 1.0, 1e3] {
        let q: Vec<f64> = base.iter().map(|v| v * s).collect();
        let m = DenseModel::<f64>::new(&q, n, 0.0).unwrap();
        let (b0, b1) = default_beta_range_flip(&m);
        let (c0, c1) = default_beta_range_swap(&m, 4);
        seen.push([b0 * s, b1 * s, c0 * s, c1 * s]);
    }
    for r in &seen[1..] {
        for (a, b) in r.iter().zip(&seen[0]) {
            assert!((a / b - 1.0).abs() < 1e-9, "{seen:?}");
        }
    }
    assert!(seen[0][0] < seen[0][1]);
}

#[test]
fn descent_flips_small_variables_beside_huge_ones() {
    // A global tolerance scaled by the 1e15 coefficient (~ 0.2 in f64) hid the
    // -0.1 change of variable 2; per-variable tolerances do not.
    let n = 4;
    let mut q = vec![0.0; n * n];
    q[0] = -1e15;
    q[n + 1] = 0.5;
    q[2 * n + 2] = -0.1;
    q[1] = -0.6; // (0, 1): with 0 on, 1 lowers E by 0.1 as well
    for single in [false, true] {
        let mut x = vec![1u8, 0, 0, 0];
        if single {
            let q32: Vec<f64> = q.iter().map(|&v: &f64| if v.abs() > 1e6 { v.signum() * 1e6 } else { v }).collect();
            let m = DenseModel::<f32>::new(&q32, n, 0.0).unwrap();
            let mut f = vec![0.0f32; n];
            fields_of(&m, &x, &mut f);
            descend_flip(&m, &mut x, &mut f);
        } else {
            let m = DenseModel::<f64>::new(&q, n, 0.0).unwrap();
            let mut f = vec![0.0f64; n];
            fields_of(&m, &x, &mut f);
            descend_flip(&m, &mut x, &mut f);
        }
        assert_eq!(x, vec![1, 1, 1, 0], "single={single}");
    }
}

#[test]
fn swap_descent_swaps_small_variables_beside_huge_ones() {
    // k = 2 with variable 0 (-1e15) always in: swapping 1 out for 2 gains 1, which a
    // tolerance scaled by 1e15 (~2.6) hid.
    let n = 6;
    let mut q = vec![0.0; n * n];
    q[0] = -1e15;
    q[2 * n + 2] = -1.0;
    q[3 * n + 3] = -0.5;
    q[n + 4] = 0.3;
    let m = DenseModel::<f64>::new(&q, n, 0.0).unwrap();
    let mut x = vec![1u8, 1, 0, 0, 0, 0];
    let mut f = vec![0.0; n];
    fields_of(&m, &x, &mut f);
    let mut s = Subsets::of(&x);
    descend_swap(&m, &mut s, &mut x, &mut f);
    assert_eq!(x, vec![1, 0, 1, 0, 0, 0]);
    let mut rng = stream(1, 0, 0);
    let mut y = vec![1u8, 0, 0, 0, 1, 0];
    let ones = tabu_polish(&m, 50, &mut rng, &mut y, &mut f);
    assert_eq!(y, vec![1, 0, 1, 0, 0, 0], "{ones:?}");
}
