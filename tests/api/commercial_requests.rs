//! Requests for more seats: filed by the tenant admin, listed and answered by the
//! vendor, applied to the package on approval.
use serde_json::json;

use crate::helpers::*;

async fn file(app: &TestApp, t: &Tenant, body: serde_json::Value) -> Reply {
    app.call(
        "POST",
        &t.host,
        "/api/customer/request-more",
        Some(&t.admin_key),
        Some(body),
    )
    .await
}

#[actix_web::test]
async fn request_more_round_trip() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await; // 20 = 5 + 15
    let other = bootstrap(&app, "dspace", "initech", &ECU).await;

    let r = file(
        &app,
        &t,
        json!({"tool": ECU.name, "requested_total": 30, "message": "release crunch"}),
    )
    .await
    .expect(201);
    let id = r["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("acme."), "{id}");
    assert_eq!(
        (&r["status"], &r["tool"], &r["requested_total"]),
        (&json!("pending"), &json!(ECU.name), &json!(30))
    );
    assert_eq!(
        r["limits_before"],
        json!({"total": 20, "commit_qty": 5, "max_overage": 15})
    );

    // One open request per package; bad requests are refused.
    let again = file(&app, &t, json!({"tool": ECU.id, "requested_overage": 40})).await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "request_pending")
    );
    let empty = file(&app, &t, json!({"tool": ECU.id})).await;
    assert_eq!(
        (empty.status.as_u16(), empty.code()),
        (400, "invalid_request")
    );
    let unknown = file(&app, &t, json!({"tool": "nope", "requested_total": 3})).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "unknown_tool")
    );
    let key = add_farm_key(&app, &t).await;
    let farm = key["api_key"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            &t.host,
            "/api/customer/request-more",
            Some(farm),
            Some(json!({"tool": ECU.id, "requested_total": 25})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));

    // The vendor sees it; another vendor neither sees nor answers it.
    let listed = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/requests", None)
        .await
        .expect(200);
    let listed = listed["requests"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            &listed[0]["id"],
            &listed[0]["tenant_id"],
            &listed[0]["message"]
        ),
        (&json!(id), &json!("acme"), &json!("release crunch"))
    );
    let none = app
        .vendor(
            &t.vendor_key,
            "GET",
            "/api/vendor/requests?status=approved",
            None,
        )
        .await
        .expect(200);
    assert!(none["requests"].as_array().unwrap().is_empty());
    let theirs = app
        .vendor(&other.vendor_key, "GET", "/api/vendor/requests", None)
        .await
        .expect(200);
    assert!(theirs["requests"].as_array().unwrap().is_empty());
    let approve_path = format!("/api/vendor/requests/{id}/approve");
    let r = app
        .vendor(&other.vendor_key, "POST", &approve_path, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_request"));
    let r = app
        .vendor(
            &t.vendor_key,
            "POST",
            "/api/vendor/requests/acme.0000/approve",
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_request"));

    // Approval applies the limits: a total alone keeps the commit and grows the overage.
    let decided = app
        .vendor(&t.vendor_key, "POST", &approve_path, None)
        .await
        .expect(200);
    assert_eq!(decided["request"]["status"], "approved");
    assert_eq!(
        decided["request"]["applied"],
        json!({"total": 30, "commit_qty": 5, "max_overage": 25})
    );
    assert_eq!(
        (
            &decided["package"]["total"],
            &decided["package"]["max_overage"]
        ),
        (&json!(30), &json!(25))
    );
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(
        (&s["total"], &s["commit"], &s["max_overage"]),
        (&json!(30), &json!(5), &json!(25))
    );
    assert_eq!(budget_of(&app, &t, ECU.id).await["vendor_total"], 30);
    let twice = app.vendor(&t.vendor_key, "POST", &approve_path, None).await;
    assert_eq!(
        (twice.status.as_u16(), twice.code()),
        (409, "request_decided")
    );

    // The tenant sees the answer; a new request can be filed and rejected.
    let mine = app
        .tenant_get(&t, "/api/customer/requests")
        .await
        .expect(200);
    assert_eq!(mine["requests"][0]["status"], "approved");
    let r = file(
        &app,
        &t,
        json!({"tool": ECU.id, "requested_total": 40, "requested_overage": 30}),
    )
    .await
    .expect(201);
    let id2 = r["id"].as_str().unwrap();
    let rejected = app
        .vendor(
            &t.vendor_key,
            "POST",
            &format!("/api/vendor/requests/{id2}/reject"),
            Some(json!({"note": "not this quarter"})),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            &rejected["request"]["status"],
            &rejected["request"]["decision_note"]
        ),
        (&json!("rejected"), &json!("not this quarter"))
    );
    assert_eq!(rejected["package"], serde_json::Value::Null);
    assert_eq!(app.status_of(&t, ECU.id).await["total"], 30);
    let mine = app
        .tenant_get(&t, "/api/customer/requests")
        .await
        .expect(200);
    let statuses: Vec<_> = mine["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&json!("approved")) && statuses.contains(&json!("rejected")));

    // The vendor may grant other figures than asked.
    let r = file(&app, &t, json!({"tool": ECU.id, "requested_overage": 50}))
        .await
        .expect(201);
    let id3 = r["id"].as_str().unwrap();
    let decided = app
        .vendor(
            &t.vendor_key,
            "POST",
            &format!("/api/vendor/requests/{id3}/approve"),
            Some(json!({"total": 40, "commit_qty": 10, "note": "with a bigger commit"})),
        )
        .await
        .expect(200);
    assert_eq!(
        decided["request"]["applied"],
        json!({"total": 40, "commit_qty": 10, "max_overage": 30})
    );
    app.stop().await;
}
