//! `GET /events` from the client's side: a tenant's subscription and its frames.
use std::time::Duration;

use actix_web::web::Bytes;
use awc::error::PayloadError;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::accounts::Tenant;
use super::app::TestApp;
use super::poll::PATIENCE;

/// Subscribes to `t`'s events with its admin key; the response is the stream.
pub async fn subscribe(
    app: &TestApp,
    t: &Tenant,
) -> awc::ClientResponse<impl Stream<Item = Result<Bytes, PayloadError>> + Unpin + use<>> {
    app.client
        .get(app.url("/events"))
        .insert_header(("Host", t.host.as_str()))
        .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
        .send()
        .await
        .expect("subscribed")
}

/// Subscribes to the events of the tenant at `host` with arbitrary headers (a key, a
/// session cookie); the response, whatever its status.
pub async fn subscribe_with(
    app: &TestApp,
    host: &str,
    headers: &[(&str, &str)],
) -> awc::ClientResponse<impl Stream<Item = Result<Bytes, PayloadError>> + Unpin + use<>> {
    let mut req = app
        .client
        .get(app.url("/events"))
        .insert_header(("Host", host));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    req.send().await.expect("subscription sent")
}

/// Reads the stream into `buffer` until it ends; fails the test if it stays open for
/// [`PATIENCE`] (a stream that should have been ended never ends by itself).
pub async fn until_end<S>(stream: &mut S, buffer: &mut String)
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    // One deadline for the whole read: heartbeats would keep a per-chunk timeout alive.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("the stream stayed open; so far: {buffer:?}"));
        match next {
            Some(Ok(chunk)) => buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8")),
            Some(Err(_)) | None => return,
        }
    }
}

/// Reads into `buffer` until the greeting, which proves the subscription exists.
pub async fn until_subscribed<S>(stream: &mut S, buffer: &mut String)
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    while !buffer.contains(": subscribed\n\n") {
        let chunk = stream.next().await.unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// Reads the stream until a frame of `kind` arrives; returns its data (bounded: a
/// stream that stays silent fails the test instead of hanging it).
pub async fn next_event<S>(stream: &mut S, buffer: &mut String, kind: &str) -> Value
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
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
