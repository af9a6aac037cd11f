//! Access tokens: a small ed25519-signed payload (token id, subject, quota tier, expiry), base64url.
//!
//! A token is `base64url(payload ‖ signature)` without padding, about 150 characters for a 16-character id and
//! subject (at most ~410). Payload, version 1:
//!
//! ```text
//! byte 0      version = 1
//! bytes 1..5  key id: the first 4 bytes of the signer's public key (picks the key to verify with)
//! bytes 5..13 expiry, Unix seconds, big-endian u64 (the token is expired from that second on)
//! then        id length (1..=64), id       ASCII letters, digits, `.`, `_`, `:`, `-`
//! then        tier length (1..=32), tier   lower-case letters, digits, `_`, `-`
//! then        subject length (0..=128), subject   UTF-8 without control characters
//! last 64     ed25519 signature over "iotex-gateway token v1\0" ‖ payload
//! ```
//!
//! The signed message carries a context string so a token key can never be tricked into signing something
//! another protocol would accept. Verification uses `verify_strict` (no malleable or weak-key signatures).
//! Everything here is pure except the key-file helpers; untrusted input only ever yields a [`TokenError`].
//!
//! The revocation list (token ids refused although validly signed) is read here too, so config validation
//! and the auth layer share one reader: one id per line, `#` starts a comment, at most
//! [`MAX_REVOCATION_BYTES`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Format version written into every token.
pub const VERSION: u8 = 1;
/// Longest token text looked at; anything longer is malformed without being decoded.
pub const MAX_TOKEN_CHARS: usize = 600;
/// Longest token id.
pub const MAX_ID_LEN: usize = 64;
/// Longest tier name.
pub const MAX_TIER_LEN: usize = 32;
/// Longest subject.
pub const MAX_SUBJECT_LEN: usize = 128;
const CONTEXT: &[u8] = b"iotex-gateway token v1\0";
const HEADER_LEN: usize = 1 + 4 + 8;
const SIG_LEN: usize = 64;

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claims {
    /// The token id: what the revocation list names and what the token's quota is keyed by.
    pub id: String,
    /// Who the token was issued to (free text, for operators).
    pub subject: String,
    /// The quota tier (a `token-tier` name).
    pub tier: String,
    /// Unix seconds from which the token is refused.
    pub expires_at: u64,
}

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too long or short, unknown version, bad field.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// No configured public key has the token's key id.
    #[error("token is not signed by a trusted key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired at {expires_at} (Unix seconds)")]
    Expired {
        /// The expiry it carries.
        expires_at: u64,
    },
}

impl TokenError {
    /// Metric label (`iotex_gateway_auth_rejected_total{reason}`).
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired { .. } => "expired",
        }
    }
}

/// A token split into its parts, signature not yet checked.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The claims as written.
    pub claims: Claims,
    /// First 4 bytes of the signer's public key.
    pub key_id: [u8; 4],
    payload: Vec<u8>,
    signature: Signature,
}

/// True for a valid token id (also what `--id` and the revocation list accept).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// True for a valid tier name (also what `token-tier` accepts).
pub fn valid_tier(tier: &str) -> bool {
    !tier.is_empty()
        && tier.len() <= MAX_TIER_LEN
        && tier.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

fn valid_subject(s: &str) -> bool {
    s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control)
}

/// A random token id: 64 random bits as 16 hex digits.
pub fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The key id of a public key.
pub fn key_id(key: &VerifyingKey) -> [u8; 4] {
    let b = key.as_bytes();
    [b[0], b[1], b[2], b[3]]
}

fn message(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + payload.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(payload);
    m
}

/// Signs `claims` into a token. Fails (naming the field) when a claim does not fit the format.
pub fn issue(key: &SigningKey, claims: &Claims) -> Result<String, TokenError> {
    if !valid_id(&claims.id) {
        return Err(TokenError::Malformed("id must be 1-64 of A-Z a-z 0-9 . _ : -"));
    }
    if !valid_tier(&claims.tier) {
        return Err(TokenError::Malformed("tier must be 1-32 of a-z 0-9 _ -"));
    }
    if !valid_subject(&claims.subject) {
        return Err(TokenError::Malformed("subject must be at most 128 bytes without control characters"));
    }
    let mut p = Vec::with_capacity(HEADER_LEN + 3 + claims.id.len() + claims.tier.len() + claims.subject.len());
    p.push(VERSION);
    p.extend_from_slice(&key_id(&key.verifying_key()));
    p.extend_from_slice(&claims.expires_at.to_be_bytes());
    for field in [&claims.id, &claims.tier, &claims.subject] {
        // Lengths were checked above, so each fits in a byte.
        p.push(u8::try_from(field.len()).map_err(|_| TokenError::Malformed("field too long"))?);
        p.extend_from_slice(field.as_bytes());
    }
    let sig = key.sign(&message(&p));
    p.extend_from_slice(&sig.to_bytes());
    Ok(URL_SAFE_NO_PAD.encode(p))
}

