//! One structured log line and the HTTP metrics for every request, and its request id.
//!
//! The outermost middleware: it sees every request, including those refused by host
//! routing. A request keeps the `X-Request-ID` its client sent if that is a sane token
//! (1–128 characters of `A–Z a–z 0–9 - _ . :`), else it gets a fresh one; either way the
//! id is echoed in the response. Handlers run inside a `request` span carrying the id
//! and the tenant, so everything they log can be tied to the request.
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing::Instrument;

use super::Edge;
use crate::http::host::{self, HostContext};
use crate::metrics::names;

/// The request id header, as read and as echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept.
const MAX_ID_LEN: usize = 128;

/// The id of the request being handled (in the request's extensions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The client's id if it is safe to log and echo, else a new one.
pub fn request_id(sent: Option<&HeaderValue>) -> String {
    sent.and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=MAX_ID_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

fn host_kind(ctx: &HostContext) -> &'static str {
    match ctx {
        HostContext::Main => "main",
        HostContext::Vendor => "vendor",
        HostContext::Tenant(_) => "tenant",
        HostContext::Invalid(_) | HostContext::Malformed(_) => "invalid",
    }
}

/// The middleware (wrap with `from_fn`).
pub async fn request_log<S: Edge>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(req.headers().get(REQUEST_ID));
    let state = req.app_data::<web::Data<S>>().cloned();
    let ctx = host::tag(&req, state.as_ref().map(|s| s.get_ref()));
    let tenant = match &ctx {
        HostContext::Tenant(t) => Some(t.to_string()),
        _ => None,
    };
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        tenant = tracing::field::Empty,
    );
    if let Some(t) = &tenant {
        span.record("tenant", t.as_str());
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    // No clone of the request may be held across the call: routing mutates it.
    let result = next.call(req).instrument(span).await;
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| names::UNMATCHED_ROUTE.to_owned()),
        ),
        // Handlers and extractors answer their errors themselves; only a failing
        // middleware gets here, before any route matched.
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            names::UNMATCHED_ROUTE.to_owned(),
        ),
    };
    tracing::info!(
        parent: None,
        request_id = %id,
        tenant = tenant.as_deref(),
        host = host_kind(&ctx),
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    if let Some(state) = state {
        state
            .metrics()
            .observe_request(route, &method, status, elapsed);
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let keep = HeaderValue::from_static("build-42.step_3:retry");
        assert_eq!(request_id(Some(&keep)), "build-42.step_3:retry");
        let long = HeaderValue::from_str(&"a".repeat(MAX_ID_LEN + 1)).unwrap();
        for bad in [
            HeaderValue::from_static(""),
            HeaderValue::from_static("two words"),
            HeaderValue::from_static("quote\"d"),
            long,
        ] {
            let id = request_id(Some(&bad));
            assert_ne!(id.as_bytes(), bad.as_bytes());
            assert_eq!(id.len(), 32, "{id}");
        }
        assert_eq!(request_id(None).len(), 32);
    }
}
