//! `GET /events`: live borrow, denied and return events over Server-Sent Events.
use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::helpers::*;

/// Reads the stream until a frame of `kind` arrives; returns its data (bounded: a
/// stream that stays silent fails the test instead of hanging it).
pub async fn next_event<S>(stream: &mut S, buffer: &mut String, kind: &str) -> Value
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let head = format!("event: {kind}\ndata: ");
    loop {
        if let Some(start) = buffer.find(&head) {
            let rest = &buffer[start + head.len()..];
            if let Some(end) = rest.find("\n\n") {
                let data: Value = serde_json::from_str(&rest[..end]).expect("data is JSON");
                let consumed = start + head.len() + end + 2;
                buffer.drain(..consumed);
                return data;
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no '{kind}' event; stream so far: {buffer:?}"))
            .expect("stream still open")
            .expect("chunk readable");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
}

#[actix_web::test]
async fn a_subscriber_receives_borrow_denied_and_return_events() {
    let app = spawn_app().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let res = app
        .client
        .get(app.url("/events"))
        .insert_header(("Host", t.host.as_str()))
        .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
        .send()
        .await
        .expect("subscribed");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut stream = res;
    let mut buffer = String::new();
    // The greeting proves the subscription exists before we act.
    while !buffer.contains(": subscribed\n\n") {
        let chunk = stream.next().await.unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }

    let granted = app
        .call(
            "POST",
            &t.host,
            "/licenses/borrow",
            Some(&t.admin_key),
            Some(borrow_body(ECU.id, "dev1")),
        )
        .await
        .expect(200);
    let e = next_event(&mut stream, &mut buffer, "borrow").await;
    assert_eq!(e["id"], granted["id"]);
    assert_eq!(e["tool"], ECU.name);
    assert_eq!(e["user"], "dev1");
    assert_eq!(e["at"], granted["borrowed_at"]);

    app.call(
        "POST",
        &t.host,
        "/licenses/borrow",
        Some(&t.admin_key),
        Some(borrow_body("Nothing Such", "dev2")),
    )
    .await;
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

    app.call(
        "POST",
        &t.host,
        "/licenses/return",
        None,
        Some(json!({"id": granted["id"]})),
    )
    .await
    .expect(200);
    let e = next_event(&mut stream, &mut buffer, "return").await;
    assert_eq!((&e["id"], &e["user"]), (&granted["id"], &json!("dev1")));
    app.stop().await;
}

#[actix_web::test]
async fn events_need_a_key_of_this_tenant() {
    let app = spawn_app().await;
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
    let dir = tempfile::tempdir().unwrap();
    let token = "events-shutdown-operator-token";
    let server = ServerProcess::start(dir.path(), token, &[]);
    let app = TestApp::new(server.addr, token);
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut stream = app
        .client
        .get(app.url("/events"))
        .insert_header(("Host", t.host.as_str()))
        .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
        .send()
        .await
        .expect("subscribed");
    let mut seen = String::new();
    while !seen.contains(": subscribed\n\n") {
        let chunk = stream.next().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }

    let mut child = server.child;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The stream says goodbye and ends, instead of holding the shutdown open.
    while let Some(Ok(chunk)) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the stream stayed open after SIGTERM")
    {
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains(": server shutting down"), "{seen:?}");
    let exit = child.wait().expect("server exits");
    assert!(exit.success(), "{exit:?}");
}
