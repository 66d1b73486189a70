//! A small, serialisable permuted congruential generator (PCG-XSL-RR 128/64, MCG variant,
//! the same recurrence as `rand_pcg::Pcg64Mcg`). Kept in-crate so its state can be written
//! into the model format and streaming can resume bit-for-bit after a reload.

const MUL: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// SplitMix64 step, used to expand a seed into generator states.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pcg {
    pub(crate) state: u128,
}

impl Pcg {
    /// One independent generator per (seed, stream) pair, e.g. stream = tree index.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let hi = splitmix64(&mut sm);
        let lo = splitmix64(&mut sm);
        Pcg {
            state: (((hi as u128) << 64) | lo as u128) | 1,
        }
    }

    pub(crate) fn from_state(state: u128) -> Self {
        Pcg { state: state | 1 }
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_mul(MUL);
        let rot = (self.state >> 122) as u32;
        let xsl = ((self.state >> 64) as u64) ^ (self.state as u64);
        xsl.rotate_right(rot)
    }

    /// Uniform in [0, 1).
    #[inline]
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in the open interval (0, 1).
    #[inline]
    pub(crate) fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let mut a = Pcg::new(7, 0);
        let mut b = Pcg::new(7, 1);
        let mut c = Pcg::new(7, 0);
        let va: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_ne!(va, vb);
        assert_eq!(va, vc);
        for _ in 0..1000 {
            let u = a.next_open01();
            assert!(u > 0.0 && u < 1.0);
            let v = a.next_f64();
            assert!((0.0..1.0).contains(&v));
        }
    }
}
