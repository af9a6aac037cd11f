//! Where the pool's accounts come from: hex keys (`--key`, `--keys-file`), a BIP-39 mnemonic and a BIP-32
//! path (`--mnemonic`, `--derivation-path`), or fresh random keys topped up by `--fund-from`.
//!
//! A private key never appears in an error message: the messages say what is wrong with its *form*.

use crate::error::ConfigError;
use alloy_primitives::U256;
use alloy_signer_local::{LocalSignerError, MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use std::path::Path;

/// The ethereum BIP-44 prefix; account `i` is `{prefix}/{i}`. IoTeX wallets use `m/44'/304'/0'/0`.
pub const DEFAULT_DERIVATION_PATH: &str = "m/44'/60'/0'/0";

/// Where the pool accounts come from.
#[derive(Debug, Clone)]
pub enum AccountSource {
    /// Derived from a mnemonic.
    Mnemonic,
    /// Given keys.
    Keys,
    /// Fresh random keys (funded by --fund-from).
    Fresh,
}

/// Top-up before the run.
#[derive(Debug, Clone)]
pub struct Funding {
    /// The funded key.
    pub key: PrivateKeySigner,
    /// Rau per account.
    pub amount: U256,
}

/// Parses a hex private key (with or without 0x), never echoing it in the error.
pub fn parse_key(flag: &'static str, s: &str) -> Result<PrivateKeySigner, ConfigError> {
    let t = s.trim();
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ConfigError::invalid(
            flag,
            format!("a private key is 64 hex digits (got {} characters)", hex.len()),
        ));
    }
    hex.parse::<PrivateKeySigner>()
        .map_err(|_| ConfigError::invalid(flag, "not a valid secp256k1 private key (zero or ≥ the curve order)"))
}

/// Reads a keys file: one hex key per line, `#` starts a comment, blank lines are skipped.
pub fn read_keys_file(path: &Path) -> Result<Vec<PrivateKeySigner>, ConfigError> {
    let invalid = |reason: String| ConfigError::invalid("keys-file", reason);
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        keys.push(parse_key("keys-file", line).map_err(|e| invalid(format!("line {}: {e}", i + 1)))?);
    }
    Ok(keys)
}

/// What is wrong with a refused mnemonic, in words that never repeat it: coins-bip39's own messages quote
/// the whole phrase (wrong checksum) or the unknown word, and this message goes to stderr and logs.
fn mnemonic_problem(e: &LocalSignerError) -> String {
    use alloy_signer_local::coins_bip39::{MnemonicError, WordlistError};
    match e {
        LocalSignerError::Bip39Error(MnemonicError::InvalidPhrase(_)) => {
            "the checksum does not match: a word is wrong or out of place".into()
        }
        LocalSignerError::Bip39Error(MnemonicError::WordlistError(WordlistError::InvalidWord(_))) => {
            "a word is not in the BIP-39 English word list".into()
        }
        LocalSignerError::Bip39Error(MnemonicError::InvalidWordCount(n)) => {
            format!("{n} words; a mnemonic has 12, 15, 18, 21 or 24")
        }
        // The rest (entropy, BIP-32 derivation) describe no part of the phrase.
        other => other.to_string(),
    }
}

/// The most levels a `--derivation-path` may have: BIP-32 depth is one byte (at most 255), and the account
/// index is one more level.
pub const MAX_PATH_LEVELS: usize = 254;

