//! Routing across brokers (`SCALE-OUT.md`, "Routing"): a request reaches the broker
//! that owns its tenant, before authentication, so that the owner alone answers it.
//!
//! - On a tenant host: owned here → on to the handlers (an unowned tenant is acquired
//!   on the way, an unknown one goes on to its 404); owned by another broker → on Fly
//!   (`FLY_MACHINE_ID`) the answer carries `fly-replay: instance=<owner>` and Fly's
//!   proxy replays the request there; off Fly with `--peer-forwarding` the request is
//!   forwarded to the owner and its answer relayed unchanged ([`forward`]); otherwise
//!   `503 tenant_elsewhere` with `Retry-After`, and the client retries.
//! - On the vendor and main hosts the handlers find out: a mutation of a tenant owned
//!   elsewhere (provisioning, a package patch, a request decision, a deletion) answers
//!   [`ApiError::Elsewhere`], and the request (its body kept for this) is replayed or
//!   forwarded the same way. Their fan-outs read other brokers' tenants from committed
//!   state and never get here.
//! - No loops: a request that was replayed (`fly-replay-src`) or forwarded
//!   ([`FORWARDED_BY`]) and still finds another owner gets one fresh look-up, then
//!   `503` with `Retry-After: 1`.
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::{Stream, StreamExt};
use permetrix_actors::{Route, TenantError};
use permetrix_storage::{Broker, Location, TenantId};

use super::Edge;
use super::error::ApiError;
use super::host::HostContext;
use super::input::MAX_BODY;
use super::limits::{body_timeout, has_body};
use super::request_log::RequestId;

pub mod forward;

/// Set on a request one broker forwards to another (its value names the forwarder):
/// the receiver never forwards it again.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("permetrix-forwarded-by");
/// Fly's proxy sets it on a request it replayed to the instance a `fly-replay` named.
pub const FLY_REPLAY_SRC: HeaderName = HeaderName::from_static("fly-replay-src");
/// The response header that asks Fly's proxy to replay the request elsewhere.
pub const FLY_REPLAY: HeaderName = HeaderName::from_static("fly-replay");

/// How this broker reaches tenants owned by other brokers.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    /// This machine's Fly id (`FLY_MACHINE_ID`): on Fly, requests for other brokers'
    /// tenants are answered with `fly-replay`.
    pub fly_machine_id: Option<String>,
    /// Off Fly: forward such requests to the owner (`--peer-forwarding`).
    pub peer_forwarding: bool,
    /// How this broker names itself in [`FORWARDED_BY`] (its advertised address).
    pub name: String,
}

/// Middleware (inside the host tagging): sends every request to its tenant's owner.
pub async fn route<S: Edge, B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<S>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    // The hot path (a tenant whose actor runs here) looks the tenant up once and copies
    // nothing; the handler's message checks the lease before it is answered.
    let target = match req.extensions().get::<HostContext>() {
        Some(HostContext::Tenant(t)) if !served_by_any_broker(req.path()) => {
            if state.registry().is_active(t) {
                Target::Here
            } else {
                Target::Find(t.clone())
            }
        }
        Some(HostContext::Tenant(_) | HostContext::Invalid(_) | HostContext::Malformed(_)) => {
            Target::Here
        }
        Some(HostContext::Vendor | HostContext::Main) | None => Target::AfterHandlers,
    };
    let tenant = match target {
        Target::Here => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        Target::AfterHandlers => return after_handlers(&state, req, next).await,
        Target::Find(tenant) => tenant,
    };
    let route = match state.registry().route(&tenant).await {
        // An unknown tenant goes on to the handlers, which answer its 404.
        Ok(Route::Local) | Err(TenantError::UnknownTenant) => None,
        Ok(Route::Remote(broker)) => Some(broker),
        Err(e) => return Ok(answer(req, ApiError::from(e))),
    };
    let Some(broker) = route else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if relayed(req.request()) {
        // One fresh look-up: the owner may have handed the tenant over since.
        if fresh_look_up_finds_it_here(&state, &tenant).await {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        return Ok(answer(req, unroutable(&state, &broker)));
    }
    let (http, mut payload) = req.into_parts();
    let res = send_to_owner(&state, &http, &mut payload, None, &broker).await;
    Ok(ServiceResponse::new(http, res).map_into_right_body())
}

/// Where the routing of a request starts.
enum Target {
    /// The handlers here: its tenant's actor runs here, or it names no tenant.
    Here,
    /// A tenant with no actor here: ask where it lives.
    Find(TenantId),
    /// The handlers here, and the owner if a mutation finds its tenant elsewhere.
    AfterHandlers,
}

/// `/health`, `/ready`, `/version` and the portals' assets describe this broker, not a
/// tenant: every broker answers them itself.
fn served_by_any_broker(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/version") || path.starts_with("/assets/")
}

