//! `GET /events` on the tenant host: the tenant's live events as Server-Sent Events.
//!
//! Each event is `event: <kind>` (`borrow`, `return`, `expire`, `denied`, or whatever
//! kind the actor publishes) and `data: <JSON>` with at least `id`, `tool`, `user` and
//! `at`. A comment line (`: heartbeat`) goes out every 15 s so that proxies keep the
//! connection open. The actor publishes into a bounded broadcast channel and never
//! waits for a subscriber: a consumer that falls more than the channel's buffer behind
//! is told so in a comment and disconnected (it reconnects and carries on), it never
//! slows the tenant down.
use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::Stream;
use futures_util::stream;
use permetrix_actors::domain::{TenantEvent, rfc3339};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::auth::TenantBorrower;
use crate::http::error::Result;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

/// Time between heartbeat comments.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

async fn events(state: web::Data<AppState>, caller: TenantBorrower) -> Result<HttpResponse> {
    let events = state.registry.subscribe(&caller.tenant)?;
    let stream = event_stream(events, HEARTBEAT, state.shutdown.subscribe());
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Reverse proxies (nginx, Fly's) must pass events through unbuffered.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// One SSE frame for `event`.
fn frame(event: &TenantEvent) -> Bytes {
    let mut data = json!({
        "id": event.id.map(|id| id.to_string()),
        "tool": event.tool,
        "user": event.user,
        "at": rfc3339(event.at),
        "is_overage": event.is_overage,
    });
    if let Some(reason) = event.reason {
        data["reason"] = json!(reason);
    }
    // JSON escapes line breaks, so the data stays on one `data:` line.
    Bytes::from(format!("event: {}\ndata: {data}\n\n", event.kind.as_str()))
}

const SHUTTING_DOWN: &[u8] = b": server shutting down; reconnect\n\n";

struct Subscriber {
    events: broadcast::Receiver<TenantEvent>,
    heartbeat: Interval,
    shutdown: watch::Receiver<bool>,
    greeted: bool,
    done: bool,
}

/// The stream of SSE frames: a greeting comment (so that the client knows it is
/// subscribed), then events and heartbeats until the tenant goes away, the consumer
/// lags, or the server shuts down.
pub(crate) fn event_stream(
    events: broadcast::Receiver<TenantEvent>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = std::result::Result<Bytes, Infallible>> {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let subscriber = Subscriber {
        events,
        heartbeat,
        shutdown,
        greeted: false,
        done: false,
    };
    stream::unfold(subscriber, |mut s| async move {
        if s.done {
            return None;
        }
        if !s.greeted {
            s.greeted = true;
            return Some((Ok(Bytes::from_static(b": subscribed\n\n")), s));
        }
        if *s.shutdown.borrow_and_update() {
            s.done = true;
            return Some((Ok(Bytes::from_static(SHUTTING_DOWN)), s));
        }
        let chunk = tokio::select! {
            // A closed notice channel means the server is gone: end as well.
            _ = s.shutdown.changed() => {
                s.done = true;
                Bytes::from_static(SHUTTING_DOWN)
            }
            received = s.events.recv() => match received {
                Ok(event) => frame(&event),
                Err(RecvError::Lagged(missed)) => {
                    s.done = true;
                    Bytes::from(format!(
                        ": dropped: this consumer fell {missed} events behind; reconnect\n\n"
                    ))
                }
                // The tenant's actor is gone (tenant deleted).
                Err(RecvError::Closed) => return None,
            },
            _ = s.heartbeat.tick() => Bytes::from_static(b": heartbeat\n\n"),
        };
        Some((Ok(chunk), s))
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use permetrix_actors::domain::TenantEventKind;
    use permetrix_storage::{BorrowId, Timestamp};

    use super::*;

    fn borrow_event(user: &str) -> TenantEvent {
        TenantEvent {
            kind: TenantEventKind::Borrow,
            id: Some(BorrowId::random()),
            tool: "ECU".into(),
            user: user.into(),
            at: Timestamp::from_secs(1_800_000_000),
            reason: None,
            is_overage: false,
        }
    }

    async fn next(
        s: &mut (impl Stream<Item = std::result::Result<Bytes, Infallible>> + Unpin),
    ) -> String {
        match s.next().await {
            Some(Ok(b)) => String::from_utf8(b.to_vec()).unwrap(),
            None => "<end>".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn greets_then_sends_events_and_heartbeats() {
        let (tx, rx) = broadcast::channel(16);
        let (_stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        let started = Instant::now();
        // Nothing happens: the (paused) clock runs to the first heartbeat.
        assert_eq!(next(&mut s).await, ": heartbeat\n\n");
        assert_eq!(started.elapsed(), HEARTBEAT);

        let event = borrow_event("line\nbreak");
        tx.send(event.clone()).unwrap();
        let text = next(&mut s).await;
        let (head, data) = text.split_once('\n').unwrap();
        assert_eq!(head, "event: borrow");
        let data: serde_json::Value =
            serde_json::from_str(data.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert_eq!(data["id"], event.id.unwrap().to_string());
        assert_eq!(data["user"], "line\nbreak");
        assert_eq!(data["tool"], "ECU");
        assert_eq!(data["at"], "2027-01-15T08:00:00.000+00:00");
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_that_falls_behind_is_dropped_without_blocking_the_sender() {
        let (tx, rx) = broadcast::channel(4);
        let (_stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        // The publisher never waits: ten sends into a buffer of four all succeed.
        for i in 0..10 {
            tx.send(borrow_event(&format!("u{i}"))).unwrap();
        }
        assert_eq!(
            next(&mut s).await,
            ": dropped: this consumer fell 6 events behind; reconnect\n\n"
        );
        assert_eq!(next(&mut s).await, "<end>");
    }

    #[tokio::test(start_paused = true)]
    async fn streams_end_on_shutdown_and_when_the_tenant_goes_away() {
        let (tx, rx) = broadcast::channel(4);
        let (stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        stop.send_replace(true);
        assert_eq!(next(&mut s).await, ": server shutting down; reconnect\n\n");
        assert_eq!(next(&mut s).await, "<end>");

        let (_stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(tx.subscribe(), HEARTBEAT, stopped));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        drop(tx);
        assert_eq!(next(&mut s).await, "<end>");
    }
}
