//! The commercial model over HTTP: the overage boundary and its charges, customer
//! restrictions that may only lower limits, spend caps under concurrency, and the
//! package lifecycle.
use serde_json::json;

use crate::helpers::*;

crate::on_both_stores!(
    the_overage_boundary_books_one_charge_per_borrow_and_charges_stay_after_return
);

async fn the_overage_boundary_books_one_charge_per_borrow_and_charges_stay_after_return(
    store: TestStore,
) {
    let app = TestApp::builder().store(&store).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await; // commit 5, overage 15, 500.00
    let mut ids = Vec::new();
    for i in 0..7 {
        let b = app.borrow_ok(&t, ECU.id, &format!("dev{i}")).await;
        assert_eq!(b["is_overage"], i >= 5, "borrow {i}");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let listed = app.tenant_get(&t, "/overage-charges").await.expect(200);
    let charges = listed["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 2);
    for (c, id) in charges.iter().zip(&ids[5..]) {
        assert_eq!(c["borrow_id"], id.as_str());
        assert_eq!(c["tool"], ECU.name);
        assert_eq!(c["amount"].as_f64(), Some(500.0));
        assert_eq!(c["amount_cents"], 50_000);
        for key in ["id", "user", "charged_at", "hash", "prev_hash"] {
            assert!(c[key].is_string(), "{key} in {c}");
        }
    }
    assert_eq!(listed["next_after_seq"], serde_json::Value::Null);

    for id in &ids {
        app.return_ok(&t.host, id).await;
    }
    let after = app.tenant_get(&t, "/overage-charges").await.expect(200);
    assert_eq!(
        after["charges"], listed["charges"],
        "charges stay after return"
    );
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(s["borrowed"], 0);
    assert_eq!(s["current_overage_cost"].as_f64(), Some(1000.0));
    let line = budget_of(&app, &t, ECU.id).await;
    assert_eq!(line["month_to_date_overage_cost"].as_f64(), Some(1000.0));
    assert_eq!(line["remaining_spend"], serde_json::Value::Null);

    // Filters: by tool (name or id), by time window; an unknown tool is a 404.
    let by_name = app
        .tenant_get(&t, "/overage-charges?tool=ECU%20Development%20Suite")
        .await;
    assert_eq!(by_name.expect(200)["charges"].as_array().unwrap().len(), 2);
    let future = app.tenant_get(&t, "/overage-charges?from=2100-01-01").await;
    assert!(future.expect(200)["charges"].as_array().unwrap().is_empty());
    let unknown = app.tenant_get(&t, "/overage-charges?tool=nope").await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "unknown_tool")
    );
    let paged = app
        .tenant_get(&t, "/overage-charges?limit=1")
        .await
        .expect(200);
    assert_eq!(paged["charges"].as_array().unwrap().len(), 1);
    assert_eq!(paged["next_after_seq"], 1);
    let rest = app
        .tenant_get(&t, "/overage-charges?after_seq=1")
        .await
        .expect(200);
    assert_eq!(rest["charges"][0]["seq"], 2);
    app.stop().await;
}

