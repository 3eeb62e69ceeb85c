//! `GET /events` on the tenant host: the tenant's live events as Server-Sent Events.
//!
//! Each event is `event: <kind>` (`borrow`, `return`, `expire`, `denied`, or whatever
//! kind the actor publishes) and `data: <JSON>` with at least `id`, `tool`, `user` and
//! `at`. A comment line (`: heartbeat`) goes out every 15 s so that proxies keep the
//! connection open. The actor publishes into a bounded broadcast channel and never
//! waits for a subscriber: a consumer that falls more than the channel's buffer behind
//! is told so in a comment and disconnected (it reconnects and carries on), it never
//! slows the tenant down.
//!
//! A stream lives no longer than the credential that opened it: it is registered with
//! that credential ([`crate::auth::streams`]) and ends when the key is revoked, the user
//! deleted or the session logged out, and when the key or session expires. Viewers are
//! shown no borrow ids.
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::Stream;
use futures_util::stream;
use permetrix_actors::domain::{TenantEvent, rfc3339};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::auth::streams::{StreamRefusal, StreamTicket};
use crate::auth::{TenantBorrower, now};
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

/// Time between heartbeat comments.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// `Retry-After` of a stream refused for a full cap.
const CAP_RETRY_AFTER: Duration = Duration::from_secs(10);

fn too_many(refusal: StreamRefusal) -> ApiError {
    let detail = match refusal {
        StreamRefusal::Credential(n) => format!(
            "this credential already holds {n} open event streams, the most it may; close one"
        ),
        StreamRefusal::Tenant(n) => {
            format!("this tenant already holds {n} open event streams, the most it may; close one")
        }
    };
    ApiError::TooManyRequests {
        code: "too_many_streams",
        detail,
        retry_after: CAP_RETRY_AFTER,
    }
}

