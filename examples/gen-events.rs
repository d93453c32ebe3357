//! Benchmark data: Aurora-like JSON-lines events, seeded and reproducible.
//!
//! ```text
//! cargo run --release --example gen-events -- OUT [--size 512MiB] [--seed 1]
//! ```
//!
//! Lines of about 350 bytes (`decision`, `order`, `trade`, `heartbeat` events with the fields
//! the seeds read: `ts`, `type`, `symbol`, `decision_ms`, `reason`, `p`, ...); 0.2 % of the
//! lines are truncated mid-object (malformed), 0.001 % are over 1 MiB (an embedded blob).
//! The same seed and size always give the same bytes. Prints what it wrote: lines, malformed,
//! oversized, so a scan can be checked against it.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};

/// splitmix64: tiny, seeded, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        x
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        #[allow(clippy::cast_possible_truncation)]
        let i = self.below(xs.len() as u64) as usize;
        xs[i]
    }
}

const SYMBOLS: &[&str] = &[
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT", "LINKUSDT",
];
const TYPES: &[&str] = &[
    "decision",
    "decision",
    "decision",
    "order",
    "trade",
    "heartbeat",
];
const REASONS: &[&str] = &[
    "max_position",
    "risk_budget",
    "circuit_breaker",
    "low_confidence",
    "stale_quote",
    "governance_block",
];
const SIDES: &[&str] = &["buy", "sell"];

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

fn event(rng: &mut Rng, seq: u64, line: &mut String) {
    line.clear();
    let ms = 1_795_000_000_000 + seq * 7;
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let kind = rng.pick(TYPES);
    let _ = write!(
        line,
        "{{\"ts\":\"2026-11-23T{h:02}:{m:02}:{s:02}.{:03}Z\",\"seq\":{seq},\"type\":\"{kind}\",\
         \"symbol\":\"{}\",\"side\":\"{}\",\"price\":{:.2},\"qty\":{:.4},\"p\":{:.4},\
         \"decision_ms\":{:.2},",
        ms % 1000,
        rng.pick(SYMBOLS),
        rng.pick(SIDES),
        100.0 + rng.unit() * 50_000.0,
        rng.unit() * 3.0,
        rng.unit(),
        // Mostly fast, a long tail.
        1.0 + rng.unit().powi(4) * 120.0,
    );
    if rng.below(10) < 3 {
        let _ = write!(
            line,
            "\"reason\":\"{}\",\"denied\":true,",
            rng.pick(REASONS)
        );
    } else {
        line.push_str("\"reason\":null,\"denied\":false,");
    }
    let _ = write!(
        line,
        "\"features\":{{\"vol\":{:.5},\"spread\":{:.3},\"imbalance\":{:.4},\"momentum\":[{:.3},{:.3},{:.3}]}},\
         \"source\":\"aurora-runner\",\
         \"trace_id\":\"{:016x}{:016x}\"}}",
        rng.unit() / 10.0,
        rng.unit() * 5.0,
        rng.unit() * 2.0 - 1.0,
        rng.unit() - 0.5,
        rng.unit() - 0.5,
        rng.unit() - 0.5,
        rng.next(),
        rng.next(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = None;
    let mut size = 512u64 << 20;
    let mut seed = 1u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--size" => {
                size = args
                    .get(i + 1)
                    .and_then(|s| parse_size(s))
                    .unwrap_or_else(|| die("--size takes a size like 512MiB"));
                i += 1;
            }
            "--seed" => {
                seed = args
                    .get(i + 1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| die("--seed takes a number"));
                i += 1;
            }
            a if out.is_none() && !a.starts_with('-') => out = Some(a.to_owned()),
            a => die(&format!("unexpected argument `{a}`")),
        }
        i += 1;
    }
    let out = out.unwrap_or_else(|| die("usage: gen-events OUT [--size 512MiB] [--seed 1]"));
    let file = std::fs::File::create(&out).unwrap_or_else(|e| die(&format!("{out}: {e}")));
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng(seed);
    let (mut written, mut lines, mut malformed, mut oversized) = (0u64, 0u64, 0u64, 0u64);
    let mut line = String::with_capacity(512);
    let blob = "x".repeat((1 << 20) + 4096);
    let mut seq = 0u64;
    while written < size {
        seq += 1;
        event(&mut rng, seq, &mut line);
        let roll = rng.below(100_000);
        if roll == 0 {
            // 0.001 %: over 1 MiB, otherwise valid JSON.
            line.truncate(line.len() - 1);
            let _ = write!(line, ",\"blob\":\"{blob}\"}}");
            oversized += 1;
        } else if roll <= 200 {
            // 0.2 %: cut mid-object, as a writer killed mid-line leaves it.
            #[allow(clippy::cast_possible_truncation)]
            let cut = 10 + rng.below(line.len() as u64 - 20) as usize;
            line.truncate(cut);
            malformed += 1;
        }
        line.push('\n');
        w.write_all(line.as_bytes())
            .unwrap_or_else(|e| die(&format!("{out}: {e}")));
        written += line.len() as u64;
        lines += 1;
    }
    w.flush().unwrap_or_else(|e| die(&format!("{out}: {e}")));
    println!(
        "{{\"path\":{out:?},\"bytes\":{written},\"lines\":{lines},\"malformed\":{malformed},\"oversized\":{oversized},\"seed\":{seed}}}"
    );
}

fn die(msg: &str) -> ! {
    eprintln!("gen-events: {msg}");
    std::process::exit(2);
}