/// Vendor and main hosts: the handlers run here; a mutation that finds its tenant owned
/// elsewhere ([`ApiError::Elsewhere`]) is sent to the owner, with the body the handler
/// read (recorded on the way, so that nothing changes for any other request).
async fn after_handlers<S: Edge, B: MessageBody + 'static>(
    state: &web::Data<S>,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let recorded = Rc::new(RefCell::new(Recorded::default()));
    if has_body(&req) {
        let tee = Tee {
            inner: req.take_payload(),
            recorded: Rc::clone(&recorded),
        };
        req.set_payload(Payload::from(
            Box::pin(tee) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
    } else {
        recorded.borrow_mut().complete = true;
    }
    let res = next.call(req).await?;
    let Some(broker) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .and_then(ApiError::elsewhere)
        .cloned()
    else {
        return Ok(res.map_into_left_body());
    };
    let http = res.request().clone();
    let body = recorded.borrow_mut().take();
    let Some(body) = body.filter(|_| !relayed(&http)) else {
        // Relayed already (the handler's activation was the fresh look-up), or a body
        // the handler did not read whole: no second hop, the client retries.
        let refusal = unroutable(state, &broker);
        return Ok(res
            .into_response(refusal.error_response())
            .map_into_right_body());
    };
    let relayed = send_to_owner(state, &http, &mut Payload::None, Some(body), &broker).await;
    Ok(res.into_response(relayed).map_into_right_body())
}

/// What a handler read of the request body.
#[derive(Default)]
struct Recorded {
    body: BytesMut,
    /// The whole body was read.
    complete: bool,
}

impl Recorded {
    /// The whole body, if the handler read all of it.
    fn take(&mut self) -> Option<Bytes> {
        self.complete
            .then(|| std::mem::take(&mut self.body).freeze())
    }
}

/// A request body that keeps a copy of what is read from it.
struct Tee {
    inner: Payload,
    recorded: Rc<RefCell<Recorded>>,
}

impl Stream for Tee {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.recorded.borrow_mut().body.extend_from_slice(chunk)
            }
            Poll::Ready(None) => self.recorded.borrow_mut().complete = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }
}

/// Whether the request already came from Fly's replay or another broker.
fn relayed(req: &HttpRequest) -> bool {
    req.headers().contains_key(FLY_REPLAY_SRC) || req.headers().contains_key(FORWARDED_BY)
}

/// Asks the ownership once more; if the tenant is unowned or this broker's now, it is
/// activated here.
async fn fresh_look_up_finds_it_here<S: Edge>(state: &web::Data<S>, tenant: &TenantId) -> bool {
    match state.registry().locate(tenant).await {
        Ok(Location::Local(_) | Location::Unowned) => {
            matches!(state.registry().route(tenant).await, Ok(Route::Local))
        }
        Ok(Location::Remote(_)) | Err(_) => false,
    }
}

/// Replays or forwards the request to `broker`, or refuses it when neither is possible.
async fn send_to_owner<S: Edge>(
    state: &web::Data<S>,
    req: &HttpRequest,
    payload: &mut Payload,
    body: Option<Bytes>,
    broker: &Broker,
) -> HttpResponse {
    let routing = state.routing();
    if routing.fly_machine_id.is_some()
        && let Some(instance) = &broker.machine_id
        && let Ok(value) = HeaderValue::from_str(&format!("instance={instance}"))
    {
        state.metrics().request_replayed();
        let mut res = ApiError::Elsewhere(broker.clone()).error_response();
        res.headers_mut().insert(FLY_REPLAY, value);
        return res;
    }
    if !routing.peer_forwarding {
        return unroutable(state, broker).error_response();
    }
    let body = match body {
        Some(body) => body,
        None => match read_body(payload).await {
            Ok(body) => body,
            Err(e) => return e.error_response(),
        },
    };
    let Some(client) = req.app_data::<forward::PeerClient>() else {
        return unroutable(state, broker).error_response();
    };
    let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
    match client
        .forward(&broker.address, req, body, &routing.name, request_id)
        .await
    {
        Ok(res) => {
            state.metrics().request_forwarded();
            res
        }
        Err(e) => {
            tracing::warn!(owner = %broker.node, address = %broker.address, error = %e, "forwarding to the tenant's owner failed");
            unroutable(state, broker).error_response()
        }
    }
}

/// The `503 tenant_elsewhere` (with `Retry-After`) of a request that cannot reach its
/// tenant's owner now; counted.
fn unroutable<S: Edge>(state: &web::Data<S>, broker: &Broker) -> ApiError {
    state.metrics().request_unrouted();
    ApiError::Elsewhere(broker.clone())
}

fn answer<B>(req: ServiceRequest, e: ApiError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(e.error_response()).map_into_right_body()
}

/// Reads a whole request body (at most [`MAX_BODY`] bytes, as every handler does).
async fn read_body(payload: &mut Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            body_timeout(&e).unwrap_or_else(|| {
                ApiError::invalid(format!("the request body could not be read: {e}"))
            })
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::TooLarge { limit: MAX_BODY });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