async fn events(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let ticket = state
        .streams
        .open(&caller.tenant, caller.holder(), caller.session.clone())
        .map_err(too_many)?;
    // The credential was checked before the stream was registered; a revocation in
    // between found nothing to end. Checked again now, a revocation from here on finds
    // the stream.
    TenantBorrower::from_request(&req, &mut Payload::None).await?;
    let events = state.registry.subscribe(&caller.tenant).await?;
    let lifetime = caller
        .expires_at
        .map(|at| now(&state).until(at).max(Duration::from_millis(1)));
    let stream = event_stream(
        events,
        HEARTBEAT,
        state.shutdown.subscribe(),
        Bounds {
            ticket: Some(ticket),
            lifetime,
            mask_ids: caller.is_viewer(),
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Reverse proxies (nginx, Fly's) must pass events through unbuffered.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// What ends a stream besides the server and its tenant, and what it shows.
#[derive(Default)]
pub(crate) struct Bounds {
    /// Its place in the registry of streams: resolves when the credential is ended.
    pub ticket: Option<StreamTicket>,
    /// Time until the credential expires.
    pub lifetime: Option<Duration>,
    /// Show no borrow ids (a viewer's stream).
    pub mask_ids: bool,
}

/// One SSE frame for `event`.
fn frame(event: &TenantEvent, mask_ids: bool) -> Bytes {
    let id = event.id.filter(|_| !mask_ids).map(|id| id.to_string());
    let mut data = json!({
        "id": id,
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
const CREDENTIAL_ENDED: &[u8] =
    b": the credential of this stream was revoked or logged out; stream ended\n\n";
const CREDENTIAL_EXPIRED: &[u8] = b": the credential of this stream expired; stream ended\n\n";

struct Subscriber {
    events: broadcast::Receiver<TenantEvent>,
    heartbeat: Interval,
    shutdown: watch::Receiver<bool>,
    ticket: Option<StreamTicket>,
    expiry: Option<Pin<Box<Sleep>>>,
    mask_ids: bool,
    greeted: bool,
    done: bool,
}

/// Resolves when the stream's credential is ended (never without a ticket).
async fn credential_ended(ticket: &mut Option<StreamTicket>) {
    match ticket {
        // A dropped sender means the registry is gone with the server: end as well.
        Some(t) => {
            let _ = t.ended().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves when the stream's credential expires (never without an expiry).
async fn credential_expired(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The stream of SSE frames: a greeting comment (so that the client knows it is
/// subscribed), then events and heartbeats until the tenant goes away, the consumer
/// lags, the credential ends or the server shuts down.
pub(crate) fn event_stream(
    events: broadcast::Receiver<TenantEvent>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
    bounds: Bounds,
) -> impl Stream<Item = std::result::Result<Bytes, Infallible>> {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let subscriber = Subscriber {
        events,
        heartbeat,
        shutdown,
        ticket: bounds.ticket,
        expiry: bounds.lifetime.map(|d| Box::pin(tokio::time::sleep(d))),
        mask_ids: bounds.mask_ids,
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
            // In this order: once a credential has ended, not one more event goes out,
            // even if events were waiting.
            biased;
            // A closed notice channel means the server is gone: end as well.
            _ = s.shutdown.changed() => {
                s.done = true;
                Bytes::from_static(SHUTTING_DOWN)
            }
            () = credential_ended(&mut s.ticket) => {
                s.done = true;
                Bytes::from_static(CREDENTIAL_ENDED)
            }
            () = credential_expired(&mut s.expiry) => {
                s.done = true;
                Bytes::from_static(CREDENTIAL_EXPIRED)
            }
            received = s.events.recv() => match received {
                Ok(event) => frame(&event, s.mask_ids),
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
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped, Bounds::default()));
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
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped, Bounds::default()));
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
    async fn a_stream_ends_with_its_credential_and_shows_viewers_no_ids() {
        use crate::auth::streams::{Holder, StreamLimits, StreamRegistry};
        use permetrix_storage::TenantId;

        let registry = StreamRegistry::new(StreamLimits::default());
        let acme = TenantId::parse("acme").unwrap();
        let (tx, rx) = broadcast::channel(16);
        let (_stop, stopped) = watch::channel(false);
        let ticket = registry
            .open(&acme, Holder::Key("k1".into()), None)
            .unwrap();
        let bounds = Bounds {
            ticket: Some(ticket),
            lifetime: None,
            mask_ids: true,
        };
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped, bounds));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        tx.send(borrow_event("dev1")).unwrap();
        let text = next(&mut s).await;
        assert!(text.contains("\"id\":null"), "{text}");
        // Ended: nothing more goes out, not even an event that was already waiting.
        tx.send(borrow_event("dev2")).unwrap();
        registry.end_key(&acme, "k1");
        assert_eq!(next(&mut s).await.as_bytes(), CREDENTIAL_ENDED);
        assert_eq!(next(&mut s).await, "<end>");
        assert_eq!(registry.open_streams(), 0);

        // A credential that expires ends its stream when it does.
        let (_tx, rx) = broadcast::channel::<TenantEvent>(16);
        let (_stop, stopped) = watch::channel(false);
        let bounds = Bounds {
            lifetime: Some(Duration::from_secs(20)),
            ..Bounds::default()
        };
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped, bounds));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        assert_eq!(next(&mut s).await, ": heartbeat\n\n");
        assert_eq!(next(&mut s).await.as_bytes(), CREDENTIAL_EXPIRED);
        assert_eq!(next(&mut s).await, "<end>");
    }

    #[tokio::test(start_paused = true)]
    async fn streams_end_on_shutdown_and_when_the_tenant_goes_away() {
        let (tx, rx) = broadcast::channel(4);
        let (stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(rx, HEARTBEAT, stopped, Bounds::default()));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        stop.send_replace(true);
        assert_eq!(next(&mut s).await, ": server shutting down; reconnect\n\n");
        assert_eq!(next(&mut s).await, "<end>");

        let (_stop, stopped) = watch::channel(false);
        let mut s = Box::pin(event_stream(
            tx.subscribe(),
            HEARTBEAT,
            stopped,
            Bounds::default(),
        ));
        assert_eq!(next(&mut s).await, ": subscribed\n\n");
        drop(tx);
        assert_eq!(next(&mut s).await, "<end>");
    }
}
