//! JSON-RPC 2.0 envelopes as they cross the gateway, and the error codes it puts on the wire.
//!
//! Parsing is borrowed and shallow: `id`, `params` and `result` stay [`RawValue`]s, so a body that passes
//! through is never rebuilt. Every field is taken raw first and checked by hand, so a request with a wrong
//! field type still yields its `id` for the error object (the spec wants the id echoed when it can be read).

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

mod scan;

/// Error codes the gateway itself answers with (standard ones and EIP-1474's).
pub mod codes {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object (or the batch is empty or too large).
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not allowed through this gateway.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Generic server error, what Ethereum nodes use for "filter not found".
    pub const SERVER_ERROR: i64 = -32000;
    /// EIP-1474 "resource unavailable": no upstream node can take the call right now.
    pub const RESOURCE_UNAVAILABLE: i64 = -32002;
    /// EIP-1474 "limit exceeded": the caller is over its rate limit.
    pub const LIMIT_EXCEEDED: i64 = -32005;
    /// Every upstream attempt failed (connection, timeout, 5xx, 429, malformed answer).
    pub const UPSTREAM_FAILED: i64 = -32010;
    /// The request's deadline passed before any upstream answered.
    pub const DEADLINE_EXCEEDED: i64 = -32011;
    /// The access token is missing (when required), malformed, not validly signed, expired or revoked
    /// (sent with HTTP 401).
    pub const UNAUTHORIZED: i64 = -32012;
}

/// Why a request item is not a valid JSON-RPC 2.0 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// The item is not a JSON object.
    #[error("a request must be a JSON object")]
    NotAnObject,
    /// `jsonrpc` is missing or not `"2.0"`.
    #[error("`jsonrpc` must be \"2.0\"")]
    Version,
    /// `method` is missing or not a string.
    #[error("`method` must be a string")]
    Method,
    /// `id` is not a string, number or null.
    #[error("`id` must be a string, a number or null")]
    Id,
    /// `params` is not an array or object.
    #[error("`params` must be an array or an object")]
    Params,
}

/// A parsed request item. `id == None` means a notification (no answer is owed).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The id exactly as sent, or `None` for a notification.
    pub id: Option<&'a RawValue>,
    /// The method name.
    pub method: Cow<'a, str>,
    /// The params exactly as sent.
    pub params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

/// Keeps an explicit `null` as `Some(null)`: `"id": null` is a call, a missing id is a notification.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The first non-whitespace byte of a JSON text, which tells its type without parsing it.
pub fn first_byte(raw: &str) -> Option<u8> {
    raw.bytes().find(|b| !b.is_ascii_whitespace())
}

fn is_valid_id(raw: &RawValue) -> bool {
    matches!(first_byte(raw.get()), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

/// What a request item failed on, with the id when it could be read.
#[derive(Debug, Clone)]
pub struct ItemError<'a> {
    /// The id to echo in the error object (`null` when unreadable).
    pub id: Option<&'a RawValue>,
    /// What is wrong.
    pub error: InvalidRequest,
}

impl<'a> Request<'a> {
    /// Parses one request item (a batch element or a whole single-call body).
    pub fn parse(raw: &'a RawValue) -> Result<Request<'a>, ItemError<'a>> {
        Self::parse_str(raw.get())
    }

    /// [`Request::parse`] straight from a body's text, in one pass: the common body is one valid request,
    /// and validating it as JSON first ([`Body::parse`]) would scan it twice. Text that is not a JSON object
    /// is [`InvalidRequest::NotAnObject`] here; a caller that must tell a parse error (-32700) from that
    /// takes the careful path ([`Body::parse`], then [`Request::parse`]) when this fails.
    pub fn parse_str(text: &'a str) -> Result<Request<'a>, ItemError<'a>> {
        if first_byte(text) != Some(b'{') {
            return Err(ItemError { id: None, error: InvalidRequest::NotAnObject });
        }
        let env: RawEnvelope<'a> =
            serde_json::from_str(text).map_err(|_| ItemError { id: None, error: InvalidRequest::NotAnObject })?;
        // Echo the id only if it is itself valid; an object or array id must not be reflected back.
        let id = env.id.filter(|id| is_valid_id(id));
        let fail = |error| Err(ItemError { id, error });
        if env.id.is_some() && id.is_none() {
            return fail(InvalidRequest::Id);
        }
        if env.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
            return fail(InvalidRequest::Version);
        }
        let Some(method_raw) = env.method else { return fail(InvalidRequest::Method) };
        let method: Cow<'a, str> = match serde_json::from_str::<Cow<'a, str>>(method_raw.get()) {
            Ok(m) => m,
            Err(_) => return fail(InvalidRequest::Method),
        };
        if let Some(p) = env.params
            && !matches!(first_byte(p.get()), Some(b'[' | b'{'))
        {
            return fail(InvalidRequest::Params);
        }
        Ok(Request { id, method, params: env.params })
    }

    /// True when no answer is owed.
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }

    /// Serializes this request with another id (used when the gateway makes its own upstream call).
    pub fn to_json_with_id(&self, id: &RawValue) -> String {
        let mut out = String::with_capacity(64 + self.params.map_or(0, |p| p.get().len()));
        out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
        out.push_str(id.get());
        out.push_str(",\"method\":");
        // A method name came from valid JSON, so re-encoding it cannot fail; fall back to "" anyway.
        out.push_str(&serde_json::to_string(self.method.as_ref()).unwrap_or_else(|_| "\"\"".into()));
        if let Some(p) = self.params {
            out.push_str(",\"params\":");
            out.push_str(p.get());
        }
        out.push('}');
        out
    }
}

