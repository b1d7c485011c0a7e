//! Reproducible random streams.
//!
//! Every (seed, problem, read) triple owns its own xoshiro256++ stream, so a
//! result never depends on how work is spread over threads.

use rand::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// One step of SplitMix64, the standard seeder of the xoshiro family.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of read `read` of problem `problem` under `seed`.
fn seed_words(seed: u64, problem: u64, read: u64) -> [u64; 4] {
    let mut s = seed;
    let a = splitmix64(&mut s);
    let mut s2 = a ^ problem.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let b = splitmix64(&mut s2);
    let mut s3 = b ^ read.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
    [(); 4].map(|_| splitmix64(&mut s3))
}

/// The generator of read `read` of problem `problem` under `seed`.
pub fn stream(seed: u64, problem: u64, read: u64) -> Xoshiro256PlusPlus {
    let mut bytes = [0u8; 32];
    for (chunk, w) in bytes.chunks_mut(8).zip(seed_words(seed, problem, read)) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
}

/// [`stream`] as an [`OpenXoshiro`]: the same outputs, with the state in the
/// open for kernels that advance several streams side by side (SIMD lanes).
pub fn open_stream(seed: u64, problem: u64, read: u64) -> OpenXoshiro {
    let mut s = seed_words(seed, problem, read);
    if s == [0; 4] {
        // rand_xoshiro's rule for the all-zero seed: seed_from_u64(0).
        let mut z = 0u64;
        s = [(); 4].map(|_| splitmix64(&mut z));
    }
    OpenXoshiro { s }
}

/// xoshiro256++ (Blackman and Vigna), the algorithm of
/// `rand_xoshiro::Xoshiro256PlusPlus`, with a public state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenXoshiro {
    pub s: [u64; 4],
}

/// One xoshiro256++ step on the four state words; returns the output.
#[inline(always)]
pub fn xoshiro_step(s0: &mut u64, s1: &mut u64, s2: &mut u64, s3: &mut u64) -> u64 {
    let out = s0.wrapping_add(*s3).rotate_left(23).wrapping_add(*s0);
    let t = *s1 << 17;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = s3.rotate_left(45);
    out
}

impl RngCore for OpenXoshiro {
    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.s;
        xoshiro_step(s0, s1, s2, s3)
    }
    #[inline(always)]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // rand_core's fill_bytes_via_next, as rand_xoshiro uses it: whole
        // words, then a tail of up to 4 bytes from next_u32.
        let mut chunks = dest.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        let n = tail.len();
        if n > 4 {
            tail.copy_from_slice(&self.next_u64().to_le_bytes()[..n]);
        } else if n > 0 {
            tail.copy_from_slice(&self.next_u32().to_le_bytes()[..n]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(1, 2, 3), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(1, 2, 3), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(1, 2, 4), |r, _| Some(r.next_u64()))
            .collect();
        let d: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(1, 3, 3), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn open_stream_is_the_same_generator() {
        for (seed, p, r) in [(0u64, 0u64, 0u64), (1, 2, 3), (u64::MAX, 7, 1 << 40)] {
            let mut a = stream(seed, p, r);
            let mut b = open_stream(seed, p, r);
            for _ in 0..1000 {
                assert_eq!(a.next_u64(), b.next_u64());
            }
            assert_eq!(a.next_u32(), b.next_u32());
            for len in 0..20 {
                let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
                a.fill_bytes(&mut x);
                b.fill_bytes(&mut y);
                assert_eq!(x, y, "fill_bytes of {len}");
            }
        }
        // The all-zero seed, as rand_xoshiro treats it.
        let mut a = Xoshiro256PlusPlus::from_seed([0; 32]);
        let mut z = 0u64;
        let mut b = OpenXoshiro { s: [(); 4].map(|_| splitmix64(&mut z)) };
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