#[actix_web::test]
async fn budget_shows_vendor_and_active_limits_and_restrictions_may_only_lower_them() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let line = budget_of(&app, &t, ECU.id).await;
    let expected_keys = [
        "tool",
        "vendor_total",
        "vendor_commit_qty",
        "vendor_max_overage",
        "total",
        "commit_qty",
        "max_overage",
        "commit_price",
        "overage_price_per_license",
        "customer_max_spend",
        "month_to_date_overage_cost",
        "remaining_spend",
    ];
    for key in expected_keys {
        assert!(line.get(key).is_some(), "{key} missing from {line}");
    }
    assert_eq!(line["tool"], ECU.name);
    assert_eq!(
        (
            &line["vendor_total"],
            &line["total"],
            &line["commit_qty"],
            &line["max_overage"]
        ),
        (&json!(20), &json!(20), &json!(5), &json!(15))
    );
    assert_eq!(line["customer_max_spend"], serde_json::Value::Null);

    // Above the vendor's limits: refused, nothing changes.
    for body in [
        json!({"tool": ECU.id, "total": 21}),
        json!({"tool": ECU.id, "max_overage": 16}),
        json!({"tool": ECU.name, "total": 10, "max_overage": 99}),
    ] {
        let r = app.tenant_put(&t, "/config/budget", body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "exceeds_vendor_limit"));
        assert!(r.body["detail"].as_str().unwrap().contains("only lower"));
    }
    assert_eq!(budget_of(&app, &t, ECU.id).await["total"], 20);

    // Lower: the active limit is the lower of the two.
    let r = app
        .tenant_put(
            &t,
            "/config/budget",
            json!({"tool": ECU.id, "total": 8, "max_overage": 2}),
        )
        .await
        .expect(200);
    assert_eq!(
        (&r["vendor_total"], &r["total"], &r["max_overage"]),
        (&json!(20), &json!(7), &json!(2))
    );
    let mut held = Vec::new();
    for i in 0..7 {
        held.push(app.borrow_id(&t, ECU.id, &format!("u{i}")).await);
    }
    let r = app.borrow(&t, ECU.id, "u7").await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "max_overage_reached"));

    // Lower than what is in use: new borrows are refused, no seat is taken away.
    let r = app
        .tenant_put(&t, "/config/budget", json!({"tool": ECU.id, "total": 3}))
        .await
        .expect(200);
    assert_eq!((&r["total"], &r["borrowed"]), (&json!(3), &json!(7)));
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(
        (&s["total"], &s["borrowed"], &s["available"]),
        (&json!(3), &json!(7), &json!(0))
    );
    let listed = app.tenant_get(&t, "/borrows").await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 7);
    assert_eq!(app.borrow(&t, ECU.id, "u8").await.status.as_u16(), 409);
    for id in &held[..5] {
        app.return_ok(&t.host, id).await;
    }
    app.borrow_ok(&t, ECU.id, "u8").await;

    // An absent field stays; null clears the restriction.
    let r = app
        .tenant_put(
            &t,
            "/config/budget",
            json!({"tool": ECU.id, "max_overage": null}),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            &r["total"],
            &r["restricted_total"],
            &r["restricted_max_overage"]
        ),
        (&json!(3), &json!(3), &json!(null))
    );
    let r = app
        .tenant_put(&t, "/config/budget", json!({"tool": ECU.id, "total": null}))
        .await
        .expect(200);
    assert_eq!(r["total"], 20);
    let r = app
        .tenant_put(&t, "/config/budget", json!({"tool": ECU.id}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    let r = app
        .tenant_put(&t, "/config/budget", json!({"tool": ECU.id, "total": -1}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    let r = app
        .tenant_put(&t, "/config/budget", json!({"tool": "nope", "total": 1}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tool"));

    // A vendor cut below the customer's restriction lowers the active limit too.
    app.tenant_put(&t, "/config/budget", json!({"tool": ECU.id, "total": 15}))
        .await
        .expect(200);
    let pkg = package_id(&app, &t, ECU.id).await;
    app.vendor(
        &t.vendor_key,
        "PATCH",
        &format!("/api/vendor/packages/{pkg}"),
        Some(json!({"total": 10})),
    )
    .await
    .expect(200);
    let line = budget_of(&app, &t, ECU.id).await;
    assert_eq!(
        (
            &line["vendor_total"],
            &line["restricted_total"],
            &line["total"]
        ),
        (&json!(10), &json!(15), &json!(10))
    );

    // Budget endpoints need the admin scope.
    let key = add_farm_key(&app, &t).await;
    let farm = key["api_key"].as_str().unwrap();
    let r = app
        .call("GET", &t.host, "/config/budget", Some(farm), None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));
    app.stop().await;
}

#[actix_web::test]
async fn the_spend_cap_is_never_exceeded_under_100_concurrent_overage_borrows() {
    let app = TestApp::builder().spawn().await;
    let tool = Tool {
        name: "Model-Based Design Studio",
        id: "mbd-studio",
        commit: 0,
        overage: 200,
        price: 500.0,
    };
    let t = bootstrap(&app, "vector", "acme", &tool).await;
    // 24 charges of 500.00 make 12000.00; the 25th would pass the cap.
    let line = app
        .tenant_put(
            &t,
            "/config/protection",
            json!({"tool": tool.id, "max_spend": 12_345.0}),
        )
        .await
        .expect(200);
    assert_eq!(line["customer_max_spend"].as_f64(), Some(12_345.0));
    assert_eq!(line["remaining_spend"].as_f64(), Some(12_345.0));

    let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let asks = users.iter().map(|u| app.borrow(&t, tool.id, u));
    let replies = futures_util::future::join_all(asks).await;
    let granted = replies.iter().filter(|r| r.status.as_u16() == 200).count();
    let capped = replies
        .iter()
        .filter(|r| r.status.as_u16() == 403 && r.code() == "spend_cap_reached")
        .count();
    assert_eq!((granted, capped), (24, 76));
    assert!(
        replies
            .iter()
            .filter(|r| r.status.as_u16() == 200)
            .all(|r| r.body["is_overage"] == true)
    );

    let line = budget_of(&app, &t, tool.id).await;
    assert_eq!(line["month_to_date_overage_cost"].as_f64(), Some(12_000.0));
    assert_eq!(line["remaining_spend"].as_f64(), Some(345.0));
    let charges = app.tenant_get(&t, "/overage-charges").await.expect(200);
    let charges = charges["charges"].as_array().unwrap();
    let billed: i64 = charges
        .iter()
        .map(|c| c["amount_cents"].as_i64().unwrap())
        .sum();
    assert_eq!((charges.len(), billed), (24, 1_200_000));
    assert!(billed <= 1_234_500);
    let verify = app
        .tenant_get(&t, "/overage-charges/verify")
        .await
        .expect(200);
    assert_eq!(
        (&verify["valid"], &verify["charges"]),
        (&json!(true), &json!(24))
    );

    // Bad caps are refused; null removes the cap.
    for bad in [
        json!({"tool": tool.id}),
        json!({"tool": tool.id, "max_spend": -5}),
    ] {
        let r = app.tenant_put(&t, "/config/protection", bad).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    }
    let line = app
        .tenant_put(
            &t,
            "/config/protection",
            json!({"tool": tool.id, "max_spend": null}),
        )
        .await
        .expect(200);
    assert_eq!(
        (&line["customer_max_spend"], &line["remaining_spend"]),
        (&json!(null), &json!(null))
    );
    app.borrow_ok(&t, tool.id, "after").await;
    app.stop().await;
}