/// The top-level shape of a body.
#[derive(Debug)]
pub enum Body<'a> {
    /// One request item (maybe invalid).
    Single(&'a RawValue),
    /// A batch of raw items.
    Batch(Vec<&'a RawValue>),
}

/// A body that is not JSON at all, or not an object or array.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not valid JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// Valid JSON, but neither an object nor an array.
    #[error("a request body must be a JSON object or array")]
    NotObjectOrArray,
}

impl<'a> Body<'a> {
    /// Splits a body into a single item or a batch, without looking inside the items.
    pub fn parse(text: &'a str) -> Result<Body<'a>, BodyError> {
        match first_byte(text) {
            Some(b'[') => serde_json::from_str::<Vec<&'a RawValue>>(text)
                .map(Body::Batch)
                .map_err(|e| BodyError::Parse(e.to_string())),
            Some(b'{') => serde_json::from_str::<&'a RawValue>(text)
                .map(Body::Single)
                .map_err(|e| BodyError::Parse(e.to_string())),
            _ => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => Err(BodyError::NotObjectOrArray),
                Err(e) => Err(BodyError::Parse(e.to_string())),
            },
        }
    }
}

/// A JSON-RPC error object as received from an upstream.
#[derive(Debug, Deserialize)]
pub struct ErrorObject<'a> {
    /// The error code.
    pub code: i64,
    /// The message (borrowed when it has no escapes).
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
}

/// An upstream's answer to one call, parsed shallowly.
#[derive(Debug, Deserialize)]
pub struct Response<'a> {
    /// The id the upstream echoed.
    #[serde(borrow, default, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    /// The result, if any.
    #[serde(borrow, default, deserialize_with = "present")]
    pub result: Option<&'a RawValue>,
    /// The error, if any.
    #[serde(borrow, default)]
    pub error: Option<ErrorObject<'a>>,
}

impl<'a> Response<'a> {
    /// Parses one response object; `None` when it is not a JSON-RPC response at all.
    pub fn parse(text: &'a str) -> Option<Response<'a>> {
        let r: Response<'a> = serde_json::from_str(text).ok()?;
        (r.result.is_some() || r.error.is_some()).then_some(r)
    }
}

/// Writes an error response object. `id == None` is written as `null`.
pub fn error_response(id: Option<&RawValue>, code: i64, message: &str) -> String {
    let id = id.map_or("null", RawValue::get);
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":{code},\"message\":{message}}}}}")
}

