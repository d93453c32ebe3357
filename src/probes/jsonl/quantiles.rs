//! Percentiles in bounded memory: exact (nearest rank) up to [`EXACT_MAX`] numbers; beyond
//! that, a log-bucketed histogram whose answers are within [`RELATIVE_ERROR`] of the true
//! value (the `DDSketch` idea: bucket `k` holds values in `(γ^(k-1), γ^k]`, `γ = (1+α)/(1-α)`),
//! so a scan of any size keeps a few thousand buckets, not every number.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Numbers kept exactly before switching to buckets (8 MiB).
pub const EXACT_MAX: usize = 1 << 20;
/// The sketch's relative error.
pub const RELATIVE_ERROR: f64 = 0.005;

/// A collection of numbers for p50/p90/p95/p99.
#[derive(Debug, Default)]
pub struct Numbers {
    exact: Vec<f64>,
    sketch: Option<Sketch>,
}

#[derive(Debug, Default)]
struct Sketch {
    /// Bucket index → count, for positive and (by magnitude) negative values.
    pos: BTreeMap<i32, u64>,
    neg: BTreeMap<i32, u64>,
    zero: u64,
    /// NaN and infinities are not numbers a percentile can hold.
    count: u64,
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

impl Sketch {
    fn add(&mut self, x: f64) {
        self.count += 1;
        if x == 0.0 {
            self.zero += 1;
            return;
        }
        #[allow(clippy::cast_possible_truncation)]
        let k = (x.abs().ln() / gamma().ln()).ceil() as i32;
        let side = if x > 0.0 {
            &mut self.pos
        } else {
            &mut self.neg
        };
        *side.entry(k).or_default() += 1;
    }

    /// The value at 1-based `rank` in ascending order.
    fn at(&self, rank: u64) -> f64 {
        let g = gamma();
        let value = |k: i32| 2.0 * g.powi(k) / (g + 1.0);
        let mut seen = 0;
        // Negative values: largest magnitude first.
        for (k, n) in self.neg.iter().rev() {
            seen += n;
            if seen >= rank {
                return -value(*k);
            }
        }
        seen += self.zero;
        if seen >= rank {
            return 0.0;
        }
        for (k, n) in &self.pos {
            seen += n;
            if seen >= rank {
                return value(*k);
            }
        }
        self.pos.keys().next_back().map_or(0.0, |k| value(*k))
    }
}

impl Numbers {
    /// Add one number (NaN and infinities are ignored).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if let Some(s) = &mut self.sketch {
            s.add(x);
            return;
        }
        self.exact.push(x);
        if self.exact.len() > EXACT_MAX {
            let mut s = Sketch::default();
            for x in self.exact.drain(..) {
                s.add(x);
            }
            self.exact = Vec::new();
            self.sketch = Some(s);
        }
    }

    /// Add all of `other`'s numbers.
    pub fn merge(&mut self, other: Numbers) {
        for x in other.exact {
            self.push(x);
        }
        if let Some(o) = other.sketch {
            let s = self.sketch.get_or_insert_with(|| {
                let mut s = Sketch::default();
                for x in self.exact.drain(..) {
                    s.add(x);
                }
                s
            });
            self.exact = Vec::new();
            for (k, n) in o.pos {
                *s.pos.entry(k).or_default() += n;
            }
            for (k, n) in o.neg {
                *s.neg.entry(k).or_default() += n;
            }
            s.zero += o.zero;
            s.count += o.count;
        }
    }

    /// `{count, p50, p90, p95, p99}` by nearest rank (exact), or within the sketch's
    /// relative error (`approximate: true`, `relative_error`).
    pub fn summary(mut self) -> Value {
        let pcts = [50u64, 90, 95, 99];
        if let Some(s) = self.sketch {
            let at = |p: u64| json!(s.at((p * s.count).div_ceil(100).max(1)));
            return json!({
                "count": s.count,
                "p50": at(pcts[0]), "p90": at(pcts[1]), "p95": at(pcts[2]), "p99": at(pcts[3]),
                "approximate": true,
                "relative_error": RELATIVE_ERROR,
            });
        }
        let xs = &mut self.exact;
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let at = |p: u64| -> Value {
            if n == 0 {
                return Value::Null;
            }
            let rank = usize::try_from((p * n as u64).div_ceil(100)).unwrap_or(n);
            json!(xs[rank.clamp(1, n) - 1])
        };
        json!({
            "count": n,
            "p50": at(pcts[0]), "p90": at(pcts[1]), "p95": at(pcts[2]), "p99": at(pcts[3]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_the_bound_and_close_above_it() {
        let mut small = Numbers::default();
        for i in 1..=100 {
            small.push(f64::from(i));
        }
        let exact = small.summary();
        assert_eq!(
            (exact["p50"].as_f64(), exact["p99"].as_f64()),
            (Some(50.0), Some(99.0))
        );
        assert!(exact.get("approximate").is_none());

        // Two halves merged, past the bound: within the relative error of the exact answer.
        let (mut even, mut odd) = (Numbers::default(), Numbers::default());
        let n = u32::try_from(EXACT_MAX).unwrap() + 1000;
        for i in 1..=n {
            let x = f64::from(i) * 0.01 - 100.0;
            if i % 2 == 0 {
                even.push(x);
            } else {
                odd.push(x);
            }
        }
        even.merge(odd);
        let s = even.summary();
        assert_eq!(s["approximate"], json!(true));
        assert_eq!(s["count"].as_u64(), Some(u64::from(n)));
        for (p, key) in [(50u32, "p50"), (90, "p90"), (99, "p99")] {
            let rank = (u64::from(p) * u64::from(n)).div_ceil(100);
            #[allow(clippy::cast_precision_loss)]
            let exact = rank as f64 * 0.01 - 100.0;
            let got = s[key].as_f64().unwrap();
            assert!(
                (got - exact).abs() <= exact.abs() * RELATIVE_ERROR * 1.01 + 1e-9,
                "{key}: {got} vs {exact}"
            );
        }
    }
}
