//! The one reader of JSON-RPC hex quantities (`"0x1a"`): block numbers, nonces, balances, gas.
//!
//! Five copies of this grew in the tree with rules that differed (one accepted `"0x"`, one a leading `+`,
//! one `0X`), so two parts could disagree about the same reply. The rule here is the Ethereum JSON-RPC
//! spec's, widened only where real nodes send more:
//! - the `0x` prefix is required (lowercase, as the spec writes it; `0X` too, which some clients send);
//! - digits are hex only: no sign, no whitespace, no `_` (`from_str_radix` alone would take a `+`);
//! - leading zeros are accepted (`0x01`): nodes and hand-written requests use them and the value is clear;
//! - `"0x"` with no digits is refused by [`quantity`]: it is not a number, and a gateway that read it as 0
//!   would route `eth_getBlockByNumber("0x")` to block 0. Callers reading *replies* from nodes that send
//!   `"0x"` for zero (older ganache) use [`quantity_or_zero`], which says so at the call.
//! - a value wider than the target type is an error, never truncated.

use std::fmt;

/// Why a string is not a hex quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// No `0x` prefix.
    #[error("`{0}` is not a hex quantity: it must start with 0x")]
    NoPrefix(String),
    /// `0x` and nothing after it.
    #[error("`0x` has no digits")]
    Empty,
    /// A character that is not a hex digit.
    #[error("`{0}` is not a hex quantity: only 0-9, a-f after 0x")]
    NotHex(String),
    /// More bits than the target type holds.
    #[error("`{0}` does not fit in {1} bits")]
    Overflow(String, u32),
}

/// An unsigned integer a quantity can be read into.
pub trait Quantity: Sized + Copy + fmt::Debug {
    /// Bits in the type, for the overflow message.
    const BITS: u32;
    /// `from_str_radix(digits, 16)`, after the digits were checked.
    fn from_hex_digits(digits: &str) -> Option<Self>;
    /// Zero, for [`quantity_or_zero`].
    const ZERO: Self;
}

macro_rules! quantity_for {
    ($($t:ty),*) => {$(
        impl Quantity for $t {
            const BITS: u32 = <$t>::BITS;
            const ZERO: Self = 0;
            fn from_hex_digits(digits: &str) -> Option<Self> {
                <$t>::from_str_radix(digits, 16).ok()
            }
        }
    )*};
}
quantity_for!(u8, u16, u32, u64, u128, usize);

/// Reads `0x…` into `T`.
pub fn quantity<T: Quantity>(s: &str) -> Result<T, HexError> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or_else(|| HexError::NoPrefix(clip(s)))?;
    if digits.is_empty() {
        return Err(HexError::Empty);
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HexError::NotHex(clip(s)));
    }
    // The digits are checked above, so `from_str_radix` can only fail by overflow (leading zeros are fine:
    // `0x0000000000000000001` is 1).
    T::from_hex_digits(digits).ok_or_else(|| HexError::Overflow(clip(s), T::BITS))
}

/// Like [`quantity`], but `"0x"` reads as zero: for replies from nodes that write zero that way.
pub fn quantity_or_zero<T: Quantity>(s: &str) -> Result<T, HexError> {
    match quantity(s) {
        Err(HexError::Empty) => Ok(T::ZERO),
        other => other,
    }
}

/// A JSON value that should be a quantity string; `None` for any other JSON or a bad quantity.
pub fn json_quantity<T: Quantity>(v: &serde_json::Value) -> Option<T> {
    quantity(v.as_str()?).ok()
}

/// Formats `n` the way the spec writes quantities: `0x` and no leading zeros (`0x0` for zero).
pub fn to_quantity(n: u128) -> String {
    format!("{n:#x}")
}

/// Error messages quote the input; a hostile multi-megabyte string must not be copied whole.
fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_spec_quantities() {
        assert_eq!(quantity::<u64>("0x0"), Ok(0));
        assert_eq!(quantity::<u64>("0x1a"), Ok(26));
        assert_eq!(quantity::<u64>("0X1A"), Ok(26));
        assert_eq!(quantity::<u64>("0x0001"), Ok(1));
        assert_eq!(quantity::<u64>("0xffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(quantity::<u128>("0x0000000000000000000000000000000000000001"), Ok(1));
        assert_eq!(quantity::<u64>("0x00000000000000000001"), Ok(1), "leading zeros beyond 16 digits");
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        assert_eq!(quantity::<u64>("1a"), Err(HexError::NoPrefix("1a".into())));
        assert_eq!(quantity::<u64>("0x"), Err(HexError::Empty));
        assert_eq!(quantity::<u64>("0x+1"), Err(HexError::NotHex("0x+1".into())));
        assert_eq!(quantity::<u64>("0x 1"), Err(HexError::NotHex("0x 1".into())));
        assert_eq!(quantity::<u64>("0x1_0"), Err(HexError::NotHex("0x1_0".into())));
        assert_eq!(quantity::<u64>("0xg"), Err(HexError::NotHex("0xg".into())));
        assert_eq!(quantity::<u64>(""), Err(HexError::NoPrefix(String::new())));
        assert_eq!(quantity::<u64>("0x10000000000000000"), Err(HexError::Overflow("0x10000000000000000".into(), 64)));
        assert!(matches!(quantity::<u8>("0x100"), Err(HexError::Overflow(_, 8))));
    }

    #[test]
    fn zero_written_as_bare_prefix_only_where_asked() {
        assert_eq!(quantity_or_zero::<u128>("0x"), Ok(0));
        assert_eq!(quantity_or_zero::<u128>("0x5"), Ok(5));
        assert!(quantity_or_zero::<u128>("5").is_err());
    }

    #[test]
    fn json_values() {
        assert_eq!(json_quantity::<u64>(&serde_json::json!("0x10")), Some(16));
        assert_eq!(json_quantity::<u64>(&serde_json::json!(16)), None);
        assert_eq!(json_quantity::<u64>(&serde_json::json!(null)), None);
    }

    #[test]
    fn hostile_input_is_clipped_in_messages() {
        let long = format!("0x{}", "z".repeat(1_000_000));
        let msg = quantity::<u64>(&long).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.len() < 200, "{}", msg.len());
        let wide = format!("0x{}", "é".repeat(100));
        assert!(quantity::<u64>(&wide).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(n: u128) {
            prop_assert_eq!(quantity::<u128>(&to_quantity(n)), Ok(n));
        }

        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = quantity::<u64>(&s);
            let _ = quantity_or_zero::<u32>(&s);
        }
    }
}