/// Reads one length-prefixed field.
fn field<'a>(rest: &mut &'a [u8], what: &'static str) -> Result<&'a str, TokenError> {
    let (&len, tail) = rest.split_first().ok_or(TokenError::Malformed(what))?;
    let len = usize::from(len);
    if tail.len() < len {
        return Err(TokenError::Malformed(what));
    }
    let (bytes, tail) = tail.split_at(len);
    *rest = tail;
    std::str::from_utf8(bytes).map_err(|_| TokenError::Malformed(what))
}

/// Splits a token into claims and signature without checking the signature.
pub fn decode(token: &str) -> Result<Decoded, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed("too long"));
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Malformed("not base64url"))?;
    if bytes.len() < HEADER_LEN + 3 + SIG_LEN {
        return Err(TokenError::Malformed("too short"));
    }
    let (payload, sig) = bytes.split_at(bytes.len() - SIG_LEN);
    if payload[0] != VERSION {
        return Err(TokenError::Malformed("unknown version"));
    }
    let key_id = [payload[1], payload[2], payload[3], payload[4]];
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&payload[5..HEADER_LEN]);
    let mut rest = &payload[HEADER_LEN..];
    let id = field(&mut rest, "bad id")?;
    let tier = field(&mut rest, "bad tier")?;
    let subject = field(&mut rest, "bad subject")?;
    if !rest.is_empty() {
        return Err(TokenError::Malformed("trailing bytes"));
    }
    if !valid_id(id) {
        return Err(TokenError::Malformed("bad id"));
    }
    if !valid_tier(tier) {
        return Err(TokenError::Malformed("bad tier"));
    }
    if !valid_subject(subject) {
        return Err(TokenError::Malformed("bad subject"));
    }
    let signature = Signature::from_slice(sig).map_err(|_| TokenError::Malformed("bad signature bytes"))?;
    Ok(Decoded {
        claims: Claims {
            id: id.to_owned(),
            subject: subject.to_owned(),
            tier: tier.to_owned(),
            expires_at: u64::from_be_bytes(exp),
        },
        key_id,
        payload: payload.to_vec(),
        signature,
    })
}

impl Decoded {
    /// Checks the signature against the configured key(s) with the token's key id (normally exactly one).
    pub fn verify_signature(&self, keys: &[VerifyingKey]) -> Result<(), TokenError> {
        let msg = message(&self.payload);
        let mut candidates = keys.iter().filter(|k| key_id(k) == self.key_id).peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        if candidates.any(|k| k.verify_strict(&msg, &self.signature).is_ok()) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }

    /// True when the token is expired at `now` (Unix seconds).
    pub fn expired_at(&self, now: u64) -> bool {
        now >= self.claims.expires_at
    }
}

/// Decodes, verifies against `keys` and checks the expiry against `now` (Unix seconds).
pub fn verify(token: &str, keys: &[VerifyingKey], now: u64) -> Result<Claims, TokenError> {
    let d = decode(token)?;
    d.verify_signature(keys)?;
    if d.expired_at(now) {
        return Err(TokenError::Expired { expires_at: d.claims.expires_at });
    }
    Ok(d.claims)
}

/// Unix seconds now (0 if the clock is before 1970, which makes nothing expire early).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64url of 32 bytes, or not a valid curve point.
    #[error("{0}")]
    Invalid(String),
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn key_bytes(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim();
    if s.len() > 64 {
        return Err(KeyError::Invalid("a key is 43 base64url characters".into()));
    }
    let raw = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| KeyError::Invalid("a key is 43 base64url characters (A-Z a-z 0-9 - _), no padding".into()))?;
    <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| KeyError::Invalid(format!("a key is 32 bytes, this one is {}", raw.len())))
}

