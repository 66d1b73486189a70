//! Deterministic generator for the seed model repository's labelled card-transaction data.
//!
//! Usage (from the rcfops project root):
//!
//! ```text
//! cargo run --release --example gen_sample_data -- sample-repo/data/transactions.csv [--rows N] [--seed S]
//! ```
//!
//! Defaults: 24000 rows, seed 7. The same seed and row count always produce the same bytes:
//! the only randomness is a `rand_pcg::Pcg64Mcg` seeded from `--seed`, and every float is
//! written with a fixed number of decimals.
//!
//! Columns: `transaction_id,amount,hour,merchant_category,distance_from_home_km,
//! minutes_since_last_txn,txns_last_24h,amount_to_avg_ratio,card_present,is_fraud`.
//!
//! About 1.2 % of the rows are fraud, drawn from four distinct patterns (card testing,
//! account takeover, impossible travel, ATM cash-out), a share of them deliberately subtle;
//! normal traffic includes legitimate outliers (travellers, big planned purchases, shopping
//! sprees) so the classes overlap.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

const DEFAULT_ROWS: usize = 24_000;
const DEFAULT_SEED: u64 = 7;
/// Share of rows that are fraud.
const FRAUD_RATE: f64 = 0.012;
/// First transaction id.
const FIRST_ID: u64 = 1_000_001;

const HEADER: &str = "transaction_id,amount,hour,merchant_category,distance_from_home_km,\
minutes_since_last_txn,txns_last_24h,amount_to_avg_ratio,card_present,is_fraud";

// Merchant category codes (ISO 18245).
const MCC_TAXI: u32 = 4121;
const MCC_AIRLINE: u32 = 4511;
const MCC_GROCERY: u32 = 5411;
const MCC_FUEL: u32 = 5541;
const MCC_ELECTRONICS: u32 = 5732;
const MCC_RESTAURANT: u32 = 5812;
const MCC_FAST_FOOD: u32 = 5814;
const MCC_DIGITAL_GOODS: u32 = 5816;
const MCC_PHARMACY: u32 = 5912;
const MCC_JEWELLERY: u32 = 5944;
const MCC_RETAIL: u32 = 5999;
const MCC_ATM: u32 = 6011;
const MCC_HOTEL: u32 = 7011;
const MCC_GAMBLING: u32 = 7995;

/// Merchant profile for legitimate traffic.
struct Merchant {
    mcc: u32,
    /// Relative frequency among legitimate transactions.
    weight: f64,
    /// Median amount and log-space spread of the log-normal amount.
    median: f64,
    sigma: f64,
    /// Probability that the card is physically present.
    card_present: f64,
    /// Hour-of-day profile.
    hours: HourProfile,
}

#[derive(Clone, Copy)]
enum HourProfile {
    Day,
    Meals,
    Evening,
    Flat,
}

#[rustfmt::skip]
const MERCHANTS: &[Merchant] = &[
    Merchant { mcc: MCC_GROCERY, weight: 24.0, median: 38.0, sigma: 0.75, card_present: 0.88, hours: HourProfile::Day },
    Merchant { mcc: MCC_RESTAURANT, weight: 14.0, median: 34.0, sigma: 0.60, card_present: 0.80, hours: HourProfile::Meals },
    Merchant { mcc: MCC_FAST_FOOD, weight: 11.0, median: 11.0, sigma: 0.50, card_present: 0.70, hours: HourProfile::Meals },
    Merchant { mcc: MCC_FUEL, weight: 10.0, median: 48.0, sigma: 0.40, card_present: 0.97, hours: HourProfile::Day },
    Merchant { mcc: MCC_RETAIL, weight: 15.0, median: 36.0, sigma: 1.00, card_present: 0.40, hours: HourProfile::Day },
    Merchant { mcc: MCC_PHARMACY, weight: 5.0, median: 19.0, sigma: 0.70, card_present: 0.85, hours: HourProfile::Day },
    Merchant { mcc: MCC_TAXI, weight: 6.0, median: 17.0, sigma: 0.60, card_present: 0.30, hours: HourProfile::Evening },
    Merchant { mcc: MCC_ELECTRONICS, weight: 3.5, median: 120.0, sigma: 1.10, card_present: 0.35, hours: HourProfile::Day },
    Merchant { mcc: MCC_DIGITAL_GOODS, weight: 3.0, median: 9.0, sigma: 0.80, card_present: 0.00, hours: HourProfile::Evening },
    Merchant { mcc: MCC_ATM, weight: 4.5, median: 80.0, sigma: 0.60, card_present: 1.00, hours: HourProfile::Day },
    Merchant { mcc: MCC_JEWELLERY, weight: 0.6, median: 260.0, sigma: 0.90, card_present: 0.85, hours: HourProfile::Day },
    Merchant { mcc: MCC_AIRLINE, weight: 0.8, median: 320.0, sigma: 0.70, card_present: 0.05, hours: HourProfile::Flat },
    Merchant { mcc: MCC_HOTEL, weight: 1.0, median: 140.0, sigma: 0.60, card_present: 0.70, hours: HourProfile::Flat },
    Merchant { mcc: MCC_GAMBLING, weight: 1.0, median: 45.0, sigma: 1.00, card_present: 0.30, hours: HourProfile::Evening },
];

