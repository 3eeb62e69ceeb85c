//! Helpers for the commercial-model suites (budget, ledger, usage, requests).
#![allow(dead_code)]
use actix_web::web::Bytes;
use serde_json::Value;

use crate::helpers::*;

/// A tenant-host GET with the admin key.
pub async fn get(app: &TestApp, t: &Tenant, path: &str) -> Reply {
    app.call("GET", &t.host, path, Some(&t.admin_key), None)
        .await
}

/// A tenant-host PUT with the admin key.
pub async fn put(app: &TestApp, t: &Tenant, path: &str, body: Value) -> Reply {
    app.call("PUT", &t.host, path, Some(&t.admin_key), Some(body))
        .await
}

/// A vendor-host call with the tenant's vendor key.
pub async fn vendor(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    app.call(method, "vendor.localhost", path, Some(key), body)
        .await
}

/// The body of a vendor-host GET with `key`, unparsed (the CSV exports are not JSON).
pub async fn vendor_bytes(app: &TestApp, key: &str, path: &str) -> Bytes {
    app.client
        .get(app.url(path))
        .insert_header(("Host", "vendor.localhost"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap()
}

/// The customers of the vendor with `vendor_key`, as it lists them (must answer 200).
pub async fn customers(app: &TestApp, vendor_key: &str) -> Value {
    vendor(app, vendor_key, "GET", "/api/vendor/customers", None)
        .await
        .expect(200)
}

/// The package id of `product_id` at tenant `t`, as the vendor sees it.
pub async fn package_id(app: &TestApp, t: &Tenant, product_id: &str) -> String {
    customers(app, &t.vendor_key).await["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tenant_id"] == t.id.as_str())
        .flat_map(|c| c["packages"].as_array().unwrap().iter())
        .find(|p| p["product_id"] == product_id)
        .and_then(|p| p["package_id"].as_str())
        .expect("package listed")
        .to_owned()
}

/// The `/config/budget` line of one tool.
pub async fn budget_of(app: &TestApp, t: &Tenant, product_id: &str) -> Value {
    let budget = get(app, t, "/config/budget").await.expect(200);
    budget["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == product_id)
        .cloned()
        .expect("tool in the budget")
}

/// A vendor with one tenant of `tool`, like `bootstrap`, for tests needing two vendors.
pub async fn second_vendor(app: &TestApp, vendor_id: &str, tenant: &str, tool: &Tool) -> Tenant {
    bootstrap(app, vendor_id, tenant, tool).await
}
