//! The FIFO wait queue over HTTP: a freed seat goes to the head at once, the order is
//! first come first served, a client that disconnects leaves the queue, and a wait
//! that runs out answers 409 with the original reason.
use serde_json::{Value, json};

use crate::helpers::*;

async fn waiting(app: &TestApp, t: &Tenant) -> u64 {
    app.status_of(t, "bus").await["waiting"].as_u64().unwrap()
}

async fn holder(app: &TestApp, t: &Tenant) -> Option<(String, String)> {
    let list = app
        .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
        .await
        .expect(200);
    list.as_array().unwrap().first().map(|b| {
        (
            b["id"].as_str().unwrap().to_owned(),
            b["user"].as_str().unwrap().to_owned(),
        )
    })
}

fn waiting_borrow(user: &str, wait: u32) -> Value {
    json!({"tool": "bus", "user": user, "wait_seconds": wait})
}

#[actix_web::test]
async fn waiters_get_freed_seats_first_come_first_served() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    app.borrow_ok(&t, "bus", "holder").await;

    let w1 = app.borrow_json(&t, waiting_borrow("w1", 120));
    let w2 = async {
        wait_until("w1 queued", || async { waiting(&app, &t).await >= 1 }).await;
        app.borrow_json(&t, waiting_borrow("w2", 120)).await
    };
    let w3 = async {
        wait_until("w2 queued", || async { waiting(&app, &t).await >= 2 }).await;
        app.borrow_json(&t, waiting_borrow("w3", 120)).await
    };
    let driver = async {
        wait_until("three waiters", || async { waiting(&app, &t).await == 3 }).await;
        let q = app
            .call(
                "GET",
                &t.host,
                "/licenses/bus/queue",
                Some(&t.admin_key),
                None,
            )
            .await
            .expect(200);
        assert_eq!(q["tool"], "Bus Analyser");
        assert_eq!(q["waiting"], 3);
        let order: Vec<_> = q["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["position"].as_u64().unwrap(),
                    e["user"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [(1, "w1".into()), (2, "w2".into()), (3, "w3".into())]
        );
        assert!(q["queue"][0]["since"].is_string());
        for next in ["w1", "w2", "w3"] {
            let (id, _) = holder(&app, &t).await.unwrap();
            app.return_ok(&t.host, id).await;
            // The seat went straight to the head of the queue: nobody polled for it.
            wait_until("the next waiter holds the seat", || async {
                holder(&app, &t).await.is_some_and(|(_, u)| u == next)
            })
            .await;
        }
    };
    let (r1, r2, r3, ()) = tokio::join!(w1, w2, w3, driver);
    for (r, user) in [(r1, "w1"), (r2, "w2"), (r3, "w3")] {
        let body = r.expect(200);
        assert_eq!(body["user"], user);
    }
    assert_eq!(waiting(&app, &t).await, 0);
}

#[actix_web::test]
async fn a_waiter_whose_client_disconnects_leaves_the_queue() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let held = app.borrow_ok(&t, "bus", "holder").await;

    let mut raw = RawConn::open(app.addr);
    raw.post_json(
        "/licenses/borrow",
        &t.host,
        &t.admin_key,
        &waiting_borrow("impatient", 300),
    );
    wait_until("the raw client is queued", || async {
        waiting(&app, &t).await == 1
    })
    .await;
    drop(raw);
    wait_until("the departed waiter is removed", || async {
        waiting(&app, &t).await == 0
    })
    .await;

    // The freed seat goes to nobody: the departed waiter got nothing.
    app.return_ok(&t.host, &held["id"]).await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 0);
    assert!(holder(&app, &t).await.is_none());
}

#[actix_web::test]
async fn a_wait_that_runs_out_answers_409_with_the_original_reason() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    app.borrow_ok(&t, "bus", "holder").await;
    // No wait, or a wait of 0: refused at once.
    let r = app.borrow(&t, "bus", "x").await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "no_seats"));
    let r = app.borrow_json(&t, waiting_borrow("x", 0)).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "no_seats"));
    let r = app.borrow_json(&t, waiting_borrow("x", 301)).await;
    assert_eq!(r.status.as_u16(), 400);

    let waiter = app.borrow_json(&t, waiting_borrow("patient", 5));
    let driver = async {
        wait_until("queued", || async { waiting(&app, &t).await == 1 }).await;
        app.advance("acme", 4).await;
        assert_eq!(waiting(&app, &t).await, 1);
        app.advance("acme", 1).await;
    };
    let (r, ()) = tokio::join!(waiter, driver);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "no_seats"),
        "{}",
        r.body
    );
    assert!(r.body["detail"].as_str().unwrap().contains("in use"));
    assert_eq!(waiting(&app, &t).await, 0);
}

#[actix_web::test]
async fn an_expired_lease_hands_its_seat_to_the_waiter() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    app.borrow_json(&t, lease_body("bus", "crashed-agent", 30))
        .await
        .expect(200);
    let waiter = app.borrow_json(&t, waiting_borrow("next-job", 300));
    let driver = async {
        wait_until("queued", || async { waiting(&app, &t).await == 1 }).await;
        assert_eq!(app.advance("acme", 30).await.expired, 1);
    };
    let (r, ()) = tokio::join!(waiter, driver);
    assert_eq!(r.expect(200)["user"], "next-job");
    let s = app.status_of(&t, "bus").await;
    assert_eq!(
        (s["borrowed"].as_u64(), s["waiting"].as_u64()),
        (Some(1), Some(0))
    );
}
