//! The injector's account inputs (`injector/src/accounts.rs`): a keys file (`--keys-file`, read from a real
//! file by `read_keys_file`), one hex key (`--key`, `--fund-from`: `parse_key`) and a BIP-39 mnemonic with a
//! derivation path (`--mnemonic`, `--derivation-path`: `derive`).
//!
//! The first input byte picks the input (and, for a mnemonic, how many accounts to derive, 1-4); for a
//! mnemonic the rest is `PHRASE` or `PHRASE\nPATH`. Checked beyond "no panic": **no error message repeats
//! the secret** (a key line, the phrase, or any 64-hex-digit run of the input), since error messages go to
//! stderr, logs and CI output; a keys file that parses gives one key per non-comment line; a derivation
//! that succeeds gives exactly the accounts asked for.

#![no_main]

use iotex_fuzz::Scratch;
use iotex_injector::accounts;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static FILE: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("keys"));

/// Panics if `message` contains `secret` (trimmed; ignored when too short to be a secret or a guess at one).
fn assert_not_echoed(message: &str, secret: &str, what: &str) {
    let secret = secret.trim();
    if secret.len() >= 16 && message.contains(secret) {
        panic!("the error message repeats the {what}: {message}");
    }
}

/// Whether the keys file's error follows line `i` of `file`: read again with that line's letters and digits
/// changed, the message must quote the changed line too. A line that merely spells out part of the message's
/// own text (`--keys-file: cannot read ...`, which the fuzzer learns from the comparisons it traces) is not an
/// echo: the product wrote it, the input did not.
fn echoes_line(file: &[u8], i: usize) -> bool {
    let mut changed = Vec::with_capacity(file.len());
    for (n, line) in file.split_inclusive(|b| *b == b'\n').enumerate() {
        if n == i {
            changed.extend(line.iter().map(|b| match b {
                b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => b + 1,
                b'9' => b'0',
                b'z' => b'a',
                b'Z' => b'A',
                other => *other,
            }));
        } else {
            changed.extend_from_slice(line);
        }
    }
    let text = String::from_utf8_lossy(&changed).into_owned();
    let Some(line) = text.lines().nth(i) else { return false };
    let secret = line.split('#').next().unwrap_or("").trim();
    match accounts::read_keys_file(FILE.write(&changed)) {
        Err(e) => e.to_string().contains(secret),
        Ok(_) => false,
    }
}

/// Shifts letters and digits by one (`z` → `a`, `9` → `0`): the same shape, other text.
fn shifted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from(c as u8 + 1),
            '9' => '0',
            'z' => 'a',
            'Z' => 'A',
            other => other,
        })
        .collect()
}

/// Whether a mnemonic error repeats `secret` (part of `phrase`) because of the phrase: derived again from the
/// shifted phrase, the message must hold the shifted secret too.
fn echoes_phrase(phrase: &str, path: &str, count: u32, secret: &str) -> bool {
    match accounts::derive(&shifted(phrase), path, count) {
        Err(e) => e.to_string().contains(&shifted(secret)),
        Ok(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => match accounts::read_keys_file(FILE.write(rest)) {
            Ok(keys) => {
                let lines = text.lines().filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty()).count();
                assert_eq!(keys.len(), lines, "one key per non-comment line");
            }
            Err(e) => {
                let message = e.to_string();
                for (i, line) in text.lines().enumerate() {
                    let secret = line.split('#').next().unwrap_or("").trim();
                    if secret.len() >= 16 && message.contains(secret) && echoes_line(rest, i) {
                        panic!("the error message repeats the key line: {message}");
                    }
                }
            }
        },
        1 => {
            if let Err(e) = accounts::parse_key("key", &text) {
                assert_not_echoed(&e.to_string(), &text, "key");
            }
        }
        _ => {
            let (phrase, path) = text.split_once('\n').unwrap_or((&text, accounts::DEFAULT_DERIVATION_PATH));
            let count = u32::from(which / 4 % 4) + 1;
            match accounts::derive(phrase, path, count) {
                Ok(keys) => assert_eq!(keys.len(), count as usize),
                Err(e) => {
                    // The derivation path is no secret and is quoted when refused: leave out what it contains.
                    let quoted = path.trim().trim_end_matches('/');
                    let mut message = e.to_string();
                    if !quoted.is_empty() {
                        message = message.replace(quoted, "PATH");
                    }
                    let words = phrase.split_whitespace().collect::<Vec<_>>();
                    // The phrase as the error would print it: its words joined by single spaces; and half the
                    // words of a real phrase, which are half the secret. A hit counts only if the message follows
                    // the phrase when its letters change: a phrase can spell out the product's own message text.
                    let mut secrets = vec![words.join(" ")];
                    if words.len() >= 12 {
                        secrets.push(words[..6].join(" "));
                    }
                    for secret in secrets {
                        if secret.len() >= 16
                            && message.contains(&secret)
                            && echoes_phrase(phrase, path, count, &secret)
                        {
                            panic!("the error message repeats the mnemonic: {message}");
                        }
                    }
                }
            }
        }
    }
});
