//! The scanner finds every planted form of every kind of secret, ignores the secrets directory and clean lines,
//! and registered run-time secrets are read back in their derived forms.
#![allow(clippy::unwrap_used)]

use super::*;

fn plant(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn kinds(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.what.clone()).collect()
}

#[test]
fn a_clean_run_has_no_hit_and_counts_what_it_read() {
    let d = tempfile::tempdir().unwrap();
    plant(d.path(), "1.tracing.jsonl", "{\"msg\":\"served\",\"method\":\"eth_chainId\"}\nline two test test\n");
    let (hits, files, lines) = scan(d.path(), &secrets(d.path())).unwrap();
    assert_eq!(hits, vec![]);
    assert_eq!((files, lines), (1, 2));
}

#[test]
fn every_planted_form_of_a_dev_key_is_found() {
    let bare = DEV_KEYS[1].trim_start_matches("0x");
    let bytes = alloy_primitives::hex::decode(bare).unwrap();
    let planted = [
        format!("key={}", DEV_KEYS[1]),
        format!("key=\"{bare}\""),
        format!("KEY={}", bare.to_ascii_uppercase()),
        format!("seed: {bytes:?}"),
        format!("b64 {}", base64::engine::general_purpose::STANDARD.encode(&bytes)),
        format!("b64url {}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)),
    ];
    for p in planted {
        let d = tempfile::tempdir().unwrap();
        plant(d.path(), "1.tracing.jsonl", &format!("clean\n{p}\n"));
        let (hits, _, _) = scan(d.path(), &secrets(d.path())).unwrap();
        assert!(kinds(&hits).contains(&"dev key 1".to_owned()), "not found in {p:?}: {hits:?}");
        assert!(hits.iter().all(|h| h.line == 2), "{hits:?}");
    }
}

#[test]
fn the_mnemonic_is_found_whole_and_as_its_run_of_words() {
    let words: Vec<&str> = DEV_MNEMONIC.split(' ').collect();
    let planted = [
        DEV_MNEMONIC.to_owned(),
        serde_json::to_string(&words).unwrap(),
        words.join(",").to_ascii_uppercase(),
        words.join("\\n"),
    ];
    for p in planted {
        let d = tempfile::tempdir().unwrap();
        plant(d.path(), "9.injector.log", &p);
        let (hits, _, _) = scan(d.path(), &secrets(d.path())).unwrap();
        assert!(kinds(&hits).contains(&"dev mnemonic".to_owned()), "not found in {p:?}");
    }
    // Eleven of the twelve words are not the mnemonic.
    let d = tempfile::tempdir().unwrap();
    plant(d.path(), "9.injector.log", &words[..11].join(" "));
    assert_eq!(scan(d.path(), &secrets(d.path())).unwrap().0, vec![]);
}

#[test]
fn basic_auth_and_registered_tokens_are_found_and_the_secrets_dir_is_skipped() {
    let d = tempfile::tempdir().unwrap();
    plant(d.path(), "1.metrics.prom", "up{url=\"http://ops:s3cret@127.0.0.1\"} 1\n");
    std::fs::write(d.path().join("secrets/1.txt"), "token\tTOKEN-abc_123\nhex-key\t0xabababab\n").unwrap();
    plant(d.path(), "sub/2.gateway.log", "auth with TOKEN-abc_123 ok\nkey ABABABAB\n");
    let (hits, files, _) = scan(d.path(), &secrets(d.path())).unwrap();
    // The secrets file itself holds the token, but is never scanned.
    assert_eq!(files, 2);
    let mut k = kinds(&hits);
    k.sort();
    k.dedup();
    assert_eq!(k, vec!["basic auth", "hex-key", "token"]);
}

#[test]
fn the_report_of_a_planted_secret_names_its_kind_and_place_never_its_value() {
    let d = tempfile::tempdir().unwrap();
    plant(d.path(), "1.tracing.jsonl", &format!("{{\"msg\":\"signing with {}\"}}\n", DEV_KEYS[0]));
    let (hits, _, _) = scan(d.path(), &secrets(d.path())).unwrap();
    assert!(!hits.is_empty());
    // What the binary prints names the secret's kind and place, never its value.
    let report = report(&hits);
    assert!(report.contains("dev key 0") && report.contains("1.tracing.jsonl:1"), "{report}");
    assert!(!report.contains(DEV_KEYS[0].trim_start_matches("0x")), "{report}");
}
