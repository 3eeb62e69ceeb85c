//! Headers of API responses: `X-Content-Type-Options: nosniff` on every response (so that
//! a browser never runs a JSON error or a CSV export as something else), and
//! `Cache-Control: no-store` on those that show a secret once.
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The header of a response that shows a secret once (a new key, a signing secret): no
/// cache, proxy or browser history may keep it.
pub fn shown_once() -> (HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Middleware: adds `X-Content-Type-Options: nosniff` to every response that does not
/// set it itself.
pub async fn nosniff(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if !res.headers().contains_key(header::X_CONTENT_TYPE_OPTIONS) {
        res.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    Ok(res)
}
