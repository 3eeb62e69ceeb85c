//! What the barrage is followed by (issue 22): the findings of the second hostile
//! review, checked against the real binary after it has taken the barrage. Each returns
//! what went wrong.
use serde_json::json;

use crate::helpers::*;
use crate::security_bodies::unknown_fields_refused;
use crate::security_edge::MALFORMED_HOSTS;

/// Host values that are no host reach no context, however they are sent.
pub async fn malformed_hosts(app: &TestApp) -> Vec<String> {
    let token = format!("Bearer {}", app.admin_token);
    let mut wrong = Vec::new();
    for host in MALFORMED_HOSTS {
        for (method, path) in [
            ("GET", "/api/admin/vendors"),
            ("GET", "/api/admin/stats"),
            ("GET", "/metrics"),
            ("GET", "/"),
            ("POST", "/api/admin/vendors"),
        ] {
            let body = json!({"vendor_id": "via-bad-host", "vendor_name": "x"});
            let r = send(
                app,
                method,
                host,
                path,
                &[("Authorization", &token)],
                Some(&body),
            )
            .await;
            if (r.status.as_u16(), r.code()) != (400, "invalid_host") {
                wrong.push(format!(
                    "{method} {path} with Host {host:?}: {} {}",
                    r.status, r.body
                ));
            }
        }
    }
    wrong
}

/// Fresh accounts (the barrage may have deleted or rotated the first ones): a vendor
/// with a portal password, a tenant with the admin `alice` and the viewer `vic`.
pub async fn fresh_accounts(app: &TestApp, name: &str) -> (Tenant, Portal) {
    let vendor = format!("{name}-vendor");
    let (key, secret) = vendor_with_password(app, &vendor, &format!("{vendor}-password")).await;
    let t = add_tenant(app, &key, &secret, name, &ECU).await;
    add_user(app, &t, "alice", "alice-password", "admin").await;
    add_user(app, &t, "vic", "vic-password", "viewer").await;
    let viewer = portal(app, &t.host, "vic", "vic-password").await;
    (t, viewer)
}

/// Unknown fields in every body that changes state, a viewer's return, and the cap on
/// one credential's streams.
pub async fn bodies_viewers_and_streams(app: &TestApp) -> Vec<String> {
    let (t, viewer) = fresh_accounts(app, "after-findings").await;
    let mut wrong = unknown_fields_refused(app, &t, "after-findings-vendor").await;

    let id = app.borrow_id(&t, ECU.id, "dev1").await;
    let r = viewer
        .mutate(app, "POST", "/licenses/return", Some(&json!({ "id": id })))
        .await;
    if (r.status.as_u16(), r.code()) != (403, "insufficient_scope") {
        wrong.push(format!("a viewer's return: {} {}", r.status, r.body));
    }
    let listed = viewer.get(app, "/borrows").await;
    if !listed.body.to_string().contains("null") || listed.body.to_string().contains(&id) {
        wrong.push(format!("a viewer's /borrows: {}", listed.body));
    }
    app.return_ok(&t.host, &id).await;

    // One credential's streams, up to the default cap and one beyond.
    let farm = add_farm_key(app, &t).await;
    let bearer = format!("Bearer {}", farm["api_key"].as_str().unwrap());
    let mut held = Vec::new();
    for _ in 0..crate::security_streams::STREAMS_PER_CREDENTIAL {
        let mut res = subscribe_with(app, &t.host, &[("Authorization", &bearer)]).await;
        if res.status().as_u16() != 200 {
            wrong.push(format!("a stream within the cap: {}", res.status()));
            continue;
        }
        let mut greeting = String::new();
        until_subscribed(&mut res, &mut greeting).await;
        held.push(res);
    }
    let refused = subscribe_with(app, &t.host, &[("Authorization", &bearer)]).await;
    let status = refused.status().as_u16();
    let r = read(refused).await;
    if (status, r.code()) != (429, "too_many_streams") {
        wrong.push(format!("a stream beyond the cap: {status} {}", r.body));
    }
    drop(held);
    wrong
}