/// Parses a base64url public key.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&key_bytes(s)?).map_err(|_| KeyError::Invalid("not a valid ed25519 public key".into()))
}

/// A public key as base64url.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Non-blank, non-comment lines of a key file, with trailing `#` comments cut.
fn key_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty())
}

/// Parses a public-key file: one base64url key per line, `#` comments.
pub fn parse_public_keys(text: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let keys = key_lines(text).map(parse_public_key).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::Invalid("no key in the file".into()));
    }
    Ok(keys)
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.display().to_string(), source })
}

/// Reads a public-key file.
pub fn read_public_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    parse_public_keys(&read(path)?)
}

/// The text of a secret-key file: a comment naming the public key, then the 32-byte seed in base64url.
pub fn secret_key_file(key: &SigningKey) -> String {
    format!(
        "# iotex-gateway token signing key (ed25519). Keep it secret.\n# public key: {}\n{}\n",
        encode_public_key(&key.verifying_key()),
        URL_SAFE_NO_PAD.encode(key.to_bytes())
    )
}

/// Parses a secret-key file written by [`secret_key_file`].
pub fn parse_secret_key(text: &str) -> Result<SigningKey, KeyError> {
    let mut lines = key_lines(text);
    let first = lines.next().ok_or_else(|| KeyError::Invalid("no key in the file".into()))?;
    if lines.next().is_some() {
        return Err(KeyError::Invalid("more than one key line; a secret-key file holds one key".into()));
    }
    Ok(SigningKey::from_bytes(&key_bytes(first)?))
}

/// Reads a secret-key file.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, KeyError> {
    parse_secret_key(&read(path)?)
}

/// A fresh signing key from the operating system's random source.
pub fn generate() -> SigningKey {
    // rand's thread RNG is a CSPRNG seeded from the OS.
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// Writes a secret-key file readable by its owner only (0600). Refuses to overwrite unless `force`.
pub fn write_secret_key(path: &Path, key: &SigningKey, force: bool) -> Result<(), KeyError> {
    use std::io::Write;
    let io = |source| KeyError::Io { path: path.display().to_string(), source };
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io)?;
    // `mode` applies only to a file this call creates; an overwritten one gets its permissions fixed here.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    f.write_all(secret_key_file(key).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Largest revocation list read (a million ids fit comfortably).
pub const MAX_REVOCATION_BYTES: u64 = 64 << 20;
/// A revocation list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Larger than [`MAX_REVOCATION_BYTES`].
    #[error("{path} is larger than {MAX_REVOCATION_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line is not a token id.
    #[error("{path} line {line}: not a token id (1-64 of A-Z a-z 0-9 . _ : -)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// The ids in a revocation list: one per line, `#` starts a comment, blank lines are ignored.
pub fn parse_revocation_list(path: &Path, text: &str) -> Result<HashSet<Box<str>>, RevocationError> {
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        if !valid_id(id) {
            return Err(RevocationError::Invalid { path: path.to_owned(), line: i + 1 });
        }
        ids.insert(id.into());
    }
    Ok(ids)
}

/// Reads a revocation list file, refusing one over [`MAX_REVOCATION_BYTES`].
pub fn read_revocation_file(path: &Path) -> Result<Vec<u8>, RevocationError> {
    use std::io::Read;
    let io = |source| RevocationError::Io { path: path.to_owned(), source };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    f.take(MAX_REVOCATION_BYTES + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > MAX_REVOCATION_BYTES {
        return Err(RevocationError::TooLarge { path: path.to_owned() });
    }
    Ok(buf)
}

/// Parses a revocation list read with [`read_revocation_file`]; a line that is not UTF-8 is invalid.
pub fn parse_revocation_bytes(path: &Path, bytes: &[u8]) -> Result<HashSet<Box<str>>, RevocationError> {
    let text = std::str::from_utf8(bytes).map_err(|_| RevocationError::Invalid {
        path: path.to_owned(),
        line: bytes.split(|b| *b == b'\n').position(|l| std::str::from_utf8(l).is_err()).unwrap_or(0) + 1,
    })?;
    parse_revocation_list(path, text)
}

/// Reads and parses a revocation list (also used by config validation).
pub fn read_revocation_list(path: &Path) -> Result<HashSet<Box<str>>, RevocationError> {
    parse_revocation_bytes(path, &read_revocation_file(path)?)
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
