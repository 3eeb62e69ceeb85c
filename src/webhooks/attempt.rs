//! One delivery: find the next event an endpoint wants from a tenant's outbox (only
//! what is durable), POST it signed, and record the outcome (the delivery, and the
//! cursor if it was delivered) before the lane moves on.
use std::sync::Arc;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use awc::http::header;
use permetrix_actors::domain::{WebhookEventKind, rfc3339};
use permetrix_storage::records::{DeliveryStatus, OutboxRecord, WebhookDeliveryRecord};
use permetrix_storage::{StorageError, Store, TenantId, Timestamp};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::address::UrlError;
use super::backoff::{self, GIVE_UP_AFTER};
use super::endpoints::Endpoint;
use super::hooks::TenantProgress;
use super::{Inner, signature};
use crate::metrics::DeliveryOutcome;

/// Events read from storage at a time while looking for the next one to deliver.
const READ_BATCH: usize = 64;
/// The most of a receiver's answer that is read (and ignored).
const MAX_ANSWER: usize = 64 * 1024;

/// What an attempt needs besides its lane.
pub(super) struct AttemptCx {
    pub(super) inner: Arc<Inner>,
    pub(super) store: Arc<dyn Store>,
    pub(super) client: awc::Client,
}

/// The failures of the event at the head of a lane so far.
#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    pub(super) attempts: u32,
    pub(super) first_attempt_at: Timestamp,
    pub(super) next_at: Timestamp,
}

/// One lane's next step, as the worker hands it out.
pub(super) struct Job {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) tenant: TenantId,
    pub(super) progress: Arc<TenantProgress>,
    pub(super) cursor: Option<u64>,
    pub(super) retry: Option<Retry>,
}

/// How a step ended.
pub(super) enum Outcome {
    /// Nothing (more) to deliver now; the cursor may have moved past unwanted events.
    Idle { cursor: Option<u64>, head: u64 },
    /// The event at `cursor` was delivered (and recorded); more may follow.
    Delivered {
        cursor: u64,
        head: u64,
        new_delivery: bool,
    },
    /// The head event failed; try again at `retry.next_at`.
    Failed {
        retry: Retry,
        head: u64,
        new_delivery: bool,
    },
    /// The head event has failed for the whole retry period: disable the endpoint.
    GaveUp { why: String },
    /// Storage could not be read or written.
    Unavailable(StorageError),
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    created_at: String,
    tenant: &'a str,
    /// Position in the tenant's outbox: order, and gaps left by a full outbox.
    sequence: u64,
    data: serde_json::Value,
}

