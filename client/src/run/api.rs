//! The HTTP side of `permetrix run`: borrow (with retries under one
//! `Idempotency-Key`), queue position, heartbeat and return.
use std::net::SocketAddr;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::signing;

/// The borrow's path (signed in v2).
const BORROW: &str = "/licenses/borrow";

/// Where and as whom to talk to the broker.
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The tenant's host name (Host header, TLS server name).
    pub host: String,
    /// Port in the URL.
    pub port: u16,
    /// Connect here instead of resolving `host` (`--connect`).
    pub connect: Option<SocketAddr>,
    /// Tenant API key.
    pub api_key: String,
    /// `(vendor id, signing secret)` to sign borrows (v2).
    pub signing: Option<(String, String)>,
}

impl Endpoint {
    /// Parses `http(s)://host[:port][/]`.
    pub fn parse_url(url: &str) -> Result<(&'static str, String, u16), String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = url.strip_prefix("http://") {
            ("http", r)
        } else {
            return Err(format!(
                "--server '{url}' must start with http:// or https:// (e.g. https://acme.permetrix.fly.dev)"
            ));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("--server '{url}' has an invalid port '{p}'"))?,
            ),
            None => (authority, if scheme == "https" { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("--server '{url}' names no host"));
        }
        Ok((scheme, host.to_ascii_lowercase(), port))
    }
}

/// What went wrong talking to the broker.
#[derive(Debug)]
pub enum CallError {
    /// No answer (connection refused or reset, timeout): worth a retry.
    Transport(String),
    /// The broker answered with an error.
    Refused {
        /// HTTP status.
        status: u16,
        /// `error` code.
        code: String,
        /// `detail` sentence.
        detail: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "the broker did not answer: {e}"),
            CallError::Refused {
                status,
                code,
                detail,
            } => write!(f, "{detail} ({status} {code})"),
        }
    }
}

/// A granted seat.
pub struct Seat {
    /// Borrow id.
    pub id: String,
    /// Tool name as the broker calls it.
    pub tool: String,
    /// Lease length in seconds.
    pub lease_seconds: u64,
    /// The checkout, if the seat is offline.
    pub offline: Option<Checkout>,
}

/// What an offline borrow brings besides the seat.
pub struct Checkout {
    /// The signed token.
    pub token: String,
    /// When the checkout ends (RFC 3339, as the broker said).
    pub expires_at: String,
}

/// How long to hold the seat.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    /// A lease of this many seconds (default: the tenant's), kept by heartbeats.
    Lease(Option<u32>),
    /// An offline checkout of this many hours.
    Offline(u32),
}

/// A client of one tenant.
pub struct Api {
    client: awc::Client,
    endpoint: Endpoint,
}

fn random_key() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness a fixed-looking key could collide with another job's.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(std::process::id())).to_be_bytes();
    }
    hex::encode(bytes)
}

/// The public reference of a key, as the queue listing shows it.
pub fn key_reference(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..6])
}

