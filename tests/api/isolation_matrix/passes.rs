//! The matrix's further passes (issue 22): the same credentials and hosts against
//! bodies with an unknown field, against `GET /events`, and the caps on open streams.
use serde_json::json;

use super::{Access, Cred, Endpoint, Host, intended, succeeded};
use crate::helpers::*;

/// Streams one credential may hold in the matrix's server (its configuration).
pub const STREAMS_PER_CREDENTIAL: usize = 2;
/// Streams one tenant may hold in the matrix's server.
pub const STREAMS_PER_TENANT: usize = 4;

fn headers(cred: &Cred) -> Vec<(&str, &str)> {
    cred.headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

/// Every body that was let in, sent again by the same credential on the same host with
/// one unknown field: each must be `400 invalid_json`, naming the field. Returns what
/// went wrong, and how many requests were sent.
pub async fn unknown_fields(
    app: &TestApp,
    endpoints: &[Endpoint],
    creds: &[Cred],
    results: &[Vec<Vec<Reply>>],
    n: &mut usize,
) -> (Vec<String>, usize) {
    let (mut wrong, mut sent) = (Vec::new(), 0);
    for (ei, ep) in endpoints.iter().enumerate() {
        let Some(body) = ep.body else { continue };
        for (hi, &host) in Host::ALL.iter().enumerate() {
            for (ci, cred) in creds.iter().enumerate() {
                if !succeeded(&results[ei][hi][ci]) {
                    continue;
                }
                *n += 1;
                sent += 1;
                let mut b = body(*n);
                b["bogus_field"] = json!(1);
                let r = send(
                    app,
                    ep.method,
                    host.name(),
                    &ep.path,
                    &headers(cred),
                    Some(&b),
                )
                .await;
                let named = r.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("bogus_field"));
                if (r.status.as_u16(), r.code()) != (400, "invalid_json") || !named {
                    wrong.push(format!(
                        "{} {} on {} with {} and an unknown field: {} {}",
                        ep.method,
                        ep.path,
                        host.name(),
                        cred.label,
                        r.status,
                        r.body
                    ));
                }
            }
        }
    }
    (wrong, sent)
}

/// `GET /events` with every credential on every host: let in exactly where tenant
/// reads are, refused like any other endpoint elsewhere. A stream that is let in is
/// read to its greeting and closed.
pub async fn event_streams(app: &TestApp, creds: &[Cred]) -> (Vec<String>, usize) {
    let (mut wrong, mut sent) = (Vec::new(), 0);
    for &host in &Host::ALL {
        for cred in creds {
            sent += 1;
            let expected = intended(Access::TenantRead, cred, host);
            let mut res = subscribe_with(app, host.name(), &headers(cred)).await;
            let status = res.status().as_u16();
            if status == 200 {
                let mut greeting = String::new();
                until_subscribed(&mut res, &mut greeting).await;
            }
            let refusal_ok = if host == Host::Malformed {
                status == 400
            } else {
                [401, 403, 404].contains(&status)
            };
            if (status == 200) != expected || (status != 200 && !refusal_ok) {
                wrong.push(format!(
                    "GET /events on {} with {}: {status} (expected {})",
                    host.name(),
                    cred.label,
                    if expected { "a stream" } else { "a refusal" }
                ));
            }
        }
    }
    (wrong, sent)
}

/// A stream of the tenant at `host` opened with `key`, read to its greeting; or the
/// refusal.
async fn try_stream(
    app: &TestApp,
    host: &str,
    key: &str,
) -> Result<impl futures_util::Stream + use<>, Reply> {
    let mut res = subscribe_with(app, host, &[("Authorization", key)]).await;
    if res.status().as_u16() != 200 {
        return Err(read(res).await);
    }
    let mut greeting = String::new();
    until_subscribed(&mut res, &mut greeting).await;
    Ok(res)
}

/// `opened` must be a `429 too_many_streams`.
fn refused<S>(opened: Result<S, Reply>, what: &str, wrong: &mut Vec<String>) {
    match opened {
        Ok(_) => wrong.push(format!("{what}: a stream was let in beyond the cap")),
        Err(r) if (r.status.as_u16(), r.code()) != (429, "too_many_streams") => {
            wrong.push(format!("{what}: {} {}", r.status, r.body));
        }
        Err(_) => {}
    }
}

/// The caps on open streams, on a tenant of their own: one credential holds at most
/// [`STREAMS_PER_CREDENTIAL`], the tenant at most [`STREAMS_PER_TENANT`]; beyond, `429
/// too_many_streams`; another tenant is not affected.
pub async fn stream_caps(app: &TestApp, vendor_key: &str, signing_secret: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let t = add_tenant(app, vendor_key, signing_secret, "streamer", &ECU).await;
    let mut keys = Vec::new();
    for _ in 0..4 {
        let k = add_farm_key(app, &t).await;
        keys.push(format!("Bearer {}", k["api_key"].as_str().unwrap()));
    }
    let mut held = Vec::new();
    // One key up to its cap, then one more.
    for _ in 0..STREAMS_PER_CREDENTIAL {
        match try_stream(app, &t.host, &keys[0]).await {
            Ok(s) => held.push(s),
            Err(r) => wrong.push(format!(
                "a stream within the key's cap: {} {}",
                r.status, r.body
            )),
        }
    }
    refused(
        try_stream(app, &t.host, &keys[0]).await,
        "beyond the key's cap",
        &mut wrong,
    );
    // Other keys up to the tenant's cap, then one more.
    for key in &keys[1..STREAMS_PER_TENANT - STREAMS_PER_CREDENTIAL + 1] {
        match try_stream(app, &t.host, key).await {
            Ok(s) => held.push(s),
            Err(r) => wrong.push(format!(
                "a stream within the tenant's cap: {} {}",
                r.status, r.body
            )),
        }
    }
    refused(
        try_stream(app, &t.host, &keys[3]).await,
        "beyond the tenant's cap",
        &mut wrong,
    );
    // Other tenants keep their own allowance.
    let other = bootstrap(app, "capless", "unaffected", &ECU).await;
    if let Err(r) = try_stream(app, &other.host, &format!("Bearer {}", other.admin_key)).await {
        wrong.push(format!("another tenant's stream: {} {}", r.status, r.body));
    }
    drop(held);
    wrong
}
