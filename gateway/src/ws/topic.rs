//! What a client can subscribe to, and what a subscription delivers.
//!
//! A topic is `newHeads`, or `logs` with one canonical filter (addresses and topics lower-cased, address
//! lists sorted, trailing `null` topics dropped), so two clients asking for the same logs in different
//! spellings are the same topic. A leaf of `ws/`: the hub, the upstream task and the sessions all name topics
//! and events, and none of them has to import another for it.

use serde_json::Value;
use std::sync::Arc;

/// One event of a topic: the `result` of an `eth_subscription` notification, as raw JSON.
pub type Event = Arc<str>;

/// What a client can subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `eth_subscribe ["newHeads"]`.
    NewHeads,
    /// `eth_subscribe ["logs", filter]`, with the filter in canonical JSON.
    Logs(String),
}

impl Topic {
    /// Parses `eth_subscribe` params; the error says what is accepted.
    pub fn parse(params: &Value) -> Result<Topic, String> {
        let args =
            params.as_array().ok_or("eth_subscribe params must be an array: [\"newHeads\"] or [\"logs\", {…}]")?;
        match args.first().and_then(Value::as_str) {
            Some("newHeads") if args.len() == 1 => Ok(Topic::NewHeads),
            Some("newHeads") => Err("newHeads takes no options".into()),
            Some("logs") if args.len() <= 2 => canonical_filter(args.get(1)).map(Topic::Logs),
            Some("logs") => Err("logs takes one filter object".into()),
            Some(other) => Err(format!(
                "unsupported subscription `{}`; this gateway serves `newHeads` and `logs`",
                other.chars().take(64).collect::<String>()
            )),
            None => Err("the first param must be the subscription name: `newHeads` or `logs`".into()),
        }
    }

    /// The metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Topic::NewHeads => "newHeads",
            Topic::Logs(_) => "logs",
        }
    }

    /// The hub's key for the topic.
    pub fn key(&self) -> String {
        match self {
            Topic::NewHeads => "newHeads".into(),
            Topic::Logs(f) => format!("logs:{f}"),
        }
    }
}

fn hex_of_len(v: &Value, bytes: usize, what: &str) -> Result<String, String> {
    let s = v.as_str().ok_or_else(|| format!("{what} must be a 0x-prefixed hex string"))?;
    let ok = s.len() == 2 + 2 * bytes && s.starts_with("0x") && s.as_bytes().iter().skip(2).all(u8::is_ascii_hexdigit);
    if !ok {
        return Err(format!("{what} must be 0x followed by {} hex digits", 2 * bytes));
    }
    Ok(s.to_ascii_lowercase())
}

fn sorted_list(v: &Value, bytes: usize, what: &str) -> Result<Vec<String>, String> {
    let mut list = match v {
        Value::Array(items) => items.iter().map(|i| hex_of_len(i, bytes, what)).collect::<Result<Vec<_>, _>>()?,
        one => vec![hex_of_len(one, bytes, what)?],
    };
    list.sort();
    list.dedup();
    Ok(list)
}

/// The canonical form of a `logs` filter: only `address` and `topics`, as `eth_subscribe` defines them.
fn canonical_filter(filter: Option<&Value>) -> Result<String, String> {
    let empty = serde_json::Map::new();
    let obj = match filter {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err("the logs filter must be an object with `address` and/or `topics`".into()),
    };
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "address" | "topics")) {
        return Err(format!(
            "logs filter key `{}` is not supported; a subscription filter has only `address` and `topics`",
            k.chars().take(64).collect::<String>()
        ));
    }
    let address = match obj.get("address") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => sorted_list(v, 20, "address")?,
    };
    let mut topics: Vec<Option<Vec<String>>> = match obj.get("topics") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ts)) if ts.len() <= 4 => ts
            .iter()
            .map(|t| match t {
                Value::Null => Ok(None),
                v => sorted_list(v, 32, "a topic").map(Some),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("topics must be an array of at most 4 entries".into()),
    };
    // A trailing wildcard matches the same logs as no entry at all.
    while topics.last().is_some_and(Option::is_none) {
        topics.pop();
    }
    // Built by hand so the key's field order does not depend on serde_json's map features.
    let mut out = String::from("{");
    if !address.is_empty() {
        out.push_str("\"address\":");
        out.push_str(&serde_json::to_string(&address).map_err(|e| e.to_string())?);
    }
    if !topics.is_empty() {
        if !address.is_empty() {
            out.push(',');
        }
        out.push_str("\"topics\":");
        out.push_str(&serde_json::to_string(&topics).map_err(|e| e.to_string())?);
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_parse_and_filters_are_canonical() {
        assert_eq!(Topic::parse(&json!(["newHeads"])).unwrap(), Topic::NewHeads);
        let a = "0x00000000000000000000000000000000000000AA";
        let b = "0x00000000000000000000000000000000000000bb";
        let t = format!("0x{}", "Ab".repeat(32));
        let one = Topic::parse(&json!(["logs", {"address": [b, a, a], "topics": [t, null, null]}])).unwrap();
        let two =
            Topic::parse(&json!(["logs", {"topics": [t.to_lowercase()], "address": [a.to_lowercase(), b]}])).unwrap();
        assert_eq!(one, two);
        assert_eq!(Topic::parse(&json!(["logs"])).unwrap(), Topic::Logs("{}".into()));
        assert_eq!(Topic::parse(&json!(["logs", {"address": a}])).unwrap().kind(), "logs");
        for (bad, want) in [
            (json!(["newPendingTransactions"]), "unsupported subscription `newPendingTransactions`"),
            (json!(["syncing"]), "unsupported"),
            (json!([]), "first param"),
            (json!({"a": 1}), "array"),
            (json!(["logs", {"fromBlock": "0x1"}]), "`fromBlock` is not supported"),
            (json!(["logs", {"address": "0x12"}]), "address"),
            (json!(["logs", {"topics": [1]}]), "topic"),
            (json!(["logs", 5]), "object"),
            (json!(["newHeads", {}]), "no options"),
        ] {
            let e = Topic::parse(&bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
