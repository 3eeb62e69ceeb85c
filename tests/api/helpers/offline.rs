//! Offline checkout as the suites set it up: a tool that allows it, checkouts, the
//! vendor host's JWKS.
use serde_json::{Value, json};

use super::accounts::{Tenant, Tool};
use super::app::TestApp;

/// A tool for offline checkout: 3 seats (2 in the commit), offline limits set when
/// provisioned by [`provision_offline`].
pub const CAD: Tool = Tool {
    name: "CAD Workstation",
    id: "cad",
    commit: 2,
    overage: 1,
    price: 100.0,
};

/// Provisions [`CAD`] to `t` allowing `seats` offline checkouts of at most `hours`;
/// the package as the vendor sees it.
pub async fn provision_offline(app: &TestApp, t: &Tenant, hours: u32, seats: u32) -> Value {
    let body = json!({
        "tenant_id": t.id, "product_id": CAD.id, "product_name": CAD.name,
        "total": CAD.commit + CAD.overage, "commit_qty": CAD.commit, "max_overage": CAD.overage,
        "overage_price_per_license": CAD.price,
        "max_offline_hours": hours, "max_offline_seats": seats,
    });
    let p = app
        .vendor(&t.vendor_key, "POST", "/api/vendor/provision", Some(body))
        .await
        .expect(201);
    assert_eq!(
        (&p["max_offline_hours"], &p["max_offline_seats"]),
        (&json!(hours), &json!(seats))
    );
    p
}

/// An offline borrow body for [`CAD`].
pub fn offline_body(user: &str, hours: u32) -> Value {
    json!({"tool": CAD.name, "user": user, "offline_hours": hours, "fingerprint": "laptop-7f3a"})
}

/// The offline token of a borrow reply.
pub fn offline_token_of(reply: &Value) -> &str {
    reply["offline_token"].as_str().expect("an offline token")
}

impl TestApp {
    /// Borrows [`CAD`] offline at `t` (must be granted); the reply.
    pub async fn checkout(&self, t: &Tenant, user: &str, hours: u32) -> Value {
        self.borrow_json(t, offline_body(user, hours))
            .await
            .expect(200)
    }

    /// `GET /.well-known/jwks.json{query}` on the vendor host, without a credential.
    pub async fn jwks(&self, query: &str) -> Value {
        let path = format!("/.well-known/jwks.json{query}");
        self.call("GET", "vendor.localhost", &path, None, None)
            .await
            .expect(200)
    }
}
