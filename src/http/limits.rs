//! Request limits at the edge: size caps on the request line and headers, a deadline
//! for reading the body, and the rates of the rate-limited endpoints.
//!
//! The HTTP codec already refuses heads over 128 KiB or with more than 96 headers (431,
//! connection closed), and waits at most `request_timeout` for a request head
//! (slowloris); the body is capped at [`crate::http::input::MAX_BODY`] (413). This module
//! adds the tighter, JSON-answered limits below, which apply before routing, so no
//! handler or extractor ever sees an oversized request.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_util::Stream;

use super::Edge;
use crate::http::error::ApiError;
use crate::http::rate_limit::Rate;

/// Size, time and rate limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest path plus query string, in bytes (414 beyond).
    pub max_uri: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
    /// Most bytes of header names and values together (431 beyond).
    pub max_header_bytes: usize,
    /// Longest wait for a complete request head (the codec then answers 408 and closes).
    pub request_timeout: Duration,
    /// Longest wait for a complete request body, from the head (408).
    pub body_timeout: Duration,
    /// Longest wait for a client to close after the response when closing.
    pub disconnect_timeout: Duration,
    /// Key and user management (`/api/keys`, `/api/users`, secret rotation), per
    /// credential.
    pub key_management: Rate,
    /// Key and user management per tenant, all its credentials together (a new admin
    /// key must not bring a fresh allowance).
    pub tenant_management: Rate,
    /// API keys one tenant may hold, revoked ones not counted (409 beyond).
    pub max_keys_per_tenant: usize,
    /// Portal users one tenant may have (409 beyond).
    pub max_users_per_tenant: usize,
    /// Login attempts per user name (per host).
    pub login_per_user: Rate,
    /// Login attempts per client address.
    pub login_per_address: Rate,
    /// Failed logins of one user before each further failure blocks it (doubling).
    pub free_failures_per_user: u32,
    /// Failed logins from one address before each further failure blocks it.
    pub free_failures_per_address: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri: 4096,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            disconnect_timeout: Duration::from_secs(5),
            key_management: Rate::new(30, Duration::from_secs(1)),
            tenant_management: Rate::new(60, Duration::from_secs(1)),
            max_keys_per_tenant: 200,
            max_users_per_tenant: 1000,
            login_per_user: Rate::new(10, Duration::from_secs(6)),
            login_per_address: Rate::new(30, Duration::from_secs(2)),
            free_failures_per_user: 5,
            free_failures_per_address: 20,
        }
    }
}

fn refuse(status: StatusCode, code: &'static str, detail: String) -> ApiError {
    ApiError::RequestLimit {
        status,
        code,
        detail,
    }
}

/// Checks the request line and headers against [`Limits`].
pub fn check_head(req: &ServiceRequest, limits: &Limits) -> Result<(), ApiError> {
    let uri = req.uri();
    let uri_len = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    if uri_len > limits.max_uri {
        return Err(refuse(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the path and query are {uri_len} bytes long; the limit is {} bytes",
                limits.max_uri
            ),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.max_headers || bytes > limits.max_header_bytes {
        return Err(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} header fields with {bytes} bytes; the limits are {} fields \
                 and {} bytes",
                headers.len(),
                limits.max_headers,
                limits.max_header_bytes
            ),
        ));
    }
    Ok(())
}

/// Middleware: refuses requests over the size limits and puts a deadline on reading
/// the body.
pub async fn enforce<S: Edge>(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limits = req
        .app_data::<web::Data<S>>()
        .map(|s| s.limits().clone())
        .unwrap_or_default();
    if let Err(e) = check_head(&req, &limits) {
        let res = actix_web::ResponseError::error_response(&e);
        return Ok(req.into_response(res).map_into_right_body());
    }
    if has_body(&req) {
        let inner = req.take_payload();
        let deadline = Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(limits.body_timeout)),
        };
        req.set_payload(Payload::from(
            Box::pin(deadline) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// Whether the request announces a body.
pub fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// A request body that fails once its deadline passes.
struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The 408 for a body that missed its deadline, if that is what `e` is.
pub fn body_timeout(e: &PayloadError) -> Option<ApiError> {
    match e {
        PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Some(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time; send it without pausing".into(),
        )),
        _ => None,
    }
}
