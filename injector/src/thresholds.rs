//! `--fail-if "inclusion_p99_ms>5000,error_rate>0.01"`: conditions that make the run exit 3 (as k6 does).
//!
//! A condition names one of [`NAMES`] (flat numbers derived from the report), an operator and a number.
//! Names are checked when the flag is read, so a typo fails before any action is sent.

/// The names a condition may use.
pub const NAMES: &[&str] = &[
    "scheduled",
    "sent",
    "accepted",
    "late",
    "included",
    "reverted",
    "pending_at_end",
    "dropped",
    "rejected",
    "offered_rate",
    "achieved_rate",
    "rate_error",
    "error_rate",
    "late_rate",
    "submit_p50_ms",
    "submit_p90_ms",
    "submit_p99_ms",
    "submit_p999_ms",
    "submit_max_ms",
    "inclusion_p50_ms",
    "inclusion_p90_ms",
    "inclusion_p99_ms",
    "inclusion_p999_ms",
    "inclusion_max_ms",
    "unbalanced",
    "fee_p50_gwei",
    "fee_p99_gwei",
    "fee_max_gwei",
    "fee_mean_gwei",
    "fee_total_coins",
    "fee_unmeasured",
];

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Op {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Threshold {
    /// The text as written.
    pub expr: String,
    /// The name compared.
    pub name: String,
    /// The operator.
    pub op: Op,
    /// The limit.
    pub limit: f64,
}

/// A condition that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--fail-if: `{expr}`: {reason}; write e.g. \"inclusion_p99_ms>5000,error_rate>0.01\"")]
pub struct ThresholdError {
    expr: String,
    reason: String,
}

/// Parses a comma-separated list of conditions.
pub fn parse(s: &str) -> Result<Vec<Threshold>, ThresholdError> {
    let mut out = Vec::new();
    for expr in s.split(',').map(str::trim) {
        let err = |reason: &str| ThresholdError { expr: expr.to_owned(), reason: reason.to_owned() };
        if expr.is_empty() {
            return Err(err("empty condition"));
        }
        let (pos, op, len) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
            .iter()
            .find_map(|(t, op)| expr.find(t).map(|p| (p, *op, t.len())))
            .ok_or_else(|| err("no operator (>, >=, <, <=, ==)"))?;
        let name = expr[..pos].trim();
        let limit: f64 = expr[pos + len..].trim().parse().map_err(|_| err("the limit is not a number"))?;
        if !limit.is_finite() {
            return Err(err("the limit is not finite"));
        }
        if !NAMES.contains(&name) {
            return Err(err(&format!("unknown name `{name}`; known: {}", NAMES.join(", "))));
        }
        out.push(Threshold { expr: expr.to_owned(), name: name.to_owned(), op, limit });
    }
    Ok(out)
}

impl Threshold {
    /// True when the value breaches this condition.
    pub fn breached(&self, value: f64) -> bool {
        match self.op {
            Op::Gt => value > self.limit,
            Op::Ge => value >= self.limit,
            Op::Lt => value < self.limit,
            Op::Le => value <= self.limit,
            Op::Eq => (value - self.limit).abs() < f64::EPSILON,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let t = parse("inclusion_p99_ms>5000, error_rate>=0.01,achieved_rate<10").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].op, Op::Ge);
        assert!(t[0].breached(5001.0) && !t[0].breached(5000.0));
        assert!(t[1].breached(0.01));
        assert!(t[2].breached(9.0));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "p99>5", "inclusion_p99_ms", "error_rate>x", "error_rate>inf", "a,,b"] {
            assert!(parse(bad).unwrap_err().to_string().contains("write e.g."), "{bad}");
        }
    }
}