/// Writes a success response object around an already-serialized result.
pub fn result_response(id: Option<&RawValue>, result: &str) -> String {
    let id = id.map_or("null", RawValue::get);
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn parses_a_call_and_keeps_params_raw() {
        let r = raw(r#"{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0xab", "latest"]}"#);
        let req = Request::parse(r).unwrap();
        assert_eq!(req.id.unwrap().get(), "7");
        assert_eq!(req.method, "eth_getBalance");
        assert_eq!(req.params.unwrap().get(), r#"["0xab", "latest"]"#);
    }

    #[test]
    fn null_id_is_a_call_and_missing_id_is_a_notification() {
        let call = raw(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#);
        assert!(!Request::parse(call).unwrap().is_notification());
        let note = raw(r#"{"jsonrpc":"2.0","method":"m"}"#);
        assert!(Request::parse(note).unwrap().is_notification());
    }

    #[test]
    fn invalid_items_say_why_and_keep_a_readable_id() {
        let cases = [
            (r#"{"id":1,"method":"m"}"#, InvalidRequest::Version, Some("1")),
            (r#"{"jsonrpc":"1.0","id":"a","method":"m"}"#, InvalidRequest::Version, Some("\"a\"")),
            (r#"{"jsonrpc":"2.0","id":2}"#, InvalidRequest::Method, Some("2")),
            (r#"{"jsonrpc":"2.0","id":3,"method":5}"#, InvalidRequest::Method, Some("3")),
            (r#"{"jsonrpc":"2.0","id":4,"method":"m","params":"x"}"#, InvalidRequest::Params, Some("4")),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#, InvalidRequest::Id, None),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#, InvalidRequest::Id, None),
            (r#"[1]"#, InvalidRequest::NotAnObject, None),
            (r#""str""#, InvalidRequest::NotAnObject, None),
            (r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"m"}"#, InvalidRequest::NotAnObject, None),
        ];
        for (text, want, id) in cases {
            let e = Request::parse(raw(text)).unwrap_err();
            assert_eq!(e.error, want, "{text}");
            assert_eq!(e.id.map(RawValue::get), id, "{text}");
        }
    }

    #[test]
    fn body_shapes() {
        assert!(matches!(Body::parse(" [1, {}]"), Ok(Body::Batch(v)) if v.len() == 2));
        assert!(matches!(Body::parse("{}"), Ok(Body::Single(_))));
        assert_eq!(Body::parse("42").unwrap_err(), BodyError::NotObjectOrArray);
        assert!(matches!(Body::parse("{\"a\":"), Err(BodyError::Parse(_))));
        assert!(matches!(Body::parse(""), Err(BodyError::Parse(_))));
        assert!(matches!(Body::parse("[1,]"), Err(BodyError::Parse(_))));
    }

    #[test]
    fn rewritten_request_is_valid_json_with_the_new_id() {
        let r = raw(r#"{"jsonrpc":"2.0","id":"x","method":"we\"ird","params":{"a":[1]}}"#);
        let req = Request::parse(r).unwrap();
        let out = req.to_json_with_id(raw("42"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "we\"ird");
        assert_eq!(v["params"]["a"][0], 1);
    }

    #[test]
    fn responses_and_errors() {
        let ok = Response::parse(r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#).unwrap();
        assert_eq!(ok.result.unwrap().get(), "\"0x1\"");
        let null_result = Response::parse(r#"{"jsonrpc":"2.0","id":1,"result":null}"#).unwrap();
        assert_eq!(null_result.result.unwrap().get(), "null");
        let err =
            Response::parse(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"already known"}}"#).unwrap();
        assert_eq!(err.error.unwrap().message, "already known");
        assert!(Response::parse(r#"{"jsonrpc":"2.0","id":1}"#).is_none());
        assert!(Response::parse("<html>").is_none());
        let e: serde_json::Value =
            serde_json::from_str(&error_response(None, codes::PARSE_ERROR, "bad \"json\"")).unwrap();
        assert_eq!(e["error"]["code"], -32700);
        assert!(e["id"].is_null());
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,200}") {
            if let Ok(Body::Batch(items)) = Body::parse(&s) {
                for i in items { let _ = Request::parse(i); }
            } else if let Ok(Body::Single(i)) = Body::parse(&s) {
                let _ = Request::parse(i);
            }
        }
    }

    #[test]
    fn the_one_pass_parse_agrees_with_the_careful_one() {
        let texts = [
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"eth_getBalance","params":["0x1","latest"]}"#,
            r#"{"jsonrpc":"2.0","method":"eth_x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"eth_x"}"#,
            r#"{"jsonrpc":"2.0","id":{"o":1},"method":"eth_x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","method":"n"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"e\u0074h_x"}"#,
            r#"{}"#,
        ];
        let show = |r: Result<Request<'_>, ItemError<'_>>| match r {
            Ok(q) => format!("ok {:?} {} {:?}", q.id.map(RawValue::get), q.method, q.params.map(RawValue::get)),
            Err(e) => format!("err {:?} {:?}", e.id.map(RawValue::get), e.error),
        };
        for text in texts {
            assert_eq!(show(Request::parse_str(text)), show(Request::parse(raw(text))), "{text}");
        }
        // Not JSON at all, or trailing bytes: refused here, so the caller's careful path reports the parse error.
        for text in [r#"{"jsonrpc":"2.0","id":1,"method":"m"} x"#, r#"{"jsonrpc":"2.0","#, "", "[1]"] {
            assert!(Request::parse_str(text).is_err(), "{text}");
        }
    }
}
