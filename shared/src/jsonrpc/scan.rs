//! The gateway's fast path for the common body: one plain request object, read by hand in one pass.
//!
//! serde's derived reader for the envelope cost ~2,600 instructions per call (field matching, a visitor per
//! value, and a second parse of the method); with this scan the gateway's single call costs ~800 fewer
//! (`scripts/bench-instructions.sh`, docs/benchmarks.md), most of what is left being serde's own check of
//! the params. It is only a shortcut: it answers `None` for anything unusual (an escape in a key or the
//! method, a key other than the four of JSON-RPC, a repeated key, params with more than [`MAX_DEPTH`]
//! brackets), and the caller then takes [`Request::parse_str`], so `None` costs time, never an answer. When it answers a request, that request is
//! the one `parse_str` reads (unit and property tests here, and the `jsonrpc_body` fuzz target, check this).
//! The id and params it returns are still checked by serde (`&RawValue` can only be made by it), which also
//! makes every byte of them valid JSON whatever the hand-written part got wrong.

use super::Request;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Params with more brackets than this take the careful path. serde_json stops at 128 levels of nesting in
/// the whole body; params sit one level down, and staying well below keeps both readers on the same side of
/// that limit.
const MAX_DEPTH: usize = 64;

impl<'a> Request<'a> {
    /// Reads a body that is exactly one plain request object; `None` for anything else (see the module doc).
    pub fn scan(text: &'a str) -> Option<Request<'a>> {
        let b = text.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let (mut version, mut id, mut method, mut params) = (false, None, None, None);
        loop {
            i = skip_ws(b, i + 1);
            let key_end = plain_string_end(b, i)?;
            let key = b.get(i + 1..key_end)?;
            i = skip_ws(b, key_end + 1);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let end = match key {
                b"jsonrpc" if !version => {
                    version = b.get(i..i + 5) == Some(b"\"2.0\"");
                    version.then_some(i + 5)?
                }
                b"method" if method.is_none() => {
                    let end = plain_string_end(b, i)?;
                    method = Some(text.get(i + 1..end)?);
                    end + 1
                }
                b"id" if id.is_none() => {
                    let end = match b.get(i)? {
                        b'"' => plain_string_end(b, i)? + 1,
                        b'n' => i + 4,
                        b'-' | b'0'..=b'9' => number_end(b, i),
                        _ => return None,
                    };
                    id = Some(raw(text.get(i..end)?)?);
                    end
                }
                b"params" if params.is_none() => {
                    let value = container(text.get(i..)?)?;
                    params = Some(value);
                    i + value.get().len()
                }
                _ => return None,
            };
            i = skip_ws(b, end);
            match b.get(i)? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        if !version || skip_ws(b, i + 1) != b.len() {
            return None;
        }
        Some(Request { id, method: Cow::Borrowed(method?), params })
    }
}

/// serde's own check of one value's text (and the only way to make a borrowed `&RawValue`).
fn raw(text: &str) -> Option<&RawValue> {
    serde_json::from_str(text).ok()
}

/// The first index at or after `i` that is not JSON whitespace (JSON's four, not Unicode's).
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// For a string starting at `i`: the index of its closing quote, if it has no escape and no control
/// character (both valid JSON or not, they are the careful path's to read).
fn plain_string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let rest = b.get(i + 1..)?;
    let at = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (rest.get(at) == Some(&b'"')).then_some(i + 1 + at)
}

/// Where the number-like run starting at `i` ends (its grammar is left to serde).
fn number_end(b: &[u8], i: usize) -> usize {
    let len = b
        .get(i..)
        .map_or(0, |r| r.iter().take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count());
    i + len
}

/// The array or object at the start of `text`, read (and so checked) by serde, which also finds its end.
/// One with more than [`MAX_DEPTH`] brackets in it is left to the careful path: that bounds its depth.
fn container(text: &str) -> Option<&RawValue> {
    if !matches!(text.as_bytes().first(), Some(b'[' | b'{')) {
        return None;
    }
    // A stream reader stops after the first value: an array or object ends itself, so what follows it
    // (`,` or `}` here) is not read.
    let value = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>().next()?.ok()?;
    let brackets = value.get().bytes().filter(|c| matches!(c, b'[' | b'{')).count();
    (brackets <= MAX_DEPTH).then_some(value)
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
