//! Access tokens (`gateway/src/token.rs`), the bytes a client puts in `Authorization: Bearer …` or `?token=`:
//! `decode`, then `verify` against a trusted key (the key that signed the seed tokens), as the auth layer
//! does. The same input is also read as the public key file, the secret key file and the revocation list,
//! the operator-side inputs of the same module.
//!
//! Checked beyond "no panic": `verify` accepts only what `decode` accepts, with the same claims; and any
//! decoded claims, re-issued with the trusted key, verify to themselves (the format round-trips).

#![no_main]

use ed25519_dalek::SigningKey;
use iotex_gateway::token;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// The seed tokens' signer (`fuzz/make-corpus.py` uses the same 32 bytes).
const SEED_KEY: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&SEED_KEY);
    let trusted = [key.verifying_key()];
    let text = String::from_utf8_lossy(data);
    let decoded = token::decode(&text);
    // now = 1: only a token that expires at 0 is expired, so most signed seeds verify.
    let verified = token::verify(&text, &trusted, 1);
    match (&decoded, &verified) {
        (Err(d), Err(v)) => assert_eq!(d, v, "decode and verify refuse for different reasons"),
        (Ok(d), Ok(claims)) => assert_eq!(&d.claims, claims),
        (Ok(_), Err(_)) => {}
        (Err(d), Ok(c)) => panic!("verify accepted {c:?} although decode refused: {d}"),
    }
    if let Ok(d) = decoded {
        let reissued = match token::issue(&key, &d.claims) {
            Ok(t) => t,
            Err(e) => panic!("decoded claims cannot be re-issued: {e} ({:?})", d.claims),
        };
        let again = token::verify(&reissued, &trusted, d.claims.expires_at.saturating_sub(1));
        if d.claims.expires_at > 0 {
            assert_eq!(again.as_ref(), Ok(&d.claims), "re-issued token does not verify to its claims");
        }
    }
    let _ = token::parse_public_keys(&text);
    let _ = token::parse_secret_key(&text);
    let _ = token::parse_revocation_bytes(Path::new("fuzz"), data);
});
