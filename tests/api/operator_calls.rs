//! The operator's requests: main-host calls with the operator token.
use serde_json::Value;

use crate::helpers::*;

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
}
