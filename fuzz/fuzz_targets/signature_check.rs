//! The signature verifier must refuse (never accept, never panic on) anything not
//! signed with the secret: arbitrary headers, bodies, policies and clocks.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use permetrix::auth::api_key;
use permetrix::auth::signature::{self, NonceCache, SignatureHeaders, Signed};
use permetrix_storage::records::SignaturePolicy;
use secrecy::SecretSlice;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0x00: signature, timestamp, vendor, version, nonce, api key,
    // tool, user, body; the first byte picks the policy and whether the tool is known.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.split(|b| *b == 0);
    let mut next = || fields.next().map(String::from_utf8_lossy);
    let (sig, ts, vendor, version, nonce) = (next(), next(), next(), next(), next());
    let api_key = next().unwrap_or_default();
    let tool = next().unwrap_or_default();
    let user = next().unwrap_or_default();
    let body = next().unwrap_or_default();
    let _ = api_key::parse(&api_key);

    let policy = match mode % 3 {
        0 => SignaturePolicy::Off,
        1 => SignaturePolicy::V1,
        _ => SignaturePolicy::V2,
    };
    let headers = SignatureHeaders {
        signature: sig.as_deref(),
        timestamp: ts.as_deref(),
        vendor_id: vendor.as_deref(),
        version: version.as_deref(),
        nonce: nonce.as_deref(),
    };
    let signed = Signed {
        tool: &tool,
        user: &user,
        method: "POST",
        path: "/licenses/borrow",
        body: body.as_bytes(),
        api_key: &api_key,
    };
    let secrets = |_: &str| Arc::new(vec![SecretSlice::from(b"fuzz-signing-secret".to_vec())]);
    let now = ts.as_deref().and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    let tool_vendor = (mode & 4 != 0).then_some("vector");
    let nonces = NonceCache::new(64);
    let result = signature::check(policy, &headers, &signed, tool_vendor, secrets, &nonces, now);
    if policy != SignaturePolicy::Off {
        assert!(result.is_err(), "accepted an unsigned request: {headers:?}");
    }
});
