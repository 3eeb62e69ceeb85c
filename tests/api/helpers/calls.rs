//! Requests by role: the operator's, a tenant admin's, a vendor's, and injected faults.
use actix_web::web::Bytes;
use serde_json::Value;

use super::accounts::Tenant;
use super::app::{Reply, TestApp};

impl TestApp {
    /// Sends a request to the main host with the operator token; the raw reply.
    pub async fn operator(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, "localhost", path, Some(&self.admin_token), body)
            .await
    }

    /// The operator's view of the tenant actors (must answer 200).
    pub async fn actors(&self) -> Value {
        self.operator("GET", "/api/admin/actors", None)
            .await
            .expect(200)
    }

    /// A tenant-host GET with the admin key.
    pub async fn tenant_get(&self, t: &Tenant, path: &str) -> Reply {
        self.call("GET", &t.host, path, Some(&t.admin_key), None)
            .await
    }

    /// A tenant-host PUT with the admin key.
    pub async fn tenant_put(&self, t: &Tenant, path: &str, body: Value) -> Reply {
        self.call("PUT", &t.host, path, Some(&t.admin_key), Some(body))
            .await
    }

    /// A vendor-host call with the vendor key `key`.
    pub async fn vendor(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, "vendor.localhost", path, Some(key), body)
            .await
    }

    /// The body of a vendor-host GET with `key`, unparsed (the CSV exports are not JSON).
    pub async fn vendor_bytes(&self, key: &str, path: &str) -> Bytes {
        self.client
            .get(self.url(path))
            .insert_header(("Host", "vendor.localhost"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap()
            .body()
            .await
            .unwrap()
    }
}

/// POSTs `/_faults/{fault}` (test builds only) at `t` with its admin key.
pub async fn inject(app: &TestApp, t: &Tenant, fault: &str) -> Reply {
    let path = format!("/_faults/{fault}");
    app.call("POST", &t.host, &path, Some(&t.admin_key), None)
        .await
}