/// Derives `count` accounts `{path}/0 … {path}/{count-1}` from a BIP-39 English mnemonic.
///
/// The parent key is derived once and each account is one child step from it, so a large pool costs
/// `count` cheap derivations rather than `count` full paths.
pub fn derive(phrase: &str, path: &str, count: u32) -> Result<Vec<PrivateKeySigner>, ConfigError> {
    let words = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let path = path.trim().trim_end_matches('/');
    if !path.starts_with("m/") && path != "m" {
        return Err(ConfigError::invalid(
            "derivation-path",
            format!("`{path}` must start with m/ (e.g. {DEFAULT_DERIVATION_PATH})"),
        ));
    }
    // BIP-32 keeps a key's depth in one byte, and each account is one level below the path: a longer path
    // made coins-bip32 overflow that byte (a panic in a build with overflow checks; found by fuzzing).
    let levels = path.split('/').skip(1).count();
    if levels > MAX_PATH_LEVELS {
        return Err(ConfigError::invalid(
            "derivation-path",
            format!("has {levels} levels; BIP-32 allows at most {MAX_PATH_LEVELS} above the account index"),
        ));
    }
    let builder = MnemonicBuilder::<English>::default()
        .phrase(words)
        .derivation_path(format!("{path}/0"))
        .map_err(|e| ConfigError::invalid("derivation-path", format!("`{path}`: {e}")))?;
    let parent = builder.build_parent_key().map_err(|e| {
        ConfigError::invalid("mnemonic", format!("not a valid BIP-39 English mnemonic ({})", mnemonic_problem(&e)))
    })?;
    (0..count)
        .map(|i| {
            parent.child(i).map(|k| k.signer()).map_err(|e| ConfigError::invalid("derivation-path", e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the `injector_keys` fuzz target found (fuzz/fuzz_targets/injector_keys.rs), committed under
    /// tests/data/fuzz/: the first byte is the target's selector, the rest the phrase. Before the fix, a phrase
    /// of valid words with a wrong checksum came back whole inside the error message.
    const FUZZ_FOUND: &[(&str, &[u8])] =
        &[("checksum", include_bytes!("../tests/data/fuzz/mnemonic-echoed-checksum.bin"))];

    /// Found by the `injector_keys` target: a derivation path of hundreds of levels (selector byte, phrase,
    /// newline, path) overflowed coins-bip32's one-byte depth, a panic with overflow checks on.
    const DEEP_PATH: &[u8] = include_bytes!("../tests/data/fuzz/derivation-path-over-255-levels.bin");

    #[test]
    fn a_path_deeper_than_bip32_allows_is_refused_not_a_panic() {
        let text = String::from_utf8_lossy(&DEEP_PATH[1..]);
        let (phrase, path) = text.split_once('\n').unwrap();
        let e = derive(phrase, path, 2).err().unwrap();
        assert!(e.to_string().contains("BIP-32 allows at most 254"), "{e}");
        let phrase = "test test test test test test test test test test test junk";
        let deepest = format!("m{}", "/0".repeat(MAX_PATH_LEVELS));
        assert_eq!(derive(phrase, &deepest, 1).unwrap().len(), 1, "254 levels plus the index is depth 255");
        let e = derive(phrase, &format!("{deepest}/0"), 1).err().unwrap();
        assert!(e.to_string().contains("has 255 levels"), "{e}");
    }

    #[test]
    fn a_refused_mnemonic_is_never_repeated_in_the_error() {
        let checksum =
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon";
        let unknown = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon zzzzzz";
        let mut cases = vec![(checksum.to_owned(), "checksum"), (unknown.to_owned(), "word list")];
        for (what, bytes) in FUZZ_FOUND {
            let phrase = String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned();
            cases.push((phrase, what));
        }
        for (phrase, want) in cases {
            let Err(e) = derive(&phrase, DEFAULT_DERIVATION_PATH, 1) else { panic!("accepted: {phrase}") };
            let message = e.to_string();
            assert!(message.contains(want), "{message}");
            let words = phrase.split_whitespace().collect::<Vec<_>>();
            assert!(!message.contains(&words.join(" ")), "the error repeats the phrase: {message}");
            assert!(!message.contains(&words[..6].join(" ")), "the error repeats half the phrase: {message}");
            assert!(!message.contains("zzzzzz"), "the error repeats the unknown word: {message}");
        }
    }
}
