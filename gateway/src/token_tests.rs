use super::*;
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn claims() -> Claims {
    Claims { id: "abc123".into(), subject: "explorer backend".into(), tier: "gold".into(), expires_at: 2_000 }
}

#[test]
fn round_trip_and_size() {
    let k = key(1);
    let t = issue(&k, &claims()).unwrap();
    assert!(t.len() < 160, "{}", t.len());
    assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{t}");
    assert_eq!(verify(&t, &[k.verifying_key()], 1_999).unwrap(), claims());
}

#[test]
fn any_of_several_keys_verifies() {
    let (a, b) = (key(1), key(2));
    let keys = [a.verifying_key(), b.verifying_key()];
    for k in [&a, &b] {
        assert!(verify(&issue(k, &claims()).unwrap(), &keys, 0).is_ok());
    }
}

#[test]
fn refusals_name_the_reason() {
    let k = key(1);
    let keys = [k.verifying_key()];
    let t = issue(&k, &claims()).unwrap();
    assert_eq!(verify(&t, &keys, 2_000), Err(TokenError::Expired { expires_at: 2_000 }));
    assert_eq!(verify(&t, &[key(2).verifying_key()], 0), Err(TokenError::UnknownKey));
    // Same key id, different key: a forged signature, not an unknown key.
    let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    let n = raw.len();
    raw[n - 1] ^= 1;
    assert_eq!(verify(&URL_SAFE_NO_PAD.encode(&raw), &keys, 0), Err(TokenError::BadSignature));
    // A changed claim (expiry pushed out) no longer matches the signature.
    let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    raw[12] ^= 0xff;
    assert_eq!(verify(&URL_SAFE_NO_PAD.encode(&raw), &keys, 0), Err(TokenError::BadSignature));
    for (bad, why) in [
        ("", "too short"),
        ("!!!!", "not base64url"),
        (&t[..t.len() - 3], "not base64url or too short"),
        (&"A".repeat(10_000), "too long"),
        (&format!("{t}="), "padding"),
    ] {
        assert!(matches!(verify(bad, &keys, 0), Err(TokenError::Malformed(_))), "{why}");
    }
    let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    raw[0] = 2;
    assert_eq!(verify(&URL_SAFE_NO_PAD.encode(&raw), &keys, 0), Err(TokenError::Malformed("unknown version")));
}

#[test]
fn issue_refuses_claims_the_format_cannot_carry() {
    let k = key(1);
    for c in [
        Claims { id: String::new(), ..claims() },
        Claims { id: "a b".into(), ..claims() },
        Claims { id: "x".repeat(65), ..claims() },
        Claims { tier: "Gold".into(), ..claims() },
        Claims { tier: String::new(), ..claims() },
        Claims { subject: "a\nb".into(), ..claims() },
        Claims { subject: "s".repeat(129), ..claims() },
    ] {
        assert!(issue(&k, &c).is_err(), "{c:?}");
    }
}

#[test]
fn key_files_round_trip_and_bad_ones_are_explained() {
    let k = key(7);
    let text = secret_key_file(&k);
    assert_eq!(parse_secret_key(&text).unwrap().to_bytes(), k.to_bytes());
    let pk = encode_public_key(&k.verifying_key());
    assert_eq!(pk.len(), 43);
    assert!(text.contains(&pk));
    assert_eq!(parse_public_keys(&format!("# ops key\n{pk}  # current\n\n")).unwrap(), vec![k.verifying_key()]);
    assert!(parse_public_keys("# nothing\n").is_err());
    assert!(parse_public_key("abc").unwrap_err().to_string().contains("32 bytes"));
    assert!(parse_public_key("@@@").unwrap_err().to_string().contains("base64url"));
    assert!(parse_public_key(&"A".repeat(5000)).is_err());
    assert!(parse_secret_key("").is_err());
    assert!(parse_secret_key(&format!("{pk}\n{pk}\n")).is_err());
}

#[test]
fn secret_key_file_is_0600_and_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    write_secret_key(&p, &key(1), false).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(write_secret_key(&p, &key(2), false).is_err());
    assert_eq!(read_secret_key(&p).unwrap().to_bytes(), key(1).to_bytes());
    write_secret_key(&p, &key(2), true).unwrap();
    assert_eq!(read_secret_key(&p).unwrap().to_bytes(), key(2).to_bytes());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,700}") {
        let _ = verify(&s, &[key(1).verifying_key()], 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_verify(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
        let t = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert!(verify(&t, &[key(1).verifying_key()], 0).is_err());
    }

    #[test]
    fn any_valid_claims_round_trip(
        id in "[A-Za-z0-9._:-]{1,64}",
        tier in "[a-z0-9_-]{1,32}",
        subject in "[^\\p{Cc}]{0,30}",
        exp in any::<u64>(),
    ) {
        let k = key(3);
        let c = Claims { id, subject, tier, expires_at: exp };
        let t = issue(&k, &c).unwrap();
        prop_assert!(t.len() <= MAX_TOKEN_CHARS);
        let d = decode(&t).unwrap();
        prop_assert_eq!(&d.claims, &c);
        prop_assert!(d.verify_signature(&[k.verifying_key()]).is_ok());
    }

    #[test]
    fn flipping_any_bit_is_refused(pos in 0usize..1000, bit in 0u8..8) {
        let k = key(4);
        let t = issue(&k, &claims()).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let i = pos % raw.len();
        raw[i] ^= 1 << bit;
        prop_assert!(verify(&URL_SAFE_NO_PAD.encode(&raw), &[k.verifying_key()], 0).is_err());
    }
}

#[test]
fn revocation_list_format() {
    let p = Path::new("r");
    let ids = parse_revocation_list(p, "a\n\n  b  # why\n# c\n").unwrap();
    assert_eq!(ids.len(), 2);
    let e = parse_revocation_list(p, "a\nb c\n").unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(parse_revocation_bytes(p, b"a\n\xff\n").unwrap_err().to_string().contains("line 2"));
}
