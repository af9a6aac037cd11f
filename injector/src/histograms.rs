//! The report's lossless histograms (`iotex_shared::report::Histograms`): HdrHistogram V2 (deflate) in
//! base64, written at the end of a run and read back by `merge`.
//!
//! Reading refuses rather than trusts: a report file may be hostile. Before hdrhistogram's deserializer sees
//! the bytes (it sizes buffers and the histogram from the header), the base64 text, the inflated size and
//! the V2 header are bounded and must describe exactly the histograms a run writes (latency: 1 µs to 1 h;
//! fee: 1 to 10¹² Gwei; 3 digits), and a decoded total count above 2⁴⁸ is refused, so no later sum can
//! overflow.

use crate::recorder::{Interval, State, new_fee_histogram, new_histogram};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use iotex_shared::report::{Histograms, IntervalHistograms, LatencyHistograms};
use std::io::Read;

/// Longest base64 text of one histogram accepted (a full run histogram is a few kB).
const MAX_B64: usize = 1 << 21;
/// Largest inflated V2 encoding accepted: 22,528 counters at ≤ 9 bytes each fit well under it.
const MAX_INFLATED: u64 = 1 << 20;
/// Largest total count accepted in one histogram.
pub const MAX_COUNT: u64 = 1 << 48;
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
const V2_HEADER: usize = 40;

/// Why a histogram in a report could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct HistogramError(String);

/// Encodes a histogram for the report (an unencodable one, which a run never makes, becomes empty text).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut buf) {
        Ok(_) => B64.encode(&buf),
        Err(e) => {
            tracing::warn!(error = ?e, "histogram could not be encoded; the report carries it empty");
            String::new()
        }
    }
}

/// Which histograms a report holds, each with its own bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bounds {
    /// Microseconds, 1 µs to 1 h.
    Latency,
    /// Gwei, 1 to 10¹².
    Fee,
}

impl Bounds {
    fn empty(self) -> Histogram<u64> {
        match self {
            Bounds::Latency => new_histogram(),
            Bounds::Fee => new_fee_histogram(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Bounds::Latency => "the injector's latency bounds (1 µs to 1 h, 3 significant digits)",
            Bounds::Fee => "the injector's fee bounds (1 to 10^12 Gwei, 3 significant digits)",
        }
    }
}

/// Decodes a latency histogram written by [`encode`]; empty text is an empty histogram.
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    decode_as(text, Bounds::Latency)
}

/// Decodes a fee histogram (`histograms.fee`); empty text is an empty histogram.
pub fn decode_fee(text: &str) -> Result<Histogram<u64>, HistogramError> {
    decode_as(text, Bounds::Fee)
}

fn decode_as(text: &str, bounds: Bounds) -> Result<Histogram<u64>, HistogramError> {
    let err = |m: &str| HistogramError(m.to_owned());
    if text.is_empty() {
        return Ok(bounds.empty());
    }
    if text.len() > MAX_B64 {
        return Err(err("histogram text longer than 2 MiB"));
    }
    let bytes = B64.decode(text).map_err(|e| HistogramError(format!("histogram is not base64 ({e})")))?;
    let outer = header(&bytes).ok_or_else(|| err("histogram shorter than its header"))?;
    let v2 = match outer.0 {
        V2_DEFLATE_COOKIE => {
            if outer.1 as usize != bytes.len() - 8 {
                return Err(err("compressed histogram length does not match its header"));
            }
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[8..])
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| HistogramError(format!("histogram does not inflate ({e})")))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(err("histogram inflates past 1 MiB"));
            }
            out
        }
        V2_COOKIE => bytes,
        _ => return Err(err("not an HdrHistogram V2 encoding (wrong cookie)")),
    };
    check_v2(&v2, bounds)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut v2.as_slice())
        .map_err(|e| HistogramError(format!("histogram does not decode ({e})")))?;
    if h.len() > MAX_COUNT {
        return Err(err("histogram count above 2^48"));
    }
    Ok(h)
}

/// The first two big-endian words: the cookie and the payload length.
fn header(b: &[u8]) -> Option<(u32, u32)> {
    let word = |i: usize| b.get(i..i + 4).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes);
    Some((word(0)?, word(4)?))
}

/// The V2 header must be exactly what a run writes, and the payload length what follows it.
fn check_v2(b: &[u8], bounds: Bounds) -> Result<(), HistogramError> {
    let err = |m: &str| Err(HistogramError(m.to_owned()));
    let (cookie, payload) = match header(b) {
        Some(h) if b.len() >= V2_HEADER => h,
        _ => return err("histogram shorter than its header"),
    };
    if cookie != V2_COOKIE {
        return err("not an HdrHistogram V2 encoding (wrong inner cookie)");
    }
    if payload as usize != b.len() - V2_HEADER {
        return err("histogram payload length does not match its header");
    }
    let u64_at = |i: usize| b.get(i..i + 8).and_then(|s| s.try_into().ok()).map(u64::from_be_bytes);
    let digits = header(&b[8..]).map(|(_, d)| d);
    let want = bounds.empty();
    if digits != Some(u32::from(want.sigfig())) || u64_at(16) != Some(want.low()) || u64_at(24) != Some(want.high()) {
        return Err(HistogramError(format!("histogram bounds are not {}", bounds.describe())));
    }
    Ok(())
}

/// The run's histograms from the recorder's final state and the intervals the progress task kept.
pub fn from_state(s: &State, intervals: Vec<IntervalHistograms>) -> Histograms {
    let mut submit = new_histogram();
    let mut inclusion = new_histogram();
    for e in &s.endpoints {
        let _ = submit.add(&e.submit);
        let _ = inclusion.add(&e.inclusion);
    }
    Histograms {
        submit: encode(&submit),
        inclusion: encode(&inclusion),
        send_lag: encode(&s.send_lag),
        per_endpoint: s
            .endpoints
            .iter()
            .map(|e| LatencyHistograms { submit: encode(&e.submit), inclusion: encode(&e.inclusion) })
            .collect(),
        steps: s
            .steps
            .iter()
            .map(|st| LatencyHistograms { submit: encode(&st.submit), inclusion: encode(&st.inclusion) })
            .collect(),
        intervals,
        fee: encode(&s.fees.per_action),
    }
}

/// One progress interval as the report keeps it (`secs` long): counts back from its per-second rates.
pub fn interval(iv: &Interval, secs: f64) -> IntervalHistograms {
    let count = |rate: f64| (rate * secs).round().max(0.0) as u64;
    IntervalHistograms {
        t: iv.point.t,
        secs,
        offered: iv.point.offered,
        sent: count(iv.point.sent),
        accepted: count(iv.point.accepted),
        included: count(iv.point.included),
        submit: encode(&iv.submit),
        inclusion: encode(&iv.inclusion),
    }
}

#[cfg(test)]
#[path = "histograms_tests.rs"]
mod tests;
