//! The whole bootstrap → provision → borrow → status → return flow.
use serde_json::json;

use crate::helpers::*;

crate::on_both_stores!(bootstrap_provision_borrow_status_return);

async fn bootstrap_provision_borrow_status_return(store: TestStore) {
    let app = TestApp::builder().store(&store).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;

    // Health answers on the main host.
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);

    // A borrow key for the build farm.
    let key = add_farm_key(&app, &t).await;
    let farm = key["api_key"].as_str().unwrap().to_owned();
    let read_as_farm = |path: &'static str| app.call("GET", &t.host, path, Some(&farm), None);

    // Five borrows fill the commit, the sixth is overage.
    let mut ids = Vec::new();
    for i in 0..6 {
        let b = app
            .borrow_with(&t.host, &farm, ECU.name, &format!("dev{i}"))
            .await
            .expect(200);
        assert_eq!(b["tool"], ECU.name);
        assert_eq!(b["user"], format!("dev{i}"));
        assert_eq!(b["is_overage"], i >= 5);
        assert!(b["borrowed_at"].is_string() && b["lease_expires_at"].is_string());
        ids.push(b["id"].as_str().unwrap().to_owned());
    }

    let status = read_as_farm("/licenses/status").await.expect(200);
    let s = &status.as_array().unwrap()[0];
    assert_eq!(s["tool"], ECU.name);
    assert_eq!(
        (
            s["total"].as_u64(),
            s["borrowed"].as_u64(),
            s["available"].as_u64()
        ),
        (Some(20), Some(6), Some(14))
    );
    assert_eq!(
        (s["in_commit"].as_u64(), s["overage"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(s["current_overage_cost"].as_f64(), Some(500.0));

    // The per-tool status takes the percent-encoded name or the product id.
    let one = read_as_farm("/licenses/ECU%20Development%20Suite/status")
        .await
        .expect(200);
    assert_eq!(one["borrowed"], 6);
    let by_id = read_as_farm("/licenses/ecu-dev-suite/status")
        .await
        .expect(200);
    assert_eq!(by_id["tool"], ECU.name);
    let missing = read_as_farm("/licenses/nope/status").await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "unknown_tool")
    );

    // Borrows list, newest first, filterable by user.
    let all = read_as_farm("/borrows").await.expect(200);
    assert_eq!(all.as_array().unwrap().len(), 6);
    let mine = read_as_farm("/borrows?user=dev3").await.expect(200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], ids[3].as_str());

    // Returns need no credential: the borrow id authorises them.
    let r = app.return_ok(&t.host, &ids[0]).await;
    assert_eq!(r, json!({"status": "ok", "tool": ECU.name}));
    let again = app.return_seat(&t.host, &ids[0]).await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (404, "unknown_borrow")
    );

    // The overage charge stays after the overage seat is returned.
    app.call(
        "POST",
        &t.host,
        "/licenses/return",
        Some(&farm),
        Some(json!({"id": ids[5]})),
    )
    .await
    .expect(200);
    let s = read_as_farm("/licenses/ecu-dev-suite/status")
        .await
        .expect(200);
    assert_eq!(
        (s["borrowed"].as_u64(), s["overage"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(s["current_overage_cost"].as_f64(), Some(500.0));

    // The vendor sees live counts.
    let customers = customers(&app, &t.vendor_key).await;
    assert_eq!(customers["partial"], false);
    let c = &customers["customers"][0];
    assert_eq!(c["tenant_id"], "acme");
    assert_eq!(c["usage"]["borrowed"], 4);
    assert_eq!(c["packages"][0]["product_id"], ECU.id);

    // The operator sees vendors, tenants and totals.
    let vendors = app
        .operator("GET", "/api/admin/vendors", None)
        .await
        .expect(200);
    assert_eq!(vendors["vendors"][0]["vendor_id"], "vector");
    let stats = app
        .operator("GET", "/api/admin/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["usage"]["borrowed"], 4);
    app.stop().await;
}

#[actix_web::test]
async fn replies_are_compact_json_with_a_200_on_borrow() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut res = app
        .client
        .post(app.url("/licenses/borrow"))
        .insert_header(("Host", t.host.as_str()))
        .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
        // Some existing clients send no content type.
        .send_body(r#"{"tool":"ecu-dev-suite","user":"u1"}"#)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(text.starts_with(r#"{"id":""#), "{text}");
    assert!(!text.contains(": "), "not compact: {text}");
    app.stop().await;
}

#[actix_web::test]
async fn signatures_are_required_by_default_and_verified() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    // Back to the default policy.
    app.call(
        "PUT",
        &t.host,
        "/config/security",
        Some(&t.admin_key),
        Some(json!({"signature_policy": "v1"})),
    )
    .await
    .expect(200);
    let unsigned = app.borrow(&t, ECU.name, "dev1").await;
    assert_eq!(
        (unsigned.status.as_u16(), unsigned.code()),
        (401, "missing_signature")
    );

    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signed = signing::v1_string(ECU.name, "dev1", &ts, &t.admin_key);
    let sig = signing::sign(t.signing_secret.as_bytes(), &signed);
    let send = |sig: String, vendor: &'static str| {
        app.client
            .post(app.url("/licenses/borrow"))
            .insert_header(("Host", t.host.as_str()))
            .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
            .insert_header(("X-Signature", sig))
            .insert_header(("X-Timestamp", ts.clone()))
            .insert_header(("X-Vendor-ID", vendor))
            .send_json(&borrow_body(ECU.name, "dev1"))
    };
    let ok = read(send(sig.clone(), "vector").await.unwrap()).await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.body);
    let bad = read(
        send(sig.replace('a', "b").replace('1', "2"), "vector")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((bad.status.as_u16(), bad.code()), (401, "bad_signature"));
    let wrong = read(send(sig, "somebody-else").await.unwrap()).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (401, "wrong_vendor"));
    app.stop().await;
}

#[actix_web::test]
async fn an_imported_signing_secret_verifies_existing_clients() {
    let app = TestApp::builder().spawn().await;
    let secret = "vendor-signing-secret-0123456789abcdef";
    let v = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": "legacy", "vendor_name": "Legacy", "signing_secret": secret})),
        )
        .await
        .expect(201);
    assert_eq!(v["signing_secret"], secret);
    let short = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": "short", "vendor_name": "S", "signing_secret": "too-short"})),
        )
        .await;
    assert_eq!(short.status.as_u16(), 400);
    let dup = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": "legacy", "vendor_name": "Again"})),
        )
        .await;
    assert_eq!(dup.status.as_u16(), 409);
    app.stop().await;
}