/// Relative activity per hour of day (0..24).
fn hour_weights(profile: HourProfile) -> [f64; 24] {
    match profile {
        HourProfile::Day => [
            0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 2.8, 3.8, 4.5, 5.0, //
            5.6, 5.3, 4.9, 4.9, 5.3, 6.0, 6.2, 5.5, 4.2, 2.8, 1.6, 0.8,
        ],
        HourProfile::Meals => [
            0.5, 0.3, 0.15, 0.1, 0.1, 0.1, 0.4, 1.6, 2.4, 1.8, 1.5, 3.5, //
            6.5, 6.0, 2.8, 1.8, 2.0, 3.2, 5.5, 6.5, 5.2, 3.2, 1.8, 1.0,
        ],
        HourProfile::Evening => [
            1.6, 1.2, 0.9, 0.5, 0.3, 0.3, 0.5, 1.0, 1.6, 1.6, 1.8, 2.0, //
            2.3, 2.3, 2.3, 2.4, 2.7, 3.2, 3.8, 4.3, 4.5, 4.2, 3.4, 2.4,
        ],
        HourProfile::Flat => [
            0.6, 0.4, 0.3, 0.3, 0.3, 0.5, 1.0, 1.6, 2.2, 2.6, 2.8, 2.8, //
            2.8, 2.8, 2.8, 2.8, 2.8, 2.8, 2.6, 2.4, 2.2, 1.8, 1.4, 1.0,
        ],
    }
}

struct Row {
    amount: f64,
    hour: u32,
    mcc: u32,
    distance_km: f64,
    minutes_since_last: f64,
    txns_24h: u32,
    ratio: f64,
    card_present: bool,
    fraud: bool,
}

// ---------------------------------------------------------------- sampling helpers

