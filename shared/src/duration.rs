//! Human-readable durations: `200ms`, `2s`, `1m`, `1h30m`.
//!
//! Flags, env vars and TOML all go through [`parse`], so an operator writes a duration the same way
//! everywhere, and a bad one is refused with the accepted form in the message.

use std::time::Duration;

/// A duration string that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a duration ({reason}); write it like `200ms`, `2s`, `1m` or `1h30m`")]
pub struct DurationError {
    input: String,
    reason: String,
}

/// Parses `200ms`, `2s`, `1m`, `1h30m`. A bare number is refused: its unit would be a guess.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let trimmed = input.trim();
    let err = |reason: &str| DurationError { input: input.to_owned(), reason: reason.to_owned() };
    if trimmed.is_empty() {
        return Err(err("empty"));
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err("a unit is required"));
    }
    humantime::parse_duration(trimmed).map_err(|e| err(&e.to_string()))
}

/// Formats a duration the way [`parse`] reads it (`1s 500ms` → `1s 500ms`), for messages and `/status`.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde adapter so TOML holds `"2s"` rather than a struct: `#[serde(with = "iotex_shared::duration::serde_str")]`.
pub mod serde_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serializes as a human string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Deserializes from a human string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Duration>` held as a human string.
pub mod serde_opt_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serializes `Some` as a human string and `None` as nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional human string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| super::parse(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse(" 1h30m ").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn refuses_bare_numbers_garbage_and_empty() {
        for bad in ["", "  ", "5", "1.5", "abc", "5 parsecs", "-1s", "1s2", "\u{0}"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("write it like"), "{bad:?} gave {e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [Duration::from_millis(200), Duration::from_secs(90), Duration::from_millis(1500)] {
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }
}
