//! Many clients at once against one pool.

use crate::helpers::*;

crate::on_both_stores!(two_hundred_concurrent_borrows_of_ten_seats_grant_exactly_ten);

async fn two_hundred_concurrent_borrows_of_ten_seats_grant_exactly_ten(store: TestStore) {
    let app = TestApp::builder().store(&store).spawn().await;
    let tool = Tool {
        name: "CAN Bus Analyzer Pro",
        id: "can-analyzer-pro",
        commit: 10,
        overage: 0,
        price: 0.0,
    };
    let t = bootstrap(&app, "vector", "acme", &tool).await;
    let asks = (0..200).map(|i| app.borrow_json(&t, borrow_body(tool.name, &format!("u{i}"))));
    let replies = futures_util::future::join_all(asks).await;
    let granted: Vec<_> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 200)
        .collect();
    let refused = replies
        .iter()
        .filter(|r| r.status.as_u16() == 409 && r.code() == "no_seats")
        .count();
    assert_eq!((granted.len(), refused), (10, 190));
    let mut ids: Vec<_> = granted
        .iter()
        .map(|r| r.body["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "borrow ids are unique");

    let s = app.status_of(&t, tool.id).await;
    assert_eq!(
        (s["borrowed"].as_u64(), s["available"].as_u64()),
        (Some(10), Some(0))
    );
    let listed = app
        .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 10);

    // Returning all ten frees the pool completely.
    for id in ids {
        app.return_ok(&t.host, id).await;
    }
    let s = app.status_of(&t, tool.id).await;
    assert_eq!(s["borrowed"], 0);
    app.stop().await;
}

#[actix_web::test]
async fn overage_cap_refuses_with_max_overage_reached() {
    let app = TestApp::builder().spawn().await;
    let tool = Tool {
        name: "GreenHills Multi IDE",
        id: "greenhills-multi",
        commit: 2,
        overage: 1,
        price: 800.0,
    };
    let t = bootstrap(&app, "vector", "acme", &tool).await;
    for i in 0..3 {
        app.borrow_ok(&t, tool.id, &format!("u{i}")).await;
    }
    let r = app.borrow(&t, tool.id, "u9").await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "max_overage_reached"));
    app.stop().await;
}
