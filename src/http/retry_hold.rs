//! Early retries are held: a connection that was refused with 503 `tenant_overloaded`
//! and `Retry-After: n`, and asks the same tenant again before those n seconds are over,
//! has that request held until they are; it then runs as any other.
//!
//! Why: a client that ignores `Retry-After` and retries at once turns every refusal
//! into another request that the same HTTP workers read, route, authenticate and
//! answer. Under a flood those refusals pile up in the workers' queues ahead of other
//! tenants' requests (BENCHMARKS.md, "Fair share under a flood"). A held request costs
//! one parked task on its connection and no CPU; clients that honour `Retry-After`
//! never meet it. The state is per connection, so a client is only held for what it
//! was told itself, and per tenant, so a proxy's connection that carries several
//! tenants' requests holds only the overloaded tenant's.
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use permetrix_storage::TenantId;

use super::Edge;
use crate::http::error::ApiError;
use crate::http::host::HostContext;

/// The last overload refusal sent on one connection.
#[derive(Debug, Default)]
pub struct LastRefusal(Option<(TenantId, Instant)>);

impl LastRefusal {
    /// Remembers that `tenant` refused this connection until `until`.
    pub fn refused(&mut self, tenant: TenantId, until: Instant) {
        self.0 = Some((tenant, until));
    }

    /// Until when a request for `tenant` arriving at `now` is held, if it is early.
    pub fn hold_until(&self, tenant: &TenantId, now: Instant) -> Option<Instant> {
        match &self.0 {
            Some((t, until)) if t == tenant && now < *until => Some(*until),
            _ => None,
        }
    }
}

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
            .refused(t.clone(), Instant::now() + retry_after);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn only_a_retry_to_the_same_tenant_before_the_deadline_is_held() {
        let now = Instant::now();
        let until = now + Duration::from_secs(1);
        let mut last = LastRefusal::default();
        assert_eq!(last.hold_until(&tenant("acme"), now), None);
        last.refused(tenant("acme"), until);
        assert_eq!(last.hold_until(&tenant("acme"), now), Some(until));
        assert_eq!(last.hold_until(&tenant("globex"), now), None);
        assert_eq!(last.hold_until(&tenant("acme"), until), None);
        // A later refusal replaces the earlier one.
        last.refused(tenant("globex"), until);
        assert_eq!(last.hold_until(&tenant("acme"), now), None);
        assert_eq!(last.hold_until(&tenant("globex"), now), Some(until));
    }
}
