//! What the security layer costs on the hot path: verifying an API key (with the
//! `last_used_at` update), verifying a portal session cookie, a signed borrow's
//! signature check, the rate limiter, and the Host parser.
//!
//! `cargo bench --bench security`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::test::TestRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use permetrix::auth::signature::{self, SignatureHeaders, Signed};
use permetrix::auth::{identify_key, session};
use permetrix::http::host::{BaseDomains, HostContext};
use permetrix::http::rate_limit::{KeyedLimiter, Rate};
use permetrix::server::{Application, ServeConfig};
use permetrix_client::signing;
use permetrix_storage::records::{SessionSubject, SignaturePolicy};
use permetrix_storage::{TenantId, Timestamp};
use secrecy::SecretSlice;

fn edge(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let system = actix_rt::System::new();
    let mut config = ServeConfig::new(dir.path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.workers = 1;
    config.arbiters = 1;
    config.handle_signals = false;
    config.admin_token = Some("bench-operator".into());
    let app = system.block_on(Application::build(config)).unwrap();
    let state = app.state();
    let acme = TenantId::parse("acme").unwrap();
    let (key, token) = system.block_on(async {
        let vendor = permetrix_storage::VendorId::parse("vector").unwrap();
        permetrix::api::accounts::create_vendor(
            &state,
            permetrix::api::accounts::NewVendor {
                vendor_id: vendor.clone(),
                vendor_name: "V".into(),
                contact_email: None,
                password: None,
                signing_secret: None,
            },
        )
        .await
        .unwrap();
        let created = permetrix::api::accounts::create_tenant(
            &state,
            &vendor,
            permetrix::api::accounts::NewTenant {
                tenant_id: acme.clone(),
                company_name: "ACME".into(),
                domain: None,
                crm_id: None,
                custom_hosts: Vec::new(),
            },
        )
        .await
        .unwrap();
        let req = TestRequest::default()
            .insert_header(("Host", "vendor.localhost"))
            .to_http_request();
        let (token, _) = session::create(
            &state,
            &req,
            SessionSubject::Vendor {
                vendor_id: "vector".into(),
            },
        )
        .await
        .unwrap();
        (created.admin_api_key, token)
    });
    // The vendor has no password: give it one so that its session is live.
    let vector = permetrix_storage::VendorId::parse("vector").unwrap();
    system
        .block_on(async {
            state
                .platform
                .set_vendor_password(&vector, "unused".into())
                .unwrap()
                .unwrap()
                .wait()
                .await
        })
        .unwrap();

    let mut g = c.benchmark_group("edge");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("api_key_verify_with_usage_touch", |b| {
        b.iter(|| identify_key(&state, black_box(&key)).unwrap().unwrap())
    });
    let digest = [7u8; 32];
    g.bench_function("usage_touch_alone", |b| {
        b.iter(|| {
            state
                .security
                .key_usage
                .touch(&digest, &acme, "k", Timestamp::from_secs(1))
        })
    });
    let req = TestRequest::default()
        .insert_header(("Host", "vendor.localhost"))
        .insert_header(("Cookie", format!("pmx_session={token}")))
        .to_http_request();
    req.extensions_mut().insert(HostContext::Vendor);
    g.bench_function("session_cookie_verify", |b| {
        b.iter(|| {
            session::authenticate(&state, black_box(&req))
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
    drop(app);
}

fn signatures(c: &mut Criterion) {
    let secret = b"vendor-signing-secret-0123456789abcdef".to_vec();
    let secrets = Arc::new(vec![SecretSlice::from(secret.clone())]);
    let body = br#"{"tool":"ECU Development Suite","user":"dev1@acme.com"}"#;
    let signed = Signed {
        tool: "ECU Development Suite",
        user: "dev1@acme.com",
        method: "POST",
        path: "/licenses/borrow",
        body,
        api_key: "pmx_t_acme_k1_s3cr3t",
    };
    let now = 1_795_749_205;
    let v1 = signing::sign(
        &secret,
        &signing::v1_string(signed.tool, signed.user, "1795749205", signed.api_key),
    );
    let mut g = c.benchmark_group("signature");
    g.bench_function("v1_check", |b| {
        let h = SignatureHeaders {
            signature: Some(&v1),
            timestamp: Some("1795749205"),
            vendor_id: Some("vector"),
            ..Default::default()
        };
        b.iter(|| {
            signature::check(
                SignaturePolicy::V1,
                &h,
                &signed,
                Some("vector"),
                |_| Arc::clone(&secrets),
                now,
            )
            .unwrap()
        })
    });
    let counter = AtomicU64::new(0);
    // The verification only: the nonce is checked and recorded by the tenant's actor
    // (part of the borrow benches since issue 22).
    g.bench_function("v2_check_fresh_nonce", |b| {
        b.iter_batched(
            || {
                let nonce = format!("n{}", counter.fetch_add(1, Ordering::Relaxed));
                let s = signing::v2_string(
                    "POST",
                    "/licenses/borrow",
                    "1795749205",
                    &nonce,
                    body,
                    signed.api_key,
                );
                (nonce, signing::sign(&secret, &s))
            },
            |(nonce, sig)| {
                let h = SignatureHeaders {
                    signature: Some(&sig),
                    timestamp: Some("1795749205"),
                    vendor_id: Some("vector"),
                    version: Some("2"),
                    nonce: Some(&nonce),
                };
                signature::check(
                    SignaturePolicy::V2,
                    &h,
                    &signed,
                    Some("vector"),
                    |_| Arc::clone(&secrets),
                    now,
                )
                .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn limits(c: &mut Criterion) {
    let limiter = KeyedLimiter::new(Rate::new(u32::MAX, Duration::from_millis(1)), 1 << 16);
    let bases = BaseDomains::new(["localhost".to_owned(), "permetrix.fly.dev".to_owned()]);
    let mut g = c.benchmark_group("limits");
    g.bench_function("rate_limit_check", |b| {
        b.iter(|| limiter.check(black_box(("keys", "acme", "k1")), 1_000))
    });
    g.bench_function("host_classify", |b| {
        b.iter(|| bases.classify(black_box("ACME.permetrix.fly.dev:443")))
    });
    g.finish();
}

criterion_group!(benches, edge, signatures, limits);
criterion_main!(benches);
