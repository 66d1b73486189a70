//! The statistics a drift window is judged by (pure): quantile bins and the population
//! stability index, the two-sample Kolmogorov–Smirnov test, and the binomial interval of an
//! alert rate.

use serde::{Deserialize, Serialize};

/// Quantile bins fitted on a reference sample: `(-inf, e0], (e0, e1], …, (e_last, inf)`, with
/// the share of the reference in each. Repeated quantiles (a feature with many equal values)
/// collapse into one edge, so no bin is empty by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bins {
    pub edges: Vec<f64>,
    /// One share per bin (`edges.len() + 1`), summing to 1.
    pub expected: Vec<f64>,
    /// Size of the reference sample (0: unknown).
    #[serde(default)]
    pub n: usize,
}

impl Bins {
    /// Fits `bins` quantile bins on `values` (which it sorts). Non-finite values are ignored.
    pub fn fit(values: &mut Vec<f64>, bins: usize) -> Bins {
        values.retain(|v| v.is_finite());
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return Bins {
                edges: Vec::new(),
                expected: vec![1.0],
                n: 0,
            };
        }
        let mut edges: Vec<f64> = (1..bins)
            .map(|k| values[(k * n / bins).min(n).saturating_sub(1)])
            .collect();
        edges.dedup();
        // The top edge at the maximum would leave the last bin empty.
        edges.retain(|e| *e < values[n - 1]);
        let mut counts = vec![0u64; edges.len() + 1];
        for v in values.iter() {
            counts[bin_of(&edges, *v)] += 1;
        }
        Bins {
            expected: counts.iter().map(|c| *c as f64 / n as f64).collect(),
            edges,
            n,
        }
    }

    pub fn len(&self) -> usize {
        self.expected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }

    /// The bin `v` falls in.
    pub fn index(&self, v: f64) -> usize {
        bin_of(&self.edges, v)
    }
}

fn bin_of(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|e| *e < v)
}

/// Population stability index of observed `counts` against `expected` shares:
/// `Σ (a − e) · ln(a / e)`. The observed shares are smoothed by half a count per bin so an
/// empty bin in a small window does not read as infinite drift.
pub fn psi(expected: &[f64], counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let k = counts.len() as f64;
    let total = n as f64 + 0.5 * k;
    expected
        .iter()
        .zip(counts)
        .map(|(e, c)| {
            let a = (*c as f64 + 0.5) / total;
            let e = e.max(1e-6);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The PSI a window of `n` records shows by chance alone at significance `alpha`, against
/// bins fitted on `m` reference records (`m = 0`: exact shares). For small differences
/// `n_eff · PSI` follows a χ² law with `bins − 1` degrees of freedom, `1/n_eff = 1/n + 1/m`;
/// a PSI below this is noise, however large it looks in a small window.
pub fn psi_noise(bins: usize, n: usize, m: usize, alpha: f64) -> f64 {
    if bins < 2 || n == 0 {
        return 0.0;
    }
    let inv = 1.0 / n as f64 + if m == 0 { 0.0 } else { 1.0 / m as f64 };
    chi2_quantile(bins - 1, 1.0 - alpha) * inv
}

/// The `p` quantile of the χ² law with `k` degrees of freedom (Wilson–Hilferty).
pub fn chi2_quantile(k: usize, p: f64) -> f64 {
    let k = k as f64;
    let h = 2.0 / (9.0 * k);
    (k * (1.0 - h + normal_quantile(p) * h.sqrt()).powi(3)).max(0.0)
}

/// The `p` quantile of the standard normal law (Abramowitz–Stegun 26.2.23, |error| < 4.5e-4).
pub fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let (q, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    let t = (-2.0 * q.ln()).sqrt();
    let z = t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t);
    sign * z
}

/// The two-sample Kolmogorov–Smirnov statistic of `a` and `b` (both sorted ascending) and its
/// asymptotic p-value for samples of `n_a` and `n_b` (which may exceed the lengths when `a` is
/// a quantile summary of a larger sample).
pub fn ks(a: &[f64], b: &[f64], n_a: usize, n_b: usize) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    let (la, lb) = (a.len() as f64, b.len() as f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / la - j as f64 / lb).abs());
    }
    let (n, m) = (n_a.max(1) as f64, n_b.max(1) as f64);
    let en = (n * m / (n + m)).sqrt();
    (d, kolmogorov_q((en + 0.12 + 0.11 / en) * d))
}

/// `Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}`, the Kolmogorov distribution's upper tail.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// `ln C(n, k)` through the log-gamma function.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// Lanczos approximation of `ln Γ(x)` for `x > 0` (about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The binomial probabilities `P(X = 0..=n)` for `X ~ Bin(n, p)`.
fn binomial_pmf(n: u64, p: f64) -> Vec<f64> {
    if p <= 0.0 {
        let mut v = vec![0.0; n as usize + 1];
        v[0] = 1.0;
        return v;
    }
    if p >= 1.0 {
        let mut v = vec![0.0; n as usize + 1];
        v[n as usize] = 1.0;
        return v;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    (0..=n)
        .map(|k| (ln_choose(n, k) + k as f64 * lp + (n - k) as f64 * lq).exp())
        .collect()
}

/// How an observed count of alerts compares with `Bin(n, p)`: the two-sided exact p-value
/// (twice the smaller tail, at most 1) and the central interval of counts holding `1 − alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinomialCheck {
    pub p_value: f64,
    pub low: u64,
    pub high: u64,
}

