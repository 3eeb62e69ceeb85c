//! The seat requests most suites make: borrows, returns, a tool's status and a
//! tenant's borrow listing, as methods of [`TestApp`].
use std::future::Future;

use serde::Serialize;
use serde_json::{Value, json};

use super::accounts::Tenant;
use super::app::{Reply, TestApp};

/// A borrow body.
pub fn borrow_body(tool: &str, user: &str) -> Value {
    json!({"tool": tool, "user": user})
}

/// A borrow body asking for a lease of `secs` seconds.
pub fn lease_body(tool: &str, user: &str, secs: u32) -> Value {
    json!({"tool": tool, "user": user, "lease_seconds": secs})
}

/// Milliseconds since the epoch of an RFC 3339 time in a reply.
pub fn millis(rfc3339: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl TestApp {
    /// Sends `body` to `/licenses/borrow` at `host` with the bearer `key`; the raw reply.
    async fn post_borrow(&self, host: &str, key: &str, body: Value) -> Reply {
        self.call("POST", host, "/licenses/borrow", Some(key), Some(body))
            .await
    }

    /// Borrows `tool` for `user` at `host` with the bearer `key`; the raw reply.
    pub async fn borrow_with(&self, host: &str, key: &str, tool: &str, user: &str) -> Reply {
        self.post_borrow(host, key, borrow_body(tool, user)).await
    }

    /// Sends `body` as a borrow at `t` with its admin key; the raw reply.
    pub async fn borrow_json(&self, t: &Tenant, body: Value) -> Reply {
        self.post_borrow(&t.host, &t.admin_key, body).await
    }

    /// Borrows `tool` for `user` at `t` with its admin key; the raw reply.
    pub async fn borrow(&self, t: &Tenant, tool: &str, user: &str) -> Reply {
        self.borrow_with(&t.host, &t.admin_key, tool, user).await
    }

    /// Borrows a seat that must be granted; the reply's body.
    pub async fn borrow_ok(&self, t: &Tenant, tool: &str, user: &str) -> Value {
        self.borrow(t, tool, user).await.expect(200)
    }

    /// Borrows a seat that must be granted; its id.
    pub async fn borrow_id(&self, t: &Tenant, tool: &str, user: &str) -> String {
        self.borrow_ok(t, tool, user).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Like [`TestApp::borrow_json`], on a client of its own, as a future to spawn.
    pub fn borrow_task(&self, t: &Tenant, body: Value) -> impl Future<Output = Reply> + 'static {
        let app = self.detached();
        let (host, key) = (t.host.clone(), t.admin_key.clone());
        async move { app.post_borrow(&host, &key, body).await }
    }

    /// Returns seat `id` at `host` with no credential (the id authorises); the raw reply.
    pub async fn return_seat(&self, host: &str, id: impl Serialize) -> Reply {
        let body = json!({ "id": id });
        self.call("POST", host, "/licenses/return", None, Some(body))
            .await
    }

    /// Returns a seat that must be held; the reply's body.
    pub async fn return_ok(&self, host: &str, id: impl Serialize) -> Value {
        self.return_seat(host, id).await.expect(200)
    }

    /// Renews the lease of borrow `id` at `t` with its admin key; the raw reply.
    pub async fn heartbeat(&self, t: &Tenant, id: &str) -> Reply {
        let path = format!("/licenses/{id}/heartbeat");
        self.call("POST", &t.host, &path, Some(&t.admin_key), None)
            .await
    }

    /// The status of one tool at `t` (must answer 200).
    pub async fn status_of(&self, t: &Tenant, tool: &str) -> Value {
        let path = format!("/licenses/{tool}/status");
        self.call("GET", &t.host, &path, Some(&t.admin_key), None)
            .await
            .expect(200)
    }

    /// The ids of `t`'s borrows, in the order `/borrows` lists them.
    pub async fn borrow_ids(&self, t: &Tenant) -> Vec<String> {
        let listed = self
            .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
            .await
            .expect(200);
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect()
    }
}
