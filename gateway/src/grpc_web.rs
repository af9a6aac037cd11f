//! gRPC-web on the gRPC listener, translated to gRPC for the nodes as Envoy's `grpc_web` filter does, so one
//! gateway serves browsers too.
//!
//! - Requests: `application/grpc-web` and `application/grpc-web+proto` carry the same length-prefixed messages
//!   as gRPC; `application/grpc-web-text` (`+proto`) carries them base64-encoded. Either is sent on to the node
//!   as `application/grpc`, over HTTP/1.1 or HTTP/2 from the browser.
//! - Answers: message frames as they are, then the trailers as one more frame (flag `0x80`, the length, then
//!   `name: value\r\n` lines), since browsers cannot read HTTP trailers; for `-text` every frame is sent
//!   base64-encoded (each padded: the spec lets a reader decode runs one after another). A trailers-only
//!   answer keeps its status in the headers, which gRPC-web clients read.
//! - CORS: for an `Origin` listed in `grpc-web-cors-origin` (or `*`), answers carry
//!   `Access-Control-Allow-Origin` and expose `grpc-status` and `grpc-message`, and a preflight `OPTIONS` is
//!   answered with the methods and headers gRPC-web clients send.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

/// Which gRPC-web encoding a request used (its answer uses the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Web {
    /// `application/grpc-web[+proto]`.
    Binary,
    /// `application/grpc-web-text[+proto]`: base64.
    Text,
}

impl Web {
    /// The gRPC-web encoding of a request's content type, if it is one.
    pub fn of(content_type: Option<&HeaderValue>) -> Option<Web> {
        let ct = content_type?.to_str().ok()?;
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/grpc-web" | "application/grpc-web+proto" => Some(Web::Binary),
            "application/grpc-web-text" | "application/grpc-web-text+proto" => Some(Web::Text),
            _ => None,
        }
    }

    /// The answer's content type.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Web::Binary => HeaderValue::from_static("application/grpc-web+proto"),
            Web::Text => HeaderValue::from_static("application/grpc-web-text+proto"),
        }
    }

    /// The request's messages as gRPC frames: as they came, or base64-decoded for `-text` (which may be
    /// several padded runs one after another). `None` for text that is not base64.
    pub fn decode_request(self, body: Bytes) -> Option<Bytes> {
        match self {
            Web::Binary => Some(body),
            Web::Text => {
                let text: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
                let mut out = Vec::with_capacity(text.len() / 4 * 3);
                // Runs end at padding; each is decoded on its own.
                for run in runs(&text) {
                    out.extend(STANDARD.decode(run).ok()?);
                }
                Some(Bytes::from(out))
            }
        }
    }

    /// One answer frame as sent to the browser.
    pub fn encode(self, frame: Bytes) -> Bytes {
        match self {
            Web::Binary => frame,
            Web::Text => Bytes::from(STANDARD.encode(&frame)),
        }
    }
}

