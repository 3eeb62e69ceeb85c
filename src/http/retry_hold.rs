//! Early retries are held: a connection that was refused with 503 `tenant_overloaded`
//! and `Retry-After: n`, and asks the same tenant again before those n seconds are over,
//! has that request held until they are; it then runs as any other.
//!
//! The policy (who is held until when, and why) is the actors' overload policy
//! ([`permetrix_actors::overload`], [`LastRefusal`]); this is the middleware that
//! applies it to each connection. A held request costs one parked task on its
//! connection and no CPU.
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use permetrix_actors::overload::LastRefusal;

use super::Edge;
use crate::http::error::ApiError;
use crate::http::host::HostContext;

/// The per-connection state, as stored in the connection's extensions.
type Shared = Rc<RefCell<LastRefusal>>;

/// `HttpServer::on_connect` callback: gives every connection its refusal record.
pub fn on_connect(_: &dyn Any, ext: &mut Extensions) {
    ext.insert::<Shared>(Rc::default());
}

/// Middleware (inside the host tagging): holds early retries, records refusals.
pub async fn hold_early_retries<S: Edge>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(conn) = req.conn_data::<Shared>().cloned() else {
        return next.call(req).await;
    };
    let early = match req.extensions().get::<HostContext>() {
        Some(HostContext::Tenant(t)) => conn.borrow().hold_until(t, Instant::now()),
        _ => None,
    };
    if let Some(until) = early {
        if let Some(state) = req.app_data::<web::Data<S>>() {
            state.metrics().early_retry_held();
        }
        tracing::debug!("holding a retry sent before its Retry-After");
        actix_rt::time::sleep_until(until.into()).await;
    }
    let res = next.call(req).await?;
    if let Some(retry_after) = overload_refusal(&res)
        && let Some(HostContext::Tenant(t)) = res.request().extensions().get::<HostContext>()
    {
        conn.borrow_mut()
            .refused(t.clone(), Instant::now(), retry_after);
    }
    Ok(res)
}

/// The `Retry-After` of a response that refused the request for a full mailbox.
fn overload_refusal<B>(res: &ServiceResponse<B>) -> Option<Duration> {
    res.response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .and_then(ApiError::overload_retry_after)
}
