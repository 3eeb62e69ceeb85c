//! Peer forwarding (`--peer-forwarding`, off Fly): a request for a tenant owned by
//! another broker is sent to that broker's advertised address, and its answer relayed
//! unchanged: status, headers and body, a streaming body (`GET /events`) as a stream.
//!
//! Brokers talk plain HTTP to each other: peer forwarding is meant for a private network
//! (a self-hosted cluster, the tests). Hop-by-hop headers are not relayed; everything
//! else is, `Host` included (it names the tenant).
use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use super::FORWARDED_BY;
use crate::http::request_log::REQUEST_ID;

/// Longest wait for a connection to a peer: a dead peer is a quick `503`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a peer's answer to start: beyond the longest queued borrow (300 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(330);

/// One HTTP worker's client for its peers (awc clients are per thread).
pub struct PeerClient(awc::Client);

impl Default for PeerClient {
    fn default() -> Self {
        PeerClient(
            awc::Client::builder()
                .connector(awc::Connector::new().timeout(CONNECT_TIMEOUT))
                .timeout(ANSWER_TIMEOUT)
                // The client's redirects are the client's to follow.
                .disable_redirects()
                .finish(),
        )
    }
}

/// Why a request could not be forwarded (the peer is unreachable or broke off).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ForwardError(String);

impl PeerClient {
    /// Sends `req` (with `body`) to the broker at `address` as `forwarder`, and relays
    /// its answer.
    pub async fn forward(
        &self,
        address: &str,
        req: &HttpRequest,
        body: Bytes,
        forwarder: &str,
        request_id: Option<String>,
    ) -> Result<HttpResponse, ForwardError> {
        let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let mut out = self
            .0
            .request(req.method().clone(), format!("http://{address}{path}"));
        for (name, value) in req.headers() {
            if relayed(name) {
                out = out.append_header((name.clone(), value.clone()));
            }
        }
        if let Ok(value) = HeaderValue::from_str(forwarder) {
            out = out.insert_header((FORWARDED_BY, value));
        }
        // The owner logs the request under the id this broker logged it with.
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            out = out.insert_header((REQUEST_ID, id));
        }
        let answer = out
            .send_body(body)
            .await
            .map_err(|e| ForwardError(format!("sending to {address}: {e}")))?;
        let mut relay = HttpResponse::build(answer.status());
        for (name, value) in answer.headers() {
            if relayed(name) {
                relay.append_header((name.clone(), value.clone()));
            }
        }
        // A body of known length keeps it (not chunked); any other streams as it comes.
        let length = answer
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = length {
            relay.no_chunking(length);
        }
        Ok(relay.streaming(answer))
    }
}

/// Whether a header travels across the hop: hop-by-hop headers do not, and the length
/// and framing of a body are set anew for the next hop.
fn relayed(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::CONNECTION
            | header::TE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::UPGRADE
            | header::PROXY_AUTHENTICATE
            | header::PROXY_AUTHORIZATION
            | header::CONTENT_LENGTH
    ) && name.as_str() != "keep-alive"
}