fn body(tenant: &TenantId, event: &OutboxRecord) -> String {
    let data = serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null);
    let body = Body {
        id: &event.id,
        kind: &event.kind,
        created_at: rfc3339(event.created_at),
        tenant: tenant.as_str(),
        sequence: event.seq,
        data,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The next event of the tenant the endpoint wants, with the cursor moved past the ones
/// it does not want (or that are older than the endpoint), and the newest durable
/// sequence number seen.
fn next_event(
    cx: &AttemptCx,
    job: &Job,
) -> Result<(Option<OutboxRecord>, Option<u64>, u64), StorageError> {
    let mut cursor = job.cursor;
    let mut head = 0;
    loop {
        let events = cx
            .store
            .outbox(&job.tenant, cursor.unwrap_or(0), READ_BATCH)?;
        // Read after the events: what was stored before the actor first loaded was
        // durable, what it wrote since is durable up to here.
        let durable = job.progress.durable();
        let full = events.len() == READ_BATCH;
        head = events
            .iter()
            .map(|e| e.seq)
            .filter(|seq| *seq <= durable)
            .fold(head, u64::max);
        for event in events {
            if event.seq > durable {
                return Ok((None, cursor, head));
            }
            let wanted = WebhookEventKind::parse(&event.kind)
                .is_some_and(|k| job.endpoint.events.contains(k));
            let before_endpoint =
                job.cursor.is_none() && event.created_at < job.endpoint.created_at;
            if wanted && !before_endpoint {
                return Ok((Some(event), cursor, head));
            }
            cursor = Some(event.seq);
        }
        if !full {
            return Ok((None, cursor, head));
        }
    }
}

/// One step of a lane.
pub(super) async fn step(cx: &AttemptCx, job: Job) -> Outcome {
    let (event, cursor, head) = match next_event(cx, &job) {
        Ok(found) => found,
        Err(e) => return Outcome::Unavailable(e),
    };
    let Some(event) = event else {
        if cursor != job.cursor
            && let Some(seq) = cursor
            && let Err(e) = persist_cursor(cx, &job, seq).await
        {
            return Outcome::Unavailable(e);
        }
        return Outcome::Idle { cursor, head };
    };
    let id = format!("{}.{}", job.tenant, event.seq);
    let earlier = match job.retry {
        Some(_) => None,
        // After a restart the head's failures so far are in its delivery record.
        None => match cx.inner.platform.webhook_delivery(&job.endpoint.id, &id) {
            Ok(found) => found.filter(|d| d.status == DeliveryStatus::Pending),
            Err(e) => return Outcome::Unavailable(e),
        },
    };
    let new_delivery = job.retry.is_none() && earlier.is_none();
    let now = cx.inner.clock.now();
    let mut delivery = earlier.unwrap_or_else(|| WebhookDeliveryRecord {
        id,
        tenant_id: job.tenant.to_string(),
        seq: event.seq,
        event_id: event.id.clone(),
        kind: event.kind.clone(),
        body: body(&job.tenant, &event),
        status: DeliveryStatus::Pending,
        attempts: job.retry.map_or(0, |r| r.attempts),
        first_attempt_at: job.retry.map_or(now, |r| r.first_attempt_at),
        last_attempt_at: now,
        next_attempt_at: None,
        response_status: None,
        error: None,
        delivered_at: None,
    });
    let sent = post(cx, &job.endpoint, &delivery.body).await;
    let now = cx.inner.clock.now();
    apply(&mut delivery, &sent, now);
    let delivered = sent.is_ok();
    let failing_for = delivery.first_attempt_at.until(now);
    if !delivered {
        if failing_for >= GIVE_UP_AFTER {
            delivery.status = DeliveryStatus::Failed;
        } else {
            let wait = backoff::delay(
                cx.inner.settings.retry_base,
                delivery.attempts,
                backoff::jitter(),
            );
            delivery.next_attempt_at = Some(now.plus(wait));
        }
    }
    let recorded =
        cx.inner
            .platform
            .record_webhook_delivery(&job.endpoint.id, &delivery, delivered);
    if let Err(e) = match recorded {
        Ok(durable) => durable.wait().await,
        Err(e) => Err(e),
    } {
        return Outcome::Unavailable(e);
    }
    match (delivered, delivery.next_attempt_at) {
        (true, _) => Outcome::Delivered {
            cursor: event.seq,
            head,
            new_delivery,
        },
        (false, Some(next_at)) => Outcome::Failed {
            retry: Retry {
                attempts: delivery.attempts,
                first_attempt_at: delivery.first_attempt_at,
                next_at,
            },
            head,
            new_delivery,
        },
        (false, None) => Outcome::GaveUp {
            why: format!(
                "deliveries failed for {} hours (last: {})",
                GIVE_UP_AFTER.as_secs() / 3600,
                delivery.error.as_deref().unwrap_or("no answer")
            ),
        },
    }
}

/// Sends a recorded delivery again now, out of order; the record shows the outcome.
pub(super) async fn resend(
    cx: &AttemptCx,
    endpoint: &Endpoint,
    mut delivery: WebhookDeliveryRecord,
) {
    let sent = post(cx, endpoint, &delivery.body).await;
    apply(&mut delivery, &sent, cx.inner.clock.now());
    let recorded = cx
        .inner
        .platform
        .record_webhook_delivery(&endpoint.id, &delivery, false);
    if let Err(e) = match recorded {
        Ok(durable) => durable.wait().await,
        Err(e) => Err(e),
    } {
        tracing::warn!(endpoint = %endpoint.id, delivery = %delivery.id, error = %e, "recording a resent delivery failed");
    }
}

/// Records an attempt's outcome in the delivery.
fn apply(delivery: &mut WebhookDeliveryRecord, sent: &Result<u16, Failure>, now: Timestamp) {
    delivery.attempts += 1;
    delivery.last_attempt_at = now;
    delivery.next_attempt_at = None;
    match sent {
        Ok(status) => {
            delivery.response_status = Some(*status);
            delivery.error = None;
            delivery.status = DeliveryStatus::Delivered;
            delivery.delivered_at.get_or_insert(now);
        }
        Err(failure) => {
            delivery.response_status = failure.status;
            delivery.error = Some(failure.why.clone());
        }
    }
}

/// Why a POST did not deliver.
struct Failure {
    status: Option<u16>,
    why: String,
}

async fn persist_cursor(cx: &AttemptCx, job: &Job, seq: u64) -> Result<(), StorageError> {
    cx.inner
        .platform
        .set_webhook_cursor(&job.endpoint.id, &job.tenant, seq)?
        .wait()
        .await
}

/// POSTs `body` signed; the 2xx status, or why not. Counted in the metrics.
async fn post(cx: &AttemptCx, endpoint: &Endpoint, body: &str) -> Result<u16, Failure> {
    let (outcome, result) = send(cx, endpoint, body).await;
    cx.inner.metrics.delivery(outcome);
    if let Err(f) = &result {
        // The URL is not logged: receivers' URLs often carry a token.
        tracing::info!(endpoint = %endpoint.id, error = %f.why, "webhook delivery failed");
    }
    result
}

async fn send(
    cx: &AttemptCx,
    endpoint: &Endpoint,
    body: &str,
) -> (DeliveryOutcome, Result<u16, Failure>) {
    let fail = |outcome, status, why: String| (outcome, Err(Failure { status, why }));
    let settings = &cx.inner.settings;
    if !settings.allow_private
        && let Some(refused) = endpoint.url.refused_literal()
    {
        return fail(DeliveryOutcome::RefusedAddress, None, refused.to_string());
    }
    let t = cx.inner.clock.now().secs();
    let signed = signature::header(endpoint.secret.expose_secret(), t, body.as_bytes());
    let request = cx
        .client
        .post(endpoint.url.uri().clone())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((signature::HEADER, signed))
        .timeout(settings.timeout);
    match request.send_body(body.to_owned()).await {
        Ok(mut answer) => {
            let status = answer.status();
            // Read (a bounded part of) the answer, within the timeout, so the
            // connection can be reused.
            let _ = tokio::time::timeout(settings.timeout, answer.body().limit(MAX_ANSWER)).await;
            if status.is_success() {
                (DeliveryOutcome::Delivered, Ok(status.as_u16()))
            } else {
                fail(
                    DeliveryOutcome::HttpError,
                    Some(status.as_u16()),
                    format!("the receiver answered {status}"),
                )
            }
        }
        Err(SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout)) => fail(
            DeliveryOutcome::Timeout,
            None,
            format!("no answer within {}", seconds(settings.timeout)),
        ),
        Err(SendRequestError::Connect(ConnectError::Resolver(e)))
            if matches!(e.downcast_ref::<UrlError>(), Some(UrlError::Private { .. })) =>
        {
            fail(DeliveryOutcome::RefusedAddress, None, e.to_string())
        }
        Err(e) => fail(DeliveryOutcome::ConnectError, None, e.to_string()),
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
