//! The Host parser must accept any byte string without panicking, and a tenant context
//! must always name a valid tenant id exactly one label below a base domain; case and
//! an added port never change the answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permetrix::http::host::{BaseDomains, HostContext, canonical_host};

fuzz_target!(|data: &[u8]| {
    let Ok(host) = std::str::from_utf8(data) else {
        return;
    };
    let bases = BaseDomains::new([
        "localhost".to_owned(),
        "permetrix.fly.dev".to_owned(),
        "fly.dev".to_owned(),
    ]);
    let ctx = bases.classify(host);
    if let HostContext::Tenant(id) = &ctx {
        let canonical = canonical_host(host);
        let under = bases
            .as_slice()
            .iter()
            .any(|b| canonical == format!("{id}.{b}"));
        assert!(under, "{host:?} classified as tenant {id:?}");
        assert!(permetrix_storage::TenantId::parse(id.as_str()).is_ok());
    }
    assert_eq!(bases.classify(&host.to_ascii_uppercase()), ctx);
    if !host.contains([':', '[']) && host.trim() == host {
        assert_eq!(bases.classify(&format!("{host}:8443")), ctx);
    }
});
