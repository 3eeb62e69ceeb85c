//! `GET /events`: live borrow, denied and return events over Server-Sent Events.
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

#[actix_web::test]
async fn a_subscriber_receives_borrow_denied_and_return_events() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let res = subscribe(&app, &t).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut stream = res;
    let mut buffer = String::new();
    // The greeting proves the subscription exists before we act.
    until_subscribed(&mut stream, &mut buffer).await;

    let granted = app.borrow_ok(&t, ECU.id, "dev1").await;
    let e = next_event(&mut stream, &mut buffer, "borrow").await;
    assert_eq!(e["id"], granted["id"]);
    assert_eq!(e["tool"], ECU.name);
    assert_eq!(e["user"], "dev1");
    assert_eq!(e["at"], granted["borrowed_at"]);

    app.borrow(&t, "Nothing Such", "dev2").await;
    let e = next_event(&mut stream, &mut buffer, "denied").await;
    assert_eq!(
        (&e["id"], &e["tool"], &e["user"], &e["reason"]),
        (
            &Value::Null,
            &json!("Nothing Such"),
            &json!("dev2"),
            &json!("unknown_tool")
        )
    );
    assert!(e["at"].is_string());

    app.return_ok(&t.host, &granted["id"]).await;
    let e = next_event(&mut stream, &mut buffer, "return").await;
    assert_eq!((&e["id"], &e["user"]), (&granted["id"], &json!("dev1")));
    app.stop().await;
}

#[actix_web::test]
async fn events_need_a_key_of_this_tenant() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    let r = app.call("GET", &acme.host, "/events", None, None).await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call("GET", &acme.host, "/events", Some(&globex.admin_key), None)
        .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = app
        .call(
            "GET",
            "ghost.localhost",
            "/events",
            Some(&acme.admin_key),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);
    app.stop().await;
}

#[actix_web::test]
async fn sigterm_ends_open_event_streams_and_the_server_exits_cleanly() {
    let server = TestApp::builder()
        .token("events-shutdown-operator-token")
        .process();
    let app = server.app();
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut stream = subscribe(&app, &t).await;
    let mut seen = String::new();
    until_subscribed(&mut stream, &mut seen).await;

    server.signal(Signal::SIGTERM);
    // The stream says goodbye and ends, instead of holding the shutdown open.
    while let Some(Ok(chunk)) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the stream stayed open after SIGTERM")
    {
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains(": server shutting down"), "{seen:?}");
    let (exit, _) = server.wait_exit();
    assert!(exit.success(), "{exit:?}");
}
