//! Vendors, tenants and packages as the suites set them up, over HTTP.
use permetrix_storage::Timestamp;
use serde_json::{Value, json};

use super::app::TestApp;

/// A tool to provision: its pool is `commit + overage` seats.
pub struct Tool {
    pub name: &'static str,
    pub id: &'static str,
    pub commit: u32,
    pub overage: u32,
    pub price: f64,
}

pub const ECU: Tool = Tool {
    name: "ECU Development Suite",
    id: "ecu-dev-suite",
    commit: 5,
    overage: 15,
    price: 500.0,
};

/// A one-seat tool, so that a second borrow finds none.
pub const BUS: Tool = Tool {
    name: "Bus Analyser",
    id: "bus",
    commit: 1,
    overage: 0,
    price: 0.0,
};

/// Where the manual clocks of the lease and queue suites start.
pub const START: Timestamp = Timestamp::from_secs(1_795_749_205);

/// Credentials of a bootstrapped vendor and tenant.
pub struct Tenant {
    pub id: String,
    pub host: String,
    pub admin_key: String,
    pub vendor_key: String,
    pub signing_secret: String,
}

/// Creates a vendor, a tenant of it with one tool, and turns signatures off.
pub async fn bootstrap(app: &TestApp, vendor: &str, tenant: &str, tool: &Tool) -> Tenant {
    let (vendor_key, signing_secret) = create_vendor(app, vendor).await;
    add_tenant(app, &vendor_key, &signing_secret, tenant, tool).await
}

/// Creates vendor `vendor` (must answer 201); its `(api_key, signing_secret)`.
pub async fn create_vendor(app: &TestApp, vendor: &str) -> (String, String) {
    let v = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": vendor, "vendor_name": format!("{vendor} GmbH")})),
        )
        .await;
    match v.status.as_u16() {
        201 => (
            v.body["api_key"].as_str().unwrap().to_owned(),
            v.body["signing_secret"].as_str().unwrap().to_owned(),
        ),
        other => panic!("creating vendor {vendor}: {other} {}", v.body),
    }
}

/// Creates customer `tenant` of the vendor (must answer 201), with nothing provisioned
/// and its settings as created; its admin API key.
pub async fn create_customer(app: &TestApp, vendor_key: &str, tenant: &str) -> String {
    let created = app
        .vendor(
            vendor_key,
            "POST",
            "/api/vendor/customers",
            Some(json!({"tenant_id": tenant, "company_name": format!("{tenant} Inc")})),
        )
        .await
        .expect(201);
    created["admin_api_key"].as_str().unwrap().to_owned()
}

/// Adds a tenant with one tool to an existing vendor, signatures off.
pub async fn add_tenant(
    app: &TestApp,
    vendor_key: &str,
    signing_secret: &str,
    tenant: &str,
    tool: &Tool,
) -> Tenant {
    let admin_key = create_customer(app, vendor_key, tenant).await;
    provision(app, vendor_key, tenant, tool).await;
    let host = format!("{tenant}.localhost");
    app.call(
        "PUT",
        &host,
        "/config/security",
        Some(&admin_key),
        Some(json!({"signature_policy": "off"})),
    )
    .await
    .expect(200);
    Tenant {
        id: tenant.to_owned(),
        host,
        admin_key,
        vendor_key: vendor_key.to_owned(),
        signing_secret: signing_secret.to_owned(),
    }
}

/// Provisions `tool` to `tenant` (must answer 201); the package.
pub async fn provision(app: &TestApp, vendor_key: &str, tenant: &str, tool: &Tool) -> Value {
    app.call(
        "POST",
        "vendor.localhost",
        "/api/vendor/provision",
        Some(vendor_key),
        Some(json!({
            "tenant_id": tenant,
            "product_id": tool.id,
            "product_name": tool.name,
            "total": tool.commit + tool.overage,
            "commit_qty": tool.commit,
            "max_overage": tool.overage,
            "overage_price_per_license": tool.price,
        })),
    )
    .await
    .expect(201)
}

/// Creates a vendor with a portal password; returns `(api_key, signing_secret)`.
pub async fn vendor_with_password(app: &TestApp, vendor: &str, password: &str) -> (String, String) {
    let v = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": vendor, "vendor_name": vendor, "password": password})),
        )
        .await
        .expect(201);
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["signing_secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates a tenant portal user with an admin key.
pub async fn add_user(app: &TestApp, t: &Tenant, username: &str, password: &str, role: &str) {
    app.call(
        "POST",
        &t.host,
        "/api/users",
        Some(&t.admin_key),
        Some(json!({"username": username, "password": password, "role": role})),
    )
    .await
    .expect(201);
}

/// Creates a borrow-scope API key named "farm" with the admin key; its reply
/// (`api_key`, `key_id`, `expires_at`).
pub async fn add_farm_key(app: &TestApp, t: &Tenant) -> Value {
    let body = json!({"name": "farm", "scope": "borrow"});
    app.call("POST", &t.host, "/api/keys", Some(&t.admin_key), Some(body))
        .await
        .expect(201)
}

/// The customers of the vendor with `vendor_key`, as it lists them (must answer 200).
pub async fn customers(app: &TestApp, vendor_key: &str) -> Value {
    app.vendor(vendor_key, "GET", "/api/vendor/customers", None)
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
    let budget = app.tenant_get(t, "/config/budget").await.expect(200);
    budget["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == product_id)
        .cloned()
        .expect("tool in the budget")
}