fn lease_length(body: &Value) -> Option<u64> {
    let parse = |f: &str| {
        time::OffsetDateTime::parse(
            body[f].as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    };
    let secs = (parse("lease_expires_at")? - parse("borrowed_at")?).whole_seconds();
    u64::try_from(secs).ok()
}

impl Api {
    pub fn new(endpoint: Endpoint, client: awc::Client) -> Self {
        Api { client, endpoint }
    }

    fn url(&self, path: &str) -> String {
        let e = &self.endpoint;
        format!("{}://{}:{}{}", e.scheme, e.host, e.port, path)
    }

    async fn call(
        &self,
        method: awc::http::Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> Result<(StatusCode, Value), CallError> {
        let mut req = self
            .client
            .request(method, self.url(path))
            .timeout(timeout)
            .insert_header(("Authorization", format!("Bearer {}", self.endpoint.api_key)));
        if let Some(addr) = self.endpoint.connect {
            req = req.address(addr);
        }
        for (name, value) in headers {
            req = req.insert_header((*name, value.as_str()));
        }
        let sent = match body {
            Some(b) => {
                req.content_type("application/json")
                    .send_body(b.to_vec())
                    .await
            }
            None => req.send().await,
        };
        let mut res = sent.map_err(|e| CallError::Transport(e.to_string()))?;
        let status = res.status();
        let bytes = res
            .body()
            .limit(1024 * 1024)
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn refused(status: StatusCode, body: &Value) -> CallError {
        CallError::Refused {
            status: status.as_u16(),
            code: body["error"]
                .as_str()
                .unwrap_or("unexpected_status")
                .to_owned(),
            detail: body["detail"]
                .as_str()
                .map_or_else(|| format!("the broker answered {status}"), str::to_owned),
        }
    }

    /// A JSON body as sent (and as a v2 signature hashes it).
    fn body_bytes(body: &Value) -> Vec<u8> {
        // A `Value` always serializes.
        serde_json::to_vec(body).unwrap_or_default()
    }

    /// v2 signature headers for a POST of `body` to `path` (v2 is accepted wherever v1
    /// is, and is the only one a tenant with policy `v2` takes); a fresh nonce and
    /// timestamp on every call, so a retry is never a replay.
    fn signature_headers(&self, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        let Some((vendor, secret)) = &self.endpoint.signing else {
            return Vec::new();
        };
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let nonce = random_key();
        let signed = signing::v2_string("POST", path, &ts, &nonce, body, &self.endpoint.api_key);
        vec![
            ("X-Signature", signing::sign(secret.as_bytes(), &signed)),
            ("X-Signature-Version", "2".to_owned()),
            ("X-Nonce", nonce),
            ("X-Timestamp", ts),
            ("X-Vendor-ID", vendor.clone()),
        ]
    }

    /// Borrows, waiting in the queue up to `wait` seconds. Transport failures are
    /// retried under the same `Idempotency-Key`, so a lost answer never costs a second
    /// seat. `key` is generated by the caller (see [`Api::new_key`]).
    pub async fn borrow(
        &self,
        tool: &str,
        user: &str,
        wait: u32,
        length: Length,
        key: &str,
    ) -> Result<Seat, CallError> {
        let mut body = json!({"tool": tool, "user": user, "wait_seconds": wait});
        match length {
            Length::Lease(Some(l)) => body["lease_seconds"] = json!(l),
            Length::Lease(None) => {}
            Length::Offline(hours) => body["offline_hours"] = json!(hours),
        }
        let body = Self::body_bytes(&body);
        let timeout = Duration::from_secs(u64::from(wait) + 30);
        let mut last = CallError::Transport("no attempt made".into());
        for attempt in 0..4u32 {
            if attempt > 0 {
                actix_rt::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            // Signatures carry a timestamp: sign every attempt afresh.
            let mut headers = self.signature_headers(BORROW, &body);
            headers.push(("Idempotency-Key", key.to_owned()));
            let post = awc::http::Method::POST;
            match self
                .call(post, BORROW, Some(&body), &headers, timeout)
                .await
            {
                Ok((status, v)) if status == StatusCode::OK => {
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    if id.is_empty() {
                        return Err(Self::refused(status, &v));
                    }
                    let offline = match (length, v["offline_token"].as_str()) {
                        (Length::Lease(_), _) => None,
                        (Length::Offline(_), Some(token)) => Some(Checkout {
                            token: token.to_owned(),
                            expires_at: v["lease_expires_at"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        }),
                        (Length::Offline(_), None) => {
                            // A broker without offline checkout granted a plain lease.
                            let _ = self.give_back(&id).await;
                            return Err(CallError::Refused {
                                status: status.as_u16(),
                                code: "no_offline_token".into(),
                                detail: "the broker granted a seat without an offline token; \
                                         it does not support offline checkout"
                                    .into(),
                            });
                        }
                    };
                    return Ok(Seat {
                        id,
                        tool: v["tool"].as_str().unwrap_or(tool).to_owned(),
                        lease_seconds: lease_length(&v).unwrap_or(3600).max(1),
                        offline,
                    });
                }
                Ok((status, v)) if status == StatusCode::SERVICE_UNAVAILABLE => {
                    last = Self::refused(status, &v);
                }
                Ok((status, v)) => return Err(Self::refused(status, &v)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A fresh idempotency key for one borrow or return.
    pub fn new_key() -> String {
        random_key()
    }

    /// `(position, waiting)` of the queued borrow with this key, if it is queued.
    pub async fn position(&self, tool: &str, key: &str) -> Option<(u64, u64)> {
        let path = format!("/licenses/{}/queue", encode_segment(tool));
        let (status, v) = self
            .call(
                awc::http::Method::GET,
                &path,
                None,
                &[],
                Duration::from_secs(10),
            )
            .await
            .ok()?;
        if status != StatusCode::OK {
            return None;
        }
        let reference = key_reference(key);
        let waiting = v["waiting"].as_u64()?;
        v["queue"]
            .as_array()?
            .iter()
            .find(|e| e["reference"].as_str() == Some(reference.as_str()))
            .and_then(|e| e["position"].as_u64())
            .map(|p| (p, waiting))
    }

    /// Extends the lease.
    pub async fn heartbeat(&self, id: &str) -> Result<(), CallError> {
        let path = format!("/licenses/{id}/heartbeat");
        match self
            .call(
                awc::http::Method::POST,
                &path,
                None,
                &[],
                Duration::from_secs(15),
            )
            .await?
        {
            (s, _) if s == StatusCode::OK => Ok(()),
            (s, v) => Err(Self::refused(s, &v)),
        }
    }

    /// Returns the seat, retrying transport failures under one `Idempotency-Key`.
    pub async fn give_back(&self, id: &str) -> Result<(), CallError> {
        let key = random_key();
        let body = Self::body_bytes(&json!({"id": id}));
        let mut last = CallError::Transport("no attempt made".into());
        for attempt in 0..4u32 {
            if attempt > 0 {
                actix_rt::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            let headers = [("Idempotency-Key", key.clone())];
            match self
                .call(
                    awc::http::Method::POST,
                    "/licenses/return",
                    Some(&body),
                    &headers,
                    Duration::from_secs(15),
                )
                .await
            {
                Ok((s, _)) if s == StatusCode::OK => return Ok(()),
                Ok((s, v)) if s == StatusCode::SERVICE_UNAVAILABLE => last = Self::refused(s, &v),
                Ok((s, v)) => return Err(Self::refused(s, &v)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Percent-encodes a tool name for a path segment (names may hold spaces and '/').
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_scheme_host_and_port() {
        assert_eq!(
            Endpoint::parse_url("https://acme.permetrix.fly.dev").unwrap(),
            ("https", "acme.permetrix.fly.dev".into(), 443)
        );
        assert_eq!(
            Endpoint::parse_url("http://ACME.localhost:8000/").unwrap(),
            ("http", "acme.localhost".into(), 8000)
        );
        assert!(Endpoint::parse_url("acme.localhost").is_err());
        assert!(Endpoint::parse_url("http://:80").is_err());
        assert!(Endpoint::parse_url("http://a:notaport").is_err());
    }

    #[test]
    fn tool_names_are_encoded_for_paths() {
        assert_eq!(encode_segment("ECU Suite/2"), "ECU%20Suite%2F2");
    }
}
