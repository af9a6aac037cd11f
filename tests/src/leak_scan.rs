//! The end-of-run scan: no test secret in anything [`crate::capture`] kept.
//!
//! [`scan`] looks at every line of every file of a run directory (except `secrets/`) for each [`Secret`] in
//! the forms that matter: a hex key with and without `0x` in either case, its bytes as Rust prints an array
//! and in base64, the mnemonic whole and as its run of words whatever separates them (spaces, a JSON array,
//! commas, escaped newlines), and the basic-auth passwords and headers the tests use; plus every secret
//! registered at run time. `cargo run -p iotex-tests --bin scan-secrets -- DIR` runs it after the suite and
//! fails on any hit.

use crate::nodes::{DEV_KEYS, DEV_MNEMONIC};
use base64::Engine;
use std::path::{Path, PathBuf};

/// The basic-auth credentials tests give upstream URLs, and their `Authorization` header values.
pub const BASIC_AUTH_SECRETS: [&str; 3] = ["s3cret", "ops:s3cret", "b3BzOnMzY3JldA=="];

/// One secret, in the form the scan compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// Text that must not appear, compared exactly (tokens, base64, passwords).
    Exact(String),
    /// Text compared without regard to ASCII case (hex).
    AnyCase(String),
    /// A run of words that must not appear in sequence, whatever non-letters separate them (a mnemonic).
    Words(Vec<String>),
}

impl Secret {
    fn found_in(&self, line: &str, lower: &str, words: &[&str]) -> bool {
        match self {
            Secret::Exact(s) => line.contains(s.as_str()),
            Secret::AnyCase(s) => lower.contains(s.as_str()),
            Secret::Words(w) => !w.is_empty() && words.windows(w.len()).any(|win| win.iter().eq(w.iter())),
        }
    }
}

/// Every form of one hex private key that matters: the hex with and without `0x` (any case), the 32 bytes as
/// `{:?}` prints them, and in standard and URL-safe base64.
pub fn key_forms(hex_key: &str) -> Vec<Secret> {
    let bare = hex_key.trim().trim_start_matches("0x").to_ascii_lowercase();
    let mut forms = vec![Secret::AnyCase(bare.clone())];
    if let Ok(bytes) = alloy_primitives::hex::decode(&bare) {
        let debug = format!("{bytes:?}");
        forms.push(Secret::Exact(debug.trim_end_matches(']').to_owned()));
        forms.push(Secret::Exact(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes)));
        forms.push(Secret::Exact(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)));
    }
    forms
}

/// The forms of a mnemonic: the phrase and its run of words.
pub fn mnemonic_forms(phrase: &str) -> Vec<Secret> {
    vec![Secret::Exact(phrase.to_owned()), Secret::Words(words(&phrase.to_ascii_lowercase()))]
}

fn words(lower: &str) -> Vec<String> {
    split_words(lower).into_iter().map(str::to_owned).collect()
}

/// The runs of letters in a lower-cased line. A JSON or Rust escape (`\n`, `\t`, `\r`) separates words too:
/// without that, a phrase logged with escaped newlines would read as `test`, `ntest`, … and be missed.
fn split_words(lower: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in lower.split(|c: char| !c.is_ascii_alphabetic() && c != '\\') {
        out.extend(part.split('\\').enumerate().filter_map(|(i, w)| {
            let w = if i > 0 { w.strip_prefix(['n', 't', 'r']).unwrap_or(w) } else { w };
            (!w.is_empty()).then_some(w)
        }));
    }
    out
}

/// The secrets every run uses (dev keys, dev mnemonic, basic-auth credentials) plus those registered under
/// `dir/secrets/`.
pub fn secrets(dir: &Path) -> Vec<(String, Secret)> {
    let mut out: Vec<(String, Secret)> = Vec::new();
    for (i, k) in DEV_KEYS.iter().enumerate() {
        out.extend(key_forms(k).into_iter().map(|s| (format!("dev key {i}"), s)));
    }
    out.extend(mnemonic_forms(DEV_MNEMONIC).into_iter().map(|s| ("dev mnemonic".to_owned(), s)));
    out.extend(BASIC_AUTH_SECRETS.iter().map(|s| ("basic auth".to_owned(), Secret::Exact((*s).to_owned()))));
    let registered = std::fs::read_dir(dir.join("secrets")).into_iter().flatten().flatten();
    for entry in registered {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Some((kind, value)) = line.split_once('\t') else { continue };
            let forms = match kind {
                "hex-key" => key_forms(value),
                "mnemonic" => mnemonic_forms(value),
                _ => vec![Secret::Exact(value.to_owned())],
            };
            out.extend(forms.into_iter().map(|s| (kind.to_owned(), s)));
        }
    }
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out.dedup();
    out
}

/// A secret found in a captured file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// Which secret (its kind, never its value).
    pub what: String,
}

/// Scans every file under `dir` except `dir/secrets/`, line by line, for `secrets`. Also returns how many
/// files and lines were read, so a run that captured nothing is visible.
pub fn scan(dir: &Path, secrets: &[(String, Secret)]) -> std::io::Result<(Vec<Hit>, usize, usize)> {
    let (mut hits, mut files, mut lines) = (Vec::new(), 0, 0);
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                if path != dir.join("secrets") {
                    todo.push(path);
                }
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path)?;
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text.lines().enumerate() {
                lines += 1;
                let lower = line.to_ascii_lowercase();
                let ws = split_words(&lower);
                for (what, s) in secrets {
                    if s.found_in(line, &lower, &ws) {
                        hits.push(Hit { file: path.clone(), line: n + 1, what: what.clone() });
                    }
                }
            }
        }
    }
    Ok((hits, files, lines))
}

/// One line per hit, `FILE:LINE: KIND` (the kind of secret, never its value, so the report leaks nothing).
pub fn report(hits: &[Hit]) -> String {
    hits.iter().map(|h| format!("{}:{}: {}\n", h.file.display(), h.line, h.what)).collect()
}

#[cfg(test)]
#[path = "leak_scan_tests.rs"]
mod tests;