/// Splits base64 text after each padded group (`…=` or `…==` ending a 4-character group).
fn runs(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= text.len() {
        let group = &text[i..i + 4];
        i += 4;
        if group[3] == b'=' {
            out.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The trailers as a gRPC-web trailer frame: flag `0x80`, the length, `name: value\r\n` lines.
pub fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut lines = Vec::new();
    for (name, value) in trailers {
        lines.extend_from_slice(name.as_str().as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value.as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::with_capacity(5 + lines.len());
    out.push(0x80);
    out.extend_from_slice(&u32::try_from(lines.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&lines);
    Bytes::from(out)
}

/// The listener's CORS settings for gRPC-web.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

/// Headers a gRPC-web client sends that a preflight must allow.
const ALLOW_HEADERS: &str =
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, grpc-accept-encoding, grpc-encoding";
/// Answer headers a browser script may read.
const EXPOSE_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin";

impl Cors {
    /// Allowed origins (`*`: any); empty: no CORS headers at all.
    pub fn new(origins: Vec<String>) -> Cors {
        Cors { origins }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, when allowed.
    fn allow(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let o = origin.to_str().ok()?;
        self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)).then(|| origin.clone())
    }

    /// Adds the CORS headers to an answer when the request's origin is allowed.
    pub fn decorate(&self, request: &HeaderMap, answer: &mut HeaderMap) {
        if let Some(allow) = self.allow(request) {
            answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            answer.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
            answer.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), if `req` is one:
    /// 204 with the allowed method and headers for an allowed origin, 403 for another.
    pub fn preflight<B, R: Default>(&self, req: &Request<B>) -> Option<Response<R>> {
        if req.method() != Method::OPTIONS || !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let mut resp = Response::new(R::default());
        let Some(allow) = self.allow(req.headers()) else {
            *resp.status_mut() = StatusCode::FORBIDDEN;
            return Some(resp);
        };
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        h.append(header::VARY, HeaderValue::from_static("origin"));
        Some(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_encoding_and_others_are_not_grpc_web() {
        let of = |s: &'static str| Web::of(Some(&HeaderValue::from_static(s)));
        assert_eq!(of("application/grpc-web"), Some(Web::Binary));
        assert_eq!(of("application/grpc-web+proto"), Some(Web::Binary));
        assert_eq!(of("Application/GRPC-Web-Text; charset=utf-8"), Some(Web::Text));
        assert_eq!(of("application/grpc-web-text+proto"), Some(Web::Text));
        assert_eq!(of("application/grpc"), None);
        assert_eq!(of("application/grpc-web+json"), None, "only protobuf is translated");
        assert_eq!(Web::of(None), None);
    }

    #[test]
    fn text_requests_decode_one_or_several_padded_runs_and_refuse_garbage() {
        let frame = Bytes::from_static(b"\x00\x00\x00\x00\x02\x08\x01");
        let one = Bytes::from(STANDARD.encode(&frame));
        assert_eq!(Web::Text.decode_request(one), Some(frame.clone()));
        let two = Bytes::from(format!("{}{}", STANDARD.encode(&frame[..3]), STANDARD.encode(&frame[3..])));
        assert_eq!(Web::Text.decode_request(two), Some(frame.clone()));
        assert_eq!(Web::Text.decode_request(Bytes::from_static(b"!!not base64!!")), None);
        assert_eq!(Web::Text.decode_request(Bytes::from_static(b"AAA")), None, "a truncated group");
        assert_eq!(Web::Binary.decode_request(frame.clone()), Some(frame));
    }

    #[test]
    fn trailers_become_one_frame_of_header_lines() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("5"));
        t.insert("grpc-message", HeaderValue::from_static("not found"));
        let f = trailer_frame(&t);
        assert_eq!(f[0], 0x80);
        let len = u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize;
        assert_eq!(len, f.len() - 5);
        let text = std::str::from_utf8(&f[5..]).unwrap();
        assert!(text.contains("grpc-status: 5\r\n") && text.contains("grpc-message: not found\r\n"), "{text}");
        assert_eq!(Web::Text.encode(f.clone()), Bytes::from(STANDARD.encode(&f)));
    }

    fn preflight(origin: &'static str) -> Request<()> {
        Request::builder()
            .method(Method::OPTIONS)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(())
            .unwrap()
    }

    #[test]
    fn cors_allows_listed_origins_only() {
        let cors = Cors::new(vec!["https://explorer.example.com".into()]);
        let ok: Response<()> = cors.preflight(&preflight("https://explorer.example.com")).unwrap();
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://explorer.example.com");
        assert!(ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("x-grpc-web"));
        let no: Response<()> = cors.preflight(&preflight("https://evil.example")).unwrap();
        assert_eq!(no.status(), StatusCode::FORBIDDEN);
        let mut answer = HeaderMap::new();
        cors.decorate(preflight("https://evil.example").headers(), &mut answer);
        assert!(answer.is_empty(), "no CORS headers for another origin");
        cors.decorate(preflight("https://explorer.example.com").headers(), &mut answer);
        assert_eq!(answer[header::ACCESS_CONTROL_EXPOSE_HEADERS], EXPOSE_HEADERS);
        let any = Cors::new(vec!["*".into()]);
        let r: Response<()> = any.preflight(&preflight("https://whoever.example")).unwrap();
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let plain = Request::builder().method(Method::POST).body(()).unwrap();
        assert!(cors.preflight::<(), ()>(&plain).is_none(), "not a preflight");
    }
}
