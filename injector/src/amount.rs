//! Amounts of IOTX with a unit (`--fund-amount 10`, `--value 0.5iotx`, `--gas-price 1qev`), in rau.
//!
//! IoTeX's units are Ethereum's under other names (rau = wei, qev = 10¹² = twei, jing = 10¹⁵ = pwei,
//! IOTX = 10¹⁸ = ether), so the arithmetic is alloy's [`ParseUnits::parse_units`] (what `parse_units` calls). This module only maps the IoTeX names
//! and checks the number's form first, because it is looser than an operator's flag should be:
//! it truncates decimals the unit cannot hold (`1.5rau` would silently become 1) and accepts a sign.

use alloy_primitives::U256;
use alloy_primitives::utils::{ParseUnits, Unit};

/// An amount that could not be read; the message says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The unit is not one of rau/wei, gwei, qev, jing, iotx/eth/ether.
    #[error("unknown unit `{unit}` in `{input}`; use rau, gwei, qev, jing or iotx")]
    Unit {
        /// The unit as written (lowercased).
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The number is not digits with at most one decimal point.
    #[error("`{0}` is not an amount; write e.g. `10`, `0.5iotx`, `1000rau`")]
    Number(String),
    /// More decimals than the unit has (`1.5rau`).
    #[error("`{0}` has more decimals than the unit allows")]
    Decimals(String),
    /// Above 2²⁵⁶ rau.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// The power of ten a unit name stands for (IoTeX and Ethereum names).
fn unit(name: &str) -> Option<Unit> {
    match name {
        "rau" | "wei" => Some(Unit::WEI),
        "gwei" => Some(Unit::GWEI),
        "qev" => Some(Unit::TWEI),
        "jing" => Some(Unit::PWEI),
        "iotx" | "eth" | "ether" => Some(Unit::ETHER),
        _ => None,
    }
}

/// Parses an amount with an optional unit (`rau`/`wei`, `gwei`, `qev`, `jing`, `iotx`/`eth`); decimals allowed.
/// `default_unit` applies when none is written (`"iotx"` for funding, `"rau"` for values and gas prices).
pub fn parse_amount(s: &str, default_unit: &str) -> Result<U256, AmountError> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, name) = (t[..split].trim(), t[split..].trim());
    let name = if name.is_empty() { default_unit } else { name };
    let unit = unit(name).ok_or_else(|| AmountError::Unit { unit: name.to_owned(), input: s.to_owned() })?;
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits_ok = |d: &str| d.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return Err(AmountError::Number(s.to_owned()));
    }
    if frac.len() > usize::from(unit.get()) {
        return Err(AmountError::Decimals(s.to_owned()));
    }
    match ParseUnits::parse_units(num, unit) {
        Ok(ParseUnits::U256(v)) => Ok(v),
        // Unreachable after the digit check (no sign), but a signed result is not an amount either.
        Ok(ParseUnits::I256(_)) => Err(AmountError::Number(s.to_owned())),
        Err(_) => Err(AmountError::TooLarge(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_with_units() {
        assert_eq!(parse_amount("10", "iotx").unwrap(), U256::from(10u64) * U256::from(10u64).pow(U256::from(18)));
        assert_eq!(parse_amount("0.5iotx", "rau").unwrap(), U256::from(500_000_000_000_000_000u64));
        assert_eq!(parse_amount("1qev", "rau").unwrap(), U256::from(1_000_000_000_000u64));
        assert_eq!(parse_amount("2 gwei", "rau").unwrap(), U256::from(2_000_000_000u64));
        for bad in ["", "x", "1.5rau", "1parsec", "-1", "1.2.3"] {
            assert!(parse_amount(bad, "rau").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_forms_the_hand_written_parser_took_still_read_the_same() {
        let rau = |s| parse_amount(s, "rau").unwrap();
        assert_eq!(rau("0"), U256::ZERO);
        assert_eq!(rau("000"), U256::ZERO);
        assert_eq!(rau(".5 iotx"), U256::from(500_000_000_000_000_000u64));
        assert_eq!(rau("5."), U256::from(5u8));
        assert_eq!(rau("  7 RAU "), U256::from(7u8));
        assert_eq!(rau("1jing"), U256::from(1_000_000_000_000_000u64));
        assert_eq!(rau("1.000000000000000001eth"), U256::from(1_000_000_000_000_000_001u128));
        assert_eq!(parse_amount("1", "gwei").unwrap(), U256::from(1_000_000_000u64));
        assert_eq!(rau(&"9".repeat(77)), U256::from_str_radix(&"9".repeat(77), 10).unwrap());
    }

    #[test]
    fn refusals_say_what_to_write() {
        let err = |s| parse_amount(s, "rau").unwrap_err().to_string();
        assert!(err("1parsec").contains("unknown unit `parsec`"), "{}", err("1parsec"));
        assert!(err("1.5rau").contains("more decimals"));
        assert!(err("1.2.3").contains("write e.g."));
        assert!(err("x").contains("unknown unit `x`"));
        assert!(err("1_000").contains("write e.g."));
        assert!(err("+1").contains("write e.g."));
        assert!(err(&"9".repeat(80)).contains("too large"));
    }
}