fn uniform(rng: &mut Pcg64Mcg, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Standard normal via Box-Muller (one value per call keeps the stream simple).
fn normal(rng: &mut Pcg64Mcg) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn log_normal(rng: &mut Pcg64Mcg, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Log-uniform between `lo` and `hi`.
fn log_uniform(rng: &mut Pcg64Mcg, lo: f64, hi: f64) -> f64 {
    (uniform(rng, lo.ln(), hi.ln())).exp()
}

fn exponential(rng: &mut Pcg64Mcg, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn poisson(rng: &mut Pcg64Mcg, lambda: f64) -> u32 {
    // Knuth; lambda is small here.
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

fn chance(rng: &mut Pcg64Mcg, p: f64) -> bool {
    rng.random::<f64>() < p
}

fn weighted_index(rng: &mut Pcg64Mcg, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn sample_hour(rng: &mut Pcg64Mcg, profile: HourProfile) -> u32 {
    weighted_index(rng, &hour_weights(profile)) as u32
}

fn pick<T: Copy>(rng: &mut Pcg64Mcg, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// The cardholder's typical ticket: `amount_to_avg_ratio` divides by it.
fn customer_average(rng: &mut Pcg64Mcg) -> f64 {
    log_normal(rng, 42.0, 0.45)
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

// ---------------------------------------------------------------- legitimate traffic

fn legit(rng: &mut Pcg64Mcg) -> Row {
    let weights: Vec<f64> = MERCHANTS.iter().map(|m| m.weight).collect();
    let m = &MERCHANTS[weighted_index(rng, &weights)];

    let mut amount = log_normal(rng, m.median, m.sigma);
    if m.mcc == MCC_ATM {
        amount = round_to(amount, 20.0).max(20.0);
    }
    let hour = sample_hour(rng, m.hours);

    // Mostly close to home; travel-related merchants and a few trips further out.
    let travelling = m.mcc == MCC_AIRLINE || m.mcc == MCC_HOTEL || chance(rng, 0.04);
    let mut distance = if travelling {
        log_normal(rng, 350.0, 1.1)
    } else {
        log_normal(rng, 4.5, 1.1)
    };
    if m.mcc == MCC_DIGITAL_GOODS {
        // Online only: the merchant's location says little; a wider spread.
        distance = log_normal(rng, 8.0, 1.3);
    }

    // Time since the previous transaction: mostly hours, sometimes a quick follow-up.
    let mut minutes = if chance(rng, 0.18) {
        exponential(rng, 25.0) + 0.5
    } else {
        exponential(rng, 620.0) + 2.0
    };
    if travelling && distance > 500.0 && chance(rng, 0.5) {
        // First purchase of a trip: getting that far takes time (a flight, a drive).
        // Later purchases on the same trip are far from home but close together.
        minutes = minutes.max(distance / 12.0 + exponential(rng, 120.0));
    }

    let mut txns = 1 + poisson(rng, 2.2);
    if minutes < 30.0 {
        txns += poisson(rng, 1.5);
    }

    // Legitimate outliers: a big planned purchase, a shopping spree.
    if chance(rng, 0.015) {
        amount *= log_uniform(rng, 4.0, 15.0);
    }
    if chance(rng, 0.015) {
        txns += 4 + poisson(rng, 4.0);
        minutes = exponential(rng, 12.0) + 0.5;
    }

    let ratio = amount / customer_average(rng);
    let card_present = chance(rng, m.card_present);
    Row {
        amount,
        hour,
        mcc: m.mcc,
        distance_km: distance,
        minutes_since_last: minutes,
        txns_24h: txns,
        ratio,
        card_present,
        fraud: false,
    }
}

// ---------------------------------------------------------------- fraud patterns

/// Card testing: a bot tries tiny online charges on a stolen card, seconds to minutes apart.
fn card_testing(rng: &mut Pcg64Mcg, subtle: bool) -> Row {
    let mcc = pick(
        rng,
        &[
            MCC_DIGITAL_GOODS,
            MCC_RETAIL,
            MCC_DIGITAL_GOODS,
            MCC_TAXI,
            MCC_ELECTRONICS,
        ],
    );
    let amount = if subtle {
        log_uniform(rng, 1.0, 20.0)
    } else {
        log_uniform(rng, 0.5, 4.0)
    };
    let minutes = if subtle {
        log_uniform(rng, 2.0, 60.0)
    } else {
        log_uniform(rng, 0.05, 3.0)
    };
    let txns = if subtle {
        3 + poisson(rng, 3.0)
    } else {
        8 + poisson(rng, 12.0)
    };
    let hour = if chance(rng, 0.5) {
        rng.random_range(0..24)
    } else {
        sample_hour(rng, HourProfile::Evening)
    };
    Row {
        amount,
        hour,
        mcc,
        distance_km: log_normal(rng, 40.0, 1.8),
        minutes_since_last: minutes,
        txns_24h: txns,
        ratio: amount / customer_average(rng),
        card_present: false,
        fraud: true,
    }
}

/// Account takeover: large electronics/jewellery purchases far from home, mostly at night.
fn account_takeover(rng: &mut Pcg64Mcg, subtle: bool) -> Row {
    let mcc = pick(
        rng,
        &[MCC_ELECTRONICS, MCC_ELECTRONICS, MCC_JEWELLERY, MCC_RETAIL],
    );
    let amount = if subtle {
        log_normal(rng, 450.0, 0.5)
    } else {
        log_normal(rng, 1400.0, 0.6)
    };
    let hour = if chance(rng, 0.7) {
        rng.random_range(0..6)
    } else {
        sample_hour(rng, HourProfile::Evening)
    };
    let distance = if subtle {
        log_normal(rng, 60.0, 1.0)
    } else {
        log_normal(rng, 700.0, 0.9)
    };
    Row {
        amount,
        hour,
        mcc,
        distance_km: distance,
        minutes_since_last: exponential(rng, 180.0) + 1.0,
        txns_24h: 1 + poisson(rng, if subtle { 2.5 } else { 4.0 }),
        ratio: amount / customer_average(rng),
        card_present: chance(rng, 0.25),
        fraud: true,
    }
}

/// Impossible travel: a cloned card used thousands of km away minutes after a local purchase.
fn impossible_travel(rng: &mut Pcg64Mcg, subtle: bool) -> Row {
    let mcc = pick(
        rng,
        &[
            MCC_RETAIL,
            MCC_GROCERY,
            MCC_RESTAURANT,
            MCC_FUEL,
            MCC_ELECTRONICS,
            MCC_HOTEL,
        ],
    );
    let amount = log_normal(rng, 90.0, 0.8);
    let distance = if subtle {
        log_normal(rng, 400.0, 0.6)
    } else {
        log_normal(rng, 2800.0, 0.8)
    };
    let minutes = if subtle {
        log_uniform(rng, 20.0, 240.0)
    } else {
        log_uniform(rng, 2.0, 90.0)
    };
    Row {
        amount,
        hour: sample_hour(rng, HourProfile::Flat),
        mcc,
        distance_km: distance,
        minutes_since_last: minutes,
        txns_24h: 2 + poisson(rng, 3.0),
        ratio: amount / customer_average(rng),
        card_present: chance(rng, 0.8),
        fraud: true,
    }
}

/// ATM cash-out: repeated large round withdrawals at odd hours.
fn atm_cash_out(rng: &mut Pcg64Mcg, subtle: bool) -> Row {
    let amount = if subtle {
        round_to(log_normal(rng, 200.0, 0.4), 20.0)
    } else {
        round_to(uniform(rng, 300.0, 1000.0), 20.0)
    };
    let hour = if subtle {
        sample_hour(rng, HourProfile::Evening)
    } else {
        pick(rng, &[0, 1, 2, 2, 3, 3, 4, 4, 5])
    };
    Row {
        amount,
        hour,
        mcc: MCC_ATM,
        distance_km: log_normal(rng, if subtle { 15.0 } else { 90.0 }, 1.0),
        minutes_since_last: log_uniform(rng, 1.5, if subtle { 120.0 } else { 25.0 }),
        txns_24h: if subtle {
            2 + poisson(rng, 2.0)
        } else {
            3 + poisson(rng, 3.0)
        },
        ratio: amount / customer_average(rng),
        card_present: true,
        fraud: true,
    }
}

fn fraud(rng: &mut Pcg64Mcg) -> Row {
    // About a third of the fraud imitates normal traffic closely.
    let subtle = chance(rng, 0.35);
    match weighted_index(rng, &[0.35, 0.25, 0.20, 0.20]) {
        0 => card_testing(rng, subtle),
        1 => account_takeover(rng, subtle),
        2 => impossible_travel(rng, subtle),
        _ => atm_cash_out(rng, subtle),
    }
}

// ---------------------------------------------------------------- output

fn write_row(out: &mut impl Write, id: u64, r: &Row) -> std::io::Result<()> {
    writeln!(
        out,
        "{},{:.2},{},{},{:.2},{:.2},{},{:.3},{},{}",
        id,
        r.amount.max(0.01),
        r.hour,
        r.mcc,
        r.distance_km.max(0.0),
        r.minutes_since_last.max(0.01),
        r.txns_24h,
        r.ratio.max(0.001),
        u8::from(r.card_present),
        u8::from(r.fraud),
    )
}

struct Args {
    out: PathBuf,
    rows: usize,
    seed: u64,
}

const USAGE: &str =
    "usage: gen_sample_data OUT.csv [--rows N] [--seed S]   (defaults: 24000 rows, seed 7)";

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut rows = DEFAULT_ROWS;
    let mut seed = DEFAULT_SEED;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => {
                let v = it.next().ok_or("--rows needs a value")?;
                rows = v.parse().map_err(|_| format!("--rows: not a count: {v}"))?;
                if rows == 0 {
                    return Err("--rows must be at least 1".into());
                }
            }
            "--seed" => {
                let v = it.next().ok_or("--seed needs a value")?;
                seed = v
                    .parse()
                    .map_err(|_| format!("--seed: not an unsigned integer: {v}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if out.replace(PathBuf::from(s)).is_some() {
                    return Err("only one output path expected".into());
                }
            }
        }
    }
    let out = out.ok_or("missing output path")?;
    Ok(Args { out, rows, seed })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match generate(&args) {
        Ok(frauds) => {
            eprintln!(
                "wrote {} rows ({} fraud, {:.2} %) to {} (seed {})",
                args.rows,
                frauds,
                100.0 * frauds as f64 / args.rows as f64,
                args.out.display(),
                args.seed
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &Args) -> std::io::Result<usize> {
    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);

    // Choose exactly which rows are fraud, spread uniformly through the file.
    let n_fraud = ((args.rows as f64 * FRAUD_RATE).round() as usize).clamp(1, args.rows);
    let mut positions: Vec<usize> = (0..args.rows).collect();
    for i in 0..n_fraud {
        let j = rng.random_range(i..args.rows);
        positions.swap(i, j);
    }
    let mut is_fraud = vec![false; args.rows];
    for &p in &positions[..n_fraud] {
        is_fraud[p] = true;
    }

    if let Some(dir) = args.out.parent() {
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir)?;
        }
    }
    let mut out = BufWriter::new(File::create(&args.out)?);
    writeln!(out, "{HEADER}")?;
    for (i, &f) in is_fraud.iter().enumerate() {
        let row = if f { fraud(&mut rng) } else { legit(&mut rng) };
        write_row(&mut out, FIRST_ID + i as u64, &row)?;
    }
    out.flush()?;
    Ok(n_fraud)
}
