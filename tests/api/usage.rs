//! Usage reports match a scripted workload exactly, for the vendor (per customer and
//! product, JSON and CSV) and for the tenant itself.
use serde_json::{Value, json};

use crate::helpers::*;

const SUITE: Tool = Tool {
    name: "ECU Development Suite",
    id: "ecu-dev-suite",
    commit: 2,
    overage: 3,
    price: 100.0,
};

const CAN: Tool = Tool {
    name: "CAN Bus Analyzer Pro",
    id: "can-analyzer-pro",
    commit: 1,
    overage: 0,
    price: 0.0,
};

/// `(borrows, peak_concurrent, overage_borrows, overage_amount)` of one product.
fn figures(products: &Value, product_id: &str) -> (u64, u64, u64, f64) {
    let p = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == product_id)
        .unwrap_or_else(|| panic!("{product_id} in {products}"));
    (
        p["borrows"].as_u64().unwrap(),
        p["peak_concurrent"].as_u64().unwrap(),
        p["overage_borrows"].as_u64().unwrap(),
        p["overage_amount"].as_f64().unwrap(),
    )
}

/// Everything since 2000: the whole test, whatever month it runs in.
const SINCE: &str = "from=2000-01-01";

#[actix_web::test]
async fn usage_reports_match_a_scripted_workload_exactly() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &SUITE).await;
    provision(&app, &acme.vendor_key, "acme", &CAN).await;
    let globex = add_tenant(
        &app,
        &acme.vendor_key,
        &acme.signing_secret,
        "globex",
        &SUITE,
    )
    .await;
    let other = bootstrap(&app, "dspace", "initech", &SUITE).await;
    app.borrow_ok(&other, SUITE.id, "not-counted").await;

    // acme, suite (commit 2): in use 1, 2, 3*, 2, 3*, 4*, 3, 2, 3*  (* = overage)
    let b1 = app.borrow_id(&acme, SUITE.id, "a").await;
    let b2 = app.borrow_id(&acme, SUITE.id, "b").await;
    let b3 = app.borrow_id(&acme, SUITE.id, "c").await;
    app.return_ok(&acme.host, &b1).await;
    app.borrow_ok(&acme, SUITE.id, "d").await;
    app.borrow_ok(&acme, SUITE.id, "e").await;
    app.return_ok(&acme.host, &b2).await;
    app.return_ok(&acme.host, &b3).await;
    app.borrow_ok(&acme, SUITE.id, "f").await;
    // A refused borrow (the pool is full) is no borrow.
    app.borrow_ok(&acme, SUITE.id, "g").await;
    app.borrow_ok(&acme, SUITE.id, "h").await;
    assert_eq!(app.borrow(&acme, SUITE.id, "i").await.status.as_u16(), 409);
    // acme, CAN (commit 1, no overage): 1, 0, 1
    let c1 = app.borrow_id(&acme, CAN.id, "a").await;
    app.return_ok(&acme.host, &c1).await;
    app.borrow_ok(&acme, CAN.id, "b").await;
    // globex, suite: 1, 2, 3*, then all returned, then 4 at once: peak 4, two overage.
    let mut held = Vec::new();
    for u in ["x", "y", "z"] {
        held.push(app.borrow_id(&globex, SUITE.id, u).await);
    }
    for id in &held {
        app.return_ok(&globex.host, id).await;
    }
    let users: Vec<String> = (0..4).map(|i| format!("burst{i}")).collect();
    let burst = users.iter().map(|u| app.borrow(&globex, SUITE.id, u));
    for r in futures_util::future::join_all(burst).await {
        assert_eq!(r.status.as_u16(), 200);
    }

    // acme suite: 8 borrows (a..h), peak 5 (g, h fill total 5), overage: c, d, e, f, g, h
    // = 6 at 100.00. acme CAN: 2 borrows, peak 1. globex: 7 borrows, peak 4, overage z
    // and two of the burst = 3.
    let expected_acme_suite = (8, 5, 6, 600.0);
    let expected_acme_can = (2, 1, 0, 0.0);
    let expected_globex = (7, 4, 3, 300.0);

    let report = app
        .vendor(
            &acme.vendor_key,
            "GET",
            &format!("/api/vendor/usage?{SINCE}"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(report["partial"], false);
    let customers = report["customers"].as_array().unwrap();
    let ids: Vec<_> = customers
        .iter()
        .map(|c| c["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["acme", "globex"], "only this vendor's customers");
    assert_eq!(customers[0]["company_name"], "acme Inc");
    assert_eq!(
        figures(&customers[0]["products"], SUITE.id),
        expected_acme_suite
    );
    assert_eq!(
        figures(&customers[0]["products"], CAN.id),
        expected_acme_can
    );
    assert_eq!(
        figures(&customers[1]["products"], SUITE.id),
        expected_globex
    );
    assert_eq!(
        customers[0]["products"][0]["tool"], CAN.name,
        "products sorted by name"
    );

    // The same figures as CSV.
    let path = format!("/api/vendor/usage?{SINCE}&format=csv");
    let res = app.vendor_bytes(&acme.vendor_key, &path).await;
    let mut reader = csv::Reader::from_reader(res.as_ref());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[..8],
        [
            "tenant_id",
            "company_name",
            "product_id",
            "tool",
            "borrows",
            "peak_concurrent",
            "overage_borrows",
            "overage_amount"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().take(8).map(str::to_owned).collect())
        .collect();
    let row = |t: &str, p: &str, n: [&str; 4]| {
        let mut v: Vec<String> = vec![t.into(), format!("{t} Inc"), p.into()];
        v.push(if p == CAN.id { CAN.name } else { SUITE.name }.into());
        v.extend(n.iter().map(|s| (*s).to_owned()));
        v
    };
    assert_eq!(
        rows,
        vec![
            row("acme", CAN.id, ["2", "1", "0", "0.00"]),
            row("acme", SUITE.id, ["8", "5", "6", "600.00"]),
            row("globex", SUITE.id, ["7", "4", "3", "300.00"]),
        ]
    );

    // The tenant sees its own figures, nobody else's.
    let own = app.tenant_get(&acme, &format!("/usage?{SINCE}")).await;
    let own = own.expect(200);
    assert_eq!(own["tenant_id"], "acme");
    assert_eq!(figures(&own["products"], SUITE.id), expected_acme_suite);
    assert_eq!(figures(&own["products"], CAN.id), expected_acme_can);
    let theirs = app
        .tenant_get(&globex, &format!("/usage?{SINCE}"))
        .await
        .expect(200);
    assert_eq!(theirs["products"].as_array().unwrap().len(), 1);
    assert_eq!(figures(&theirs["products"], SUITE.id), expected_globex);

    // The usage history agrees with the ledger.
    let charges = app.tenant_get(&acme, "/overage-charges").await.expect(200);
    assert_eq!(charges["charges"].as_array().unwrap().len(), 6);

    // A window before any of it is empty; bad parameters are refused.
    let empty = app
        .tenant_get(&acme, "/usage?from=2000-01-01&to=2000-02-01")
        .await
        .expect(200);
    assert_eq!(figures(&empty["products"], SUITE.id), (0, 0, 0, 0.0));
    for bad in [
        "/usage?format=xml",
        "/usage?from=2001-01-01&to=2000-01-01",
        "/usage?from=yesterday",
    ] {
        let r = app.tenant_get(&acme, bad).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_request"),
            "{bad}"
        );
    }
    let r = app.call("GET", &acme.host, "/usage", None, None).await;
    assert_eq!(r.status.as_u16(), 401);
    assert_eq!(json!(own["from"]), json!("2000-01-01T00:00:00.000+00:00"));
    app.stop().await;
}
