//! `Request::scan` against `Request::parse_str`: whenever the scan answers, it answers what serde reads.

use super::super::{ItemError, Request};
use proptest::prelude::*;
use serde_json::value::RawValue;

fn show(r: &Request<'_>) -> String {
    format!("{:?} {} {:?}", r.id.map(RawValue::get), r.method, r.params.map(RawValue::get))
}

fn careful(text: &str) -> Result<String, String> {
    Request::parse_str(text).map(|r| show(&r)).map_err(|e: ItemError<'_>| format!("{:?}", e.error))
}

/// The property: a request from the scan is the request serde reads from the same text.
fn agrees(text: &str) -> Result<(), TestCaseError> {
    if let Some(fast) = Request::scan(text) {
        prop_assert_eq!(Ok(show(&fast)), careful(text), "{}", text);
    }
    Ok(())
}

#[test]
fn the_common_bodies_are_read_and_agree_with_serde() {
    let bodies = [
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":"a-b","method":"eth_getBalance","params":["0x1","latest"]}"#,
        r#"{"id":null,"params":{"a":[1,{"b":"]}"}]},"method":"m","jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","method":"eth_x"}"#,
        " \n{ \"jsonrpc\" : \"2.0\" ,\t\"id\" : -1.5e638 , \"method\" : \"m\" , \"params\" : [ \"a\\\"]\" ] }\r\n",
        r#"{"jsonrpc":"2.0","id":0,"method":"méthode","params":[[[[]]]]}"#,
    ];
    for text in bodies {
        let Some(fast) = Request::scan(text) else { panic!("the scan must read {text}") };
        assert_eq!(Ok(show(&fast)), careful(text), "{text}");
    }
}

#[test]
fn unusual_or_invalid_bodies_are_left_to_the_careful_path() {
    let deep = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{}{}}}"#, "[".repeat(65), "]".repeat(65));
    let bodies = [
        // Escapes and control characters: serde's to read.
        r#"{"jsonrpc":"2.0","id":1,"method":"e\u0074h_x"}"#,
        r#"{"jsonrpc":"2.0","id":1,"me\u0074hod":"m"}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\tx\"}",
        r#"{"jsonrpc":"2.0","id":"a\"b","method":"m"}"#,
        // Keys: unknown, repeated, missing.
        r#"{"jsonrpc":"2.0","id":1,"method":"m","extra":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","method":"n"}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"m"}"#,
        r#"{"id":1,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        "{}",
        // Wrong values.
        r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
        r#"{"jsonrpc":2.0,"id":1,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":true,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":01,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1.,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":nul,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#,
        // Not JSON, or not one object.
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1,]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":["]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m",}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m"} x"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1 "method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m""#,
        "\u{c}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}",
        r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
        "",
        "{",
        &deep,
    ];
    for text in bodies {
        assert!(Request::scan(text).is_none(), "the scan must leave this to serde: {text}");
    }
}

/// One envelope member, valid or not, as text.
fn member() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just("1".to_owned()),
        Just("-0.5e-3".to_owned()),
        Just("null".to_owned()),
        Just("\"x\"".to_owned()),
        Just("01".to_owned()),
        Just("1e".to_owned()),
        Just("\"a\\nb\"".to_owned()),
        Just("true".to_owned()),
        Just("[1]".to_owned()),
    ];
    let method = prop_oneof![
        Just("\"eth_call\"".to_owned()),
        Just("\"e\\u0074h\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("5".to_owned()),
    ];
    let params = prop_oneof![
        Just("[]".to_owned()),
        Just("[\"0x1\",\"latest\"]".to_owned()),
        Just("{\"a\":[{\"b\":\"}]\\\"\"}]}".to_owned()),
        Just("[1,]".to_owned()),
        Just("[{]".to_owned()),
        Just("null".to_owned()),
        "[\\[\\]{}\",:0-9a\\\\ ]{0,24}",
    ];
    let version = prop_oneof![Just("\"2.0\"".to_owned()), Just("\"1.0\"".to_owned()), Just("2".to_owned())];
    prop_oneof![
        version.prop_map(|v| format!("\"jsonrpc\":{v}")),
        id.prop_map(|v| format!("\"id\":{v}")),
        method.prop_map(|v| format!("\"method\":{v}")),
        params.prop_map(|v| format!("\"params\":{v}")),
        Just("\"other\":1".to_owned()),
    ]
}

proptest! {
    #[test]
    fn built_envelopes_agree(members in proptest::collection::vec(member(), 0..6), ws in "[ \t\n]{0,2}") {
        let text = format!("{ws}{{{ws}{}{ws}}}{ws}", members.join(&format!("{ws},{ws}")));
        agrees(&text)?;
    }

    #[test]
    fn arbitrary_text_agrees(text in ".{0,120}") {
        agrees(&text)?;
    }

    #[test]
    fn cut_or_changed_common_bodies_agree(cut in 0usize..80, at in 0usize..80, byte in "[\\[\\]{}\",:\\\\ a0]") {
        let base = r#"{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0x1","latest"]}"#;
        agrees(base.get(..cut).unwrap_or(base))?;
        let mut changed = base.to_owned();
        if at < changed.len() {
            changed.replace_range(at..at + 1, &byte);
        }
        agrees(&changed)?;
    }
}
