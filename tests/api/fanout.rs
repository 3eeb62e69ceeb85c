//! Vendor and operator fan-out: thousands of tenants with live counts, a tenant that
//! does not answer in time, and idle tenants read without activation.
use std::time::Duration;

use permetrix::accounts::{self, NewTenant};
use permetrix_actors::domain::BorrowRequest;
use permetrix_actors::messages::Borrow;
use permetrix_storage::records::PackageRecord;
use permetrix_storage::test_records;
use permetrix_storage::{Durability, Money, TenantId, Timestamp, VendorId};
use serde_json::Value;

use crate::commercial_helpers::customers;
use crate::helpers::*;
use crate::metrics::Hold;

fn package(tenant: &str) -> PackageRecord {
    let base = test_records::package(ECU.id, ECU.commit, Timestamp::now());
    PackageRecord {
        package_id: format!("pkg-{tenant}"),
        product_name: ECU.name.into(),
        ..test_records::with_overage(base, ECU.overage, Money::ZERO)
    }
}

/// `n` more tenants of vendor `vector`, created and provisioned in-process (the HTTP
/// path of both is covered elsewhere); tenant `c<i>` holds `i % 7` seats.
async fn seed(s: &StatefulApp, n: usize) -> Vec<TenantId> {
    let vendor = VendorId::parse("vector").unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = TenantId::parse(&format!("c{i:05}")).unwrap();
        accounts::create_tenant(
            &s.state,
            &vendor,
            NewTenant {
                tenant_id: id.clone(),
                company_name: format!("Customer {i}"),
                domain: None,
                crm_id: None,
            },
        )
        .await
        .unwrap();
        accounts::provision(&s.state, &vendor, &id, package(id.as_str()))
            .await
            .unwrap();
        for u in 0..i % 7 {
            s.state
                .registry
                .send(
                    &id,
                    Borrow::now(BorrowRequest::parse(ECU.id, &format!("u{u}"), None).unwrap()),
                )
                .await
                .unwrap();
        }
        ids.push(id);
    }
    ids
}

fn seats_of(i: usize) -> u64 {
    (i % 7) as u64
}

#[actix_web::test]
async fn a_fan_out_over_two_thousand_tenants_returns_them_all_with_live_counts() {
    let s = spawn_stateful(|c| {
        // Seeding speed only: the fan-out reads what the actors hold.
        c.durability = Durability::Relaxed {
            interval: Duration::from_millis(50),
        };
        c.arbiters = 2;
    })
    .await;
    let first = bootstrap(&s.app, "vector", "acme", &ECU).await;
    let ids = seed(&s, 2_000).await;

    let body = customers(&s.app, &first.vendor_key).await;
    assert_eq!(body["partial"], false);
    assert_eq!(body["missing"], serde_json::json!([]));
    let list = body["customers"].as_array().unwrap();
    assert_eq!(list.len(), 2_001);
    let by_id: std::collections::HashMap<&str, &Value> = list
        .iter()
        .map(|c| (c["tenant_id"].as_str().unwrap(), c))
        .collect();
    let mut expected_total = 0;
    for (i, id) in ids.iter().enumerate() {
        let c = by_id[id.as_str()];
        assert_eq!(c["live"], true, "{id}");
        assert_eq!(c["usage"]["borrowed"].as_u64(), Some(seats_of(i)), "{id}");
        assert_eq!(c["usage"]["total"].as_u64(), Some(20), "{id}");
        assert_eq!(
            c["usage"]["overage"].as_u64(),
            Some(seats_of(i).saturating_sub(5)),
            "{id}"
        );
        expected_total += seats_of(i);
    }

    let stats = s
        .app
        .operator("GET", "/api/admin/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["tenants"], 2_001);
    assert_eq!(stats["partial"], false);
    assert_eq!(stats["usage"]["borrowed"].as_u64(), Some(expected_total));
    s.stop().await;
}

#[actix_web::test]
async fn a_tenant_that_does_not_answer_in_time_is_missing_and_the_others_return() {
    let s = spawn_stateful(|c| {
        c.fanout_deadline = Duration::from_millis(300);
        // Holding an actor blocks its arbiter thread: with many arbiters, most
        // tenants live elsewhere and must still answer.
        c.arbiters = 8;
    })
    .await;
    let first = bootstrap(&s.app, "vector", "acme", &ECU).await;
    let ids = seed(&s, 24).await;
    let held = ids[3].clone();

    let (release, gate) = std::sync::mpsc::channel();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let registry = s.state.registry.clone();
    let h = held.clone();
    let holder = actix_rt::spawn(async move { registry.send(&h, Hold(gate, entered_tx)).await });
    assert!(
        eventually(|| entered.try_recv().is_ok()).await,
        "the actor never picked up Hold"
    );

    let body = customers(&s.app, &first.vendor_key).await;
    assert_eq!(body["partial"], true);
    let missing: Vec<&str> = body["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(missing.contains(&held.as_str()), "{missing:?}");
    assert!(
        missing.len() < ids.len() / 2,
        "most tenants must answer: {missing:?}"
    );
    for c in body["customers"].as_array().unwrap() {
        let id = c["tenant_id"].as_str().unwrap();
        let Some(i) = ids.iter().position(|t| t.as_str() == id) else {
            continue;
        };
        if missing.contains(&id) {
            assert_eq!(c["live"], false, "{id}");
        } else {
            assert_eq!(c["live"], true, "{id}");
            assert_eq!(c["usage"]["borrowed"].as_u64(), Some(seats_of(i)), "{id}");
        }
    }

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let body = customers(&s.app, &first.vendor_key).await;
    assert_eq!(body["partial"], false);
    s.stop().await;
}

#[actix_web::test]
async fn after_a_restart_idle_tenants_are_read_from_storage_without_activation() {
    let dir = tempfile::tempdir().unwrap();
    let token = "fanout-restart-operator-token";
    let first = ServerProcess::start(dir.path(), token, &[]);
    let app = TestApp::new(first.addr, token);
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut tenants = vec![acme];
    for i in 0..11 {
        let t = add_tenant(
            &app,
            &tenants[0].vendor_key,
            &tenants[0].signing_secret,
            &format!("c{i:02}"),
            &ECU,
        )
        .await;
        tenants.push(t);
    }
    for (i, t) in tenants.iter().enumerate() {
        for u in 0..seats_of(i) {
            app.borrow_ok(t, ECU.id, &format!("u{u}")).await;
        }
    }
    first.kill9();

    let second = ServerProcess::start(dir.path(), token, &[]);
    let app = TestApp::new(second.addr, token);
    let body = customers(&app, &tenants[0].vendor_key).await;
    assert_eq!(body["partial"], false);
    for (i, t) in tenants.iter().enumerate() {
        let c = body["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["tenant_id"] == t.id.as_str())
            .unwrap();
        assert_eq!(
            c["usage"]["borrowed"].as_u64(),
            Some(seats_of(i)),
            "{}",
            t.id
        );
    }
    let stats = app
        .operator("GET", "/api/admin/stats", None)
        .await
        .expect(200);
    let expected: u64 = (0..tenants.len()).map(seats_of).sum();
    assert_eq!(stats["usage"]["borrowed"].as_u64(), Some(expected));
    assert_eq!(stats["active_actors"], 0, "fan-out activated idle tenants");
    second.kill9();
}