pub fn binomial_check(k: u64, n: u64, p: f64, alpha: f64) -> BinomialCheck {
    let pmf = binomial_pmf(n, p);
    let below: f64 = pmf[..=k as usize].iter().sum();
    let above: f64 = pmf[k as usize..].iter().sum();
    let p_value = (2.0 * below.min(above)).min(1.0);
    let (mut low, mut acc) = (0u64, 0.0);
    for (i, q) in pmf.iter().enumerate() {
        acc += q;
        if acc > alpha / 2.0 {
            low = i as u64;
            break;
        }
    }
    let (mut high, mut acc) = (n, 0.0);
    for (i, q) in pmf.iter().enumerate().rev() {
        acc += q;
        if acc > alpha / 2.0 {
            high = i as u64;
            break;
        }
    }
    BinomialCheck { p_value, low, high }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_split_a_sample_into_equal_shares_and_merge_ties() {
        let mut v: Vec<f64> = (0..1000).map(f64::from).collect();
        let b = Bins::fit(&mut v, 10);
        assert_eq!(b.len(), 10);
        assert!(b.expected.iter().all(|e| (e - 0.1).abs() < 1e-12), "{b:?}");
        assert_eq!(b.index(-5.0), 0);
        assert_eq!(b.index(99.0), 0);
        assert_eq!(b.index(100.0), 1);
        assert_eq!(b.index(1e9), 9);
        // A feature that is 0 for 95% of the rows: no empty bin.
        let mut v: Vec<f64> = (0..1000)
            .map(|i| if i < 950 { 0.0 } else { i as f64 })
            .collect();
        let b = Bins::fit(&mut v, 10);
        assert_eq!(b.edges, vec![0.0]);
        assert!((b.expected[0] - 0.95).abs() < 1e-12);
        let sum: f64 = b.expected.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psi_is_small_for_the_same_distribution_and_large_for_a_shift() {
        let e = vec![0.1; 10];
        assert!(psi(&e, &[50; 10]) < 1e-9);
        let shifted = [0, 0, 0, 0, 0, 50, 100, 100, 100, 150];
        assert!(psi(&e, &shifted) > 1.0);
        // The textbook example: 10% → 20% in one bin and 20% → 10% in another.
        let e = [0.1, 0.2, 0.7];
        let v = psi(&e, &[20_000, 10_000, 70_000]);
        let want = 0.1 * 2f64.ln() + 0.1 * 2f64.ln();
        assert!((v - want).abs() < 1e-3, "{v} vs {want}");
    }

    #[test]
    fn the_noise_floor_of_psi_shrinks_with_the_window() {
        assert!((normal_quantile(0.975) - 1.96).abs() < 1e-3);
        assert!((normal_quantile(0.001) + 3.090).abs() < 1e-3);
        // χ²(9) at 0.999 is 27.88.
        assert!((chi2_quantile(9, 0.999) - 27.88).abs() < 0.2);
        let small = psi_noise(10, 50, 0, 0.001);
        let large = psi_noise(10, 1000, 0, 0.001);
        assert!(small > 0.5 && large < 0.03, "{small} {large}");
        assert!(psi_noise(10, 1000, 1000, 0.001) > 1.9 * large);
    }

    #[test]
    fn ks_matches_known_values() {
        let a: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let (d, p) = ks(&a, &a, 100, 100);
        assert_eq!(d, 0.0);
        assert_eq!(p, 1.0);
        let b: Vec<f64> = (50..150).map(|i| i as f64).collect();
        let (d, p) = ks(&a, &b, 100, 100);
        assert!((d - 0.5).abs() < 1e-12);
        // scipy.stats.ks_2samp(..., method="asymp") gives 3.9e-11 for these samples; the
        // Stephens-corrected asymptotic form used here agrees in magnitude.
        assert!(p < 1e-9 && p > 1e-13, "{p}");
        // Q_KS(1.36) = 0.0495: the classic 5% critical value.
        assert!((kolmogorov_q(1.36) - 0.049_486).abs() < 1e-5);
    }

    #[test]
    fn binomial_interval_and_p_value() {
        // Bin(1000, 0.01): mean 10; 10 alerts is unremarkable, 30 is not.
        let ok = binomial_check(10, 1000, 0.01, 0.001);
        assert!(ok.p_value > 0.5, "{ok:?}");
        assert!(ok.low <= 10 && ok.high >= 10 && ok.high < 25, "{ok:?}");
        let burst = binomial_check(30, 1000, 0.01, 0.001);
        assert!(burst.p_value < 1e-5, "{burst:?}");
        assert!(binomial_check(0, 1000, 0.01, 0.001).p_value < 0.001);
        let pmf: f64 = binomial_pmf(50, 0.3).iter().sum();
        assert!((pmf - 1.0).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }
}
