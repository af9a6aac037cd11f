//! IoTeX addresses: the same 20 bytes written as `io1…` (bech32, HRP `io`) or `0x…` (hex).
//!
//! Flags that take an address accept either form; `iotex-injector address` converts between them.

use alloy_primitives::Address;
use bech32::{Bech32, Hrp};

/// An address string that is neither a valid `io1…` nor a valid `0x…` address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an address ({reason}); write it as io1… (41 characters) or 0x… (40 hex digits)")]
pub struct AddressError {
    input: String,
    reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> AddressError {
    AddressError { input: input.to_owned(), reason: reason.into() }
}

/// Reads `io1…` or `0x…` (any case; the hex checksum is not enforced since IoTeX tools print lower case).
pub fn parse(input: &str) -> Result<Address, AddressError> {
    let s = input.trim();
    // Prefixes are compared as bytes: slicing the str at 2 or 3 would panic inside a multi-byte first
    // character (found by the injector_config fuzz target). An ASCII prefix that matches ends on a boundary.
    let starts =
        |prefix: &str| s.len() > prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
    if starts("0x") {
        let hex = &s[2..];
        if hex.len() != 40 {
            return Err(err(input, format!("{} hex digits", hex.len())));
        }
        let mut out = [0u8; 20];
        alloy_primitives::hex::decode_to_slice(hex, &mut out).map_err(|e| err(input, e.to_string()))?;
        return Ok(Address::from(out));
    }
    if starts("io1") {
        let (hrp, data) = bech32::decode(s).map_err(|e| err(input, e.to_string()))?;
        if !hrp.as_str().eq_ignore_ascii_case("io") {
            return Err(err(input, format!("prefix `{hrp}` is not `io`")));
        }
        let bytes: [u8; 20] = data.as_slice().try_into().map_err(|_| err(input, format!("{} bytes", data.len())))?;
        return Ok(Address::from(bytes));
    }
    Err(err(input, "unknown form"))
}

/// Writes the `io1…` form.
pub fn to_io(addr: &Address) -> String {
    // `io` is a valid HRP and 20 bytes are far below bech32's length limit, so encoding cannot fail;
    // the fallback only keeps the function total.
    Hrp::parse("io")
        .ok()
        .and_then(|hrp| bech32::encode::<Bech32>(hrp, addr.as_slice()).ok())
        .unwrap_or_else(|| format!("{addr:#x}"))
}

/// Writes the EIP-55 checksummed `0x…` form.
pub fn to_hex(addr: &Address) -> String {
    addr.to_checksum(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_address_matches_iotex() {
        assert_eq!(to_io(&Address::ZERO), "io1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqd39ym7");
        assert_eq!(parse("io1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqd39ym7").unwrap(), Address::ZERO);
    }

    #[test]
    fn round_trips_both_forms() {
        let a = parse("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
        let io = to_io(&a);
        assert!(io.starts_with("io1"));
        assert_eq!(parse(&io).unwrap(), a);
        assert_eq!(to_hex(&a), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert_eq!(parse(&io.to_uppercase()).unwrap(), a);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "0x12",
            "io1abc",
            "bc1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            "0xzz9Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "hello",
        ] {
            assert!(parse(bad).unwrap_err().to_string().contains("io1"), "{bad}");
        }
        // A multi-byte first character is refused, not sliced through: the injector_config fuzz target found
        // `IOTEX_INJECTOR_CONTRACT` set to bytes that read as U+FFFD panicking here (its input is kept as
        // fuzz/corpus/injector_config/regression-contract-env-multibyte-first-char).
        for bad in ["\u{fffd}\u{fffd}\"htten0dpo[5\\\\d", "é", "0é", "ié1", "0x\u{fffd}", "io\u{fffd}"] {
            assert!(parse(bad).unwrap_err().to_string().contains("io1"), "{bad}");
        }
        // A valid bech32 string with another prefix.
        let other = bech32::encode::<Bech32>(Hrp::parse("bc").unwrap(), &[0u8; 20]).unwrap();
        assert!(parse(&other).is_err());
    }
}
