//! Borrows that wait in the queue, `Idempotency-Key` on borrow and return, and the
//! queue listing (`GET /licenses/{tool}/queue`).
use actix_web::{HttpRequest, HttpResponse, web};
use permetrix_actors::domain::{BorrowRequest, IdempotencyKey, LeaseView, WaitSeconds};
use permetrix_actors::messages::{Borrow, BorrowOutcome, QueueOf, Return};
use permetrix_storage::{BorrowId, TenantId};
use serde::Serialize;
use serde_json::json;

use crate::auth::TenantBorrower;
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

/// The header that makes a borrow or return safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that replays the outcome of an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::invalid("Idempotency-Key must be visible ASCII (a UUID is a good choice)")
    })?;
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// A granted borrow, as answered to the client.
pub(super) struct Borrowed {
    pub lease: LeaseView,
    /// The outcome of an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
    /// The signed token of an offline checkout.
    pub offline_token: Option<String>,
}

/// The body of a granted borrow: the lease, and the token of an offline checkout.
#[derive(Serialize)]
struct BorrowReply<'a> {
    #[serde(flatten)]
    lease: &'a LeaseView,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline_token: Option<&'a str>,
}

impl Borrowed {
    /// Whether this request checked out an overage seat (a replay checks out nothing).
    pub fn new_overage(&self) -> bool {
        !self.replayed && self.lease.is_overage
    }

    pub fn into_response(self) -> HttpResponse {
        // Existing clients require exactly 200 (not 201) and compact JSON.
        let mut res = HttpResponse::Ok();
        if self.replayed {
            res.insert_header((IDEMPOTENT_REPLAYED, "true"));
        }
        res.json(BorrowReply {
            lease: &self.lease,
            offline_token: self.offline_token.as_deref(),
        })
    }
}

/// Borrows, waiting in the pool's queue for up to `wait` if no seat is free.
/// The waiting request holds the waiter: if the client disconnects, actix drops this
/// future (the server refuses half-closed connections), the waiter's channel closes and
/// the actor skips it.
pub(super) async fn borrow_or_wait(
    state: &AppState,
    tenant: &TenantId,
    req: &HttpRequest,
    request: BorrowRequest,
    wait: WaitSeconds,
) -> Result<Borrowed> {
    let key = idempotency_key(req)?;
    let outcome = state
        .registry
        .send(
            tenant,
            Borrow {
                req: request,
                wait,
                key,
            },
        )
        .await?;
    let (lease, replayed) = match outcome {
        BorrowOutcome::Granted(grant) => (grant.lease, false),
        BorrowOutcome::Replayed(lease) => (lease, true),
        BorrowOutcome::Queued(queued) => {
            tracing::debug!(tenant = %tenant, position = queued.position, "borrow queued");
            (queued.granted().await?.lease, false)
        }
    };
    Ok(Borrowed {
        lease,
        replayed,
        offline_token: None,
    })
}

/// Returns a seat; with an `Idempotency-Key`, a retry answers the original outcome.
pub(super) async fn return_idempotent(
    state: &AppState,
    tenant: &TenantId,
    req: &HttpRequest,
    id: BorrowId,
) -> Result<HttpResponse> {
    let key = idempotency_key(req)?;
    let outcome = state.registry.send(tenant, Return { id, key }).await?;
    let mut res = HttpResponse::Ok();
    if outcome.replayed {
        res.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(res.json(json!({"status": "ok", "tool": outcome.tool})))
}

/// `GET /licenses/{tool}/queue`: who waits, head first.
pub(super) async fn queue(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let listing = state
        .registry
        .send(&caller.tenant, QueueOf(path.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(listing))
}
