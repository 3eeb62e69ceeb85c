//! Host routing: the request's context comes from the `Host` header alone.
//!
//! Never from `X-Forwarded-Host`, `Forwarded` or `connection_info()`: clients can set
//! those. The header (or the HTTP/2 authority) is first parsed as `host[:port]`
//! ([`parse_host`]); a value that is no valid host is refused with 400 and never reaches
//! any context. A valid one is matched against the configured base domains after
//! stripping the port, folding case and dropping one trailing dot; a host under no base
//! domain may still be a tenant's custom host ([`super::custom_hosts`]).
use std::net::Ipv6Addr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::guard::{Guard, GuardContext};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use permetrix_storage::{IdError, TenantId};

use super::Edge;
use super::error::ApiError;

/// Which part of the service a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostContext {
    /// The apex (`<base>`) or a host under no base domain: operator API, health,
    /// metrics, landing page.
    Main,
    /// `vendor.<base>`.
    Vendor,
    /// `<tenant>.<base>`, or one of the tenant's custom hosts.
    Tenant(TenantId),
    /// A name under a base domain that can never be served (deeper names, reserved or
    /// malformed labels).
    Invalid(String),
    /// A Host value that is not a valid `host[:port]` at all (see [`HostError`]).
    Malformed(HostError),
}

/// Why a Host value is not a valid `host[:port]`. The reasons never echo the value, so
/// that the same mistake reads the same whatever the case or port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Bytes outside visible ASCII (a non-ASCII letter, a control character).
    #[error("the Host header is not plain ASCII; send the host name in ASCII (punycode)")]
    NotAscii,
    /// A character no host name has (`/ % # ? ; @ ,` spaces, …).
    #[error("the Host header has a character that no host name contains; send host[:port]")]
    BadCharacter,
    /// A port that is not a number from 0 to 65535, or a second colon.
    #[error("the port in the Host header is not a number from 0 to 65535; send host[:port]")]
    BadPort,
    /// Brackets that do not hold an IPv6 address.
    #[error("the Host header has brackets that do not hold an IPv6 address")]
    BadIpLiteral,
    /// A port or a dot and no name.
    #[error("the Host header names no host; send host[:port]")]
    Empty,
}

/// Parses a Host value into the name routing matches: port stripped, ASCII case folded,
/// one trailing dot dropped. An empty value (a request without a Host) gives `""`, and
/// so does an empty name with a port.
///
/// A valid value is a name of letters, digits, `-`, `_` and `.` (underscores occur in
/// real names; which names are served is decided by matching, not here), or an IPv6
/// literal in brackets, optionally followed by `:` and a port of at most 5 digits up to
/// 65535 (an empty port is allowed, as RFC 3986 allows it).
pub fn parse_host(raw: &str) -> Result<String, HostError> {
    let raw = raw.trim_matches([' ', '\t']);
    if raw.is_empty() {
        return Ok(String::new());
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(if raw.is_ascii() {
            HostError::BadCharacter
        } else {
            HostError::NotAscii
        });
    }
    let (name, port) = match raw.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']').ok_or(HostError::BadIpLiteral)?;
            inner
                .parse::<Ipv6Addr>()
                .map_err(|_| HostError::BadIpLiteral)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(HostError::BadPort)?),
            };
            (&raw[..inner.len() + 2], port)
        }
        None => match raw.split_once(':') {
            None => (raw, None),
            Some((name, port)) => (name, Some(port)),
        },
    };
    if let Some(port) = port {
        let digits = port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().is_ok_and(|p| p > 65_535) {
            return Err(HostError::BadPort);
        }
    }
    // An empty name with a port (`:8000`) is an empty authority, as RFC 3986 allows:
    // no host, like a request without one.
    if name.is_empty() {
        return Ok(String::new());
    }
    if !name.starts_with('[')
        && !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(HostError::BadCharacter);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    Ok(name.to_ascii_lowercase())
}

/// The configured base domains, longest first so that nested bases match precisely.
#[derive(Clone, Debug)]
pub struct BaseDomains(Vec<String>);

impl BaseDomains {
    /// Normalises and orders the base domains.
    pub fn new(domains: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<String> = domains
            .into_iter()
            .map(|d| normalise(&d).to_owned())
            .filter(|d| !d.is_empty())
            .collect();
        v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        v.dedup();
        BaseDomains(v)
    }

    /// The domains, longest first.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Classifies a `Host` value by the base domains alone.
    pub fn classify(&self, host: &str) -> HostContext {
        self.classify_with(host, |_| None)
    }

    /// Classifies a `Host` value. A host under no base domain is looked up with
    /// `custom_host` (given the name lowercase, without port and trailing dot) before it
    /// falls to the main context.
    pub fn classify_with(
        &self,
        host: &str,
        custom_host: impl FnOnce(&str) -> Option<TenantId>,
    ) -> HostContext {
        let host = match parse_host(host) {
            Ok(host) => host,
            Err(e) => return HostContext::Malformed(e),
        };
        if host.ends_with('.') {
            return HostContext::Invalid(format!(
                "'{host}.' ends with more than one dot; send the host name with at most one"
            ));
        }
        // An empty label ("a..b", ".a") names no host; such a name must not fall
        // through to the main context.
        if host.starts_with('.') || host.contains("..") {
            return HostContext::Invalid(format!(
                "'{host}' has an empty label; send a host name such as <tenant>.<base domain>"
            ));
        }
        for base in &self.0 {
            if host == *base {
                return HostContext::Main;
            }
            let Some(label) = host
                .strip_suffix(base.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
            else {
                continue;
            };
            if label.contains('.') {
                return HostContext::Invalid(format!(
                    "'{host}' is more than one label below the base domain {base}"
                ));
            }
            if label == "vendor" {
                return HostContext::Vendor;
            }
            return match TenantId::parse(label) {
                Ok(id) => HostContext::Tenant(id),
                Err(IdError::Reserved(_)) => {
                    HostContext::Invalid(format!("'{label}.{base}' is a reserved name"))
                }
                Err(e) => HostContext::Invalid(e.to_string()),
            };
        }
        custom_host(&host).map_or(HostContext::Main, HostContext::Tenant)
    }
}

fn normalise(d: &str) -> &str {
    let d = d.trim();
    d.strip_suffix('.').unwrap_or(d)
}

/// A host name as routing sees it: port stripped, one trailing dot dropped, lowercase
/// (empty for a value that is no valid host: such requests are refused before any
/// handler). Sessions are bound to this form of the host they were issued on.
pub fn canonical_host(host: &str) -> String {
    parse_host(host).unwrap_or_default()
}

/// The host of a request: the `Host` header, or the URI authority (HTTP/2); `""` if
/// there is neither, or the header is not visible ASCII (refused by routing).
pub fn request_host(req: &actix_web::dev::RequestHead) -> &str {
    host_value(req).unwrap_or("")
}

/// The raw host of a request, or the error of a header that is not visible ASCII.
fn host_value(req: &actix_web::dev::RequestHead) -> Result<&str, HostError> {
    match req.headers.get(actix_web::http::header::HOST) {
        Some(h) => h.to_str().map_err(|_| HostError::NotAscii),
        None => Ok(req.uri.authority().map_or("", |a| a.as_str())),
    }
}

/// Classifies the request once, by the base domains and custom hosts of `state`, and
/// stores the result in its extensions.
pub fn tag<S: Edge>(req: &ServiceRequest, state: Option<&S>) -> HostContext {
    let ctx = match (host_value(req.head()), state) {
        (Err(e), _) => HostContext::Malformed(e),
        (Ok(raw), Some(s)) => s
            .bases()
            .classify_with(raw, |name| s.custom_hosts().tenant_of(name)),
        (Ok(raw), None) => BaseDomains::new(Vec::new()).classify(raw),
    };
    req.extensions_mut().insert(ctx.clone());
    ctx
}

/// The context of a request tagged by [`tag`].
pub fn context_of(req: &HttpRequest) -> HostContext {
    req.extensions()
        .get::<HostContext>()
        .cloned()
        .unwrap_or(HostContext::Main)
}

/// Routes a scope to one kind of host.
#[derive(Clone, Copy, Debug)]
pub enum HostGuard {
    /// Main host.
    Main,
    /// Vendor host.
    Vendor,
    /// Any tenant host.
    Tenant,
}

impl Guard for HostGuard {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        matches!(
            (self, ctx.req_data().get::<HostContext>()),
            (HostGuard::Main, Some(HostContext::Main) | None)
                | (HostGuard::Vendor, Some(HostContext::Vendor))
                | (HostGuard::Tenant, Some(HostContext::Tenant(_)))
        )
    }
}

/// Tags each request with its host context; names that can never be served get 404,
/// values that are no host name at all 400.
pub async fn host_context<S: Edge>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The request log middleware (outermost) has usually tagged it already.
    let tagged = req.extensions().get::<HostContext>().cloned();
    let ctx = tagged.unwrap_or_else(|| {
        let state = req.app_data::<web::Data<S>>().cloned();
        tag(&req, state.as_ref().map(|s| s.get_ref()))
    });
    let refusal = match ctx {
        HostContext::Invalid(why) => ApiError::NotFound {
            code: "not_found",
            detail: why,
        },
        HostContext::Malformed(e) => ApiError::BadRequest {
            code: "invalid_host",
            detail: e.to_string(),
        },
        _ => return next.call(req).await.map(|r| r.map_into_left_body()),
    };
    let res = actix_web::ResponseError::error_response(&refusal);
    Ok(req.into_response(res).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases() -> BaseDomains {
        BaseDomains::new(["localhost".to_string(), "permetrix.fly.dev".to_string()])
    }

    fn tenant(id: &str) -> HostContext {
        HostContext::Tenant(TenantId::parse(id).unwrap())
    }

    #[test]
    fn classifies_the_three_contexts() {
        let b = bases();
        assert_eq!(b.classify("permetrix.fly.dev"), HostContext::Main);
        assert_eq!(b.classify("localhost:8000"), HostContext::Main);
        assert_eq!(b.classify("vendor.permetrix.fly.dev"), HostContext::Vendor);
        assert_eq!(b.classify("acme.localhost:8000"), tenant("acme"));
        assert_eq!(b.classify("acme-2.permetrix.fly.dev"), tenant("acme-2"));
    }

    #[test]
    fn folds_case_strips_port_and_one_trailing_dot() {
        let b = bases();
        assert_eq!(b.classify("ACME.Permetrix.Fly.Dev."), tenant("acme"));
        assert_eq!(b.classify("acme.localhost.:443"), tenant("acme"));
        assert_eq!(b.classify("VENDOR.localhost"), HostContext::Vendor);
        assert!(matches!(
            b.classify("acme.localhost.."),
            HostContext::Invalid(_)
        ));
    }

    #[test]
    fn hosts_under_no_base_are_main() {
        let b = bases();
        assert_eq!(b.classify("127.0.0.1:8000"), HostContext::Main);
        assert_eq!(b.classify("[::1]:8000"), HostContext::Main);
        assert_eq!(b.classify("example.com"), HostContext::Main);
        assert_eq!(b.classify(""), HostContext::Main);
        // A suffix match that is not a label boundary is not under the base.
        assert_eq!(b.classify("evillocalhost"), HostContext::Main);
    }

    #[test]
    fn deeper_reserved_and_malformed_names_are_invalid() {
        let b = bases();
        for h in [
            "a.b.localhost",
            "www.localhost",
            "api.permetrix.fly.dev",
            "-x.localhost",
            "a_b.localhost",
        ] {
            assert!(matches!(b.classify(h), HostContext::Invalid(_)), "{h}");
        }
    }

    /// None of these is a `host[:port]`: each is refused (400), never served as main.
    #[test]
    fn values_that_are_no_host_are_malformed() {
        let b = bases();
        for h in [
            "globex.localhost:x",
            "globex.localhost:80:80",
            "vendor.localhost:-1",
            "localhost:99999",
            "localhost:123456",
            "globex.localhost/",
            "globex.localhost%2f",
            "a#b.localhost",
            "a?b",
            "a;b.localhost",
            "user@localhost",
            "a b.localhost",
            "[::1",
            "[not-ip]:80",
            "[::1]x",
            "[::1]:x",
            "\u{0430}cme.localhost",
            "acme.localhost\u{0}",
            ".",
            ".:80",
            "::1",
        ] {
            assert!(
                matches!(b.classify(h), HostContext::Malformed(_)),
                "{h:?} -> {:?}",
                b.classify(h)
            );
        }
        // Valid spellings keep their meaning.
        assert_eq!(b.classify("[::1]"), HostContext::Main);
        assert_eq!(b.classify("[::1]:8000"), HostContext::Main);
        assert_eq!(b.classify("acme.localhost:"), tenant("acme"));
        assert_eq!(b.classify("acme.localhost:65535"), tenant("acme"));
        assert_eq!(
            parse_host("ACME.localhost.:80"),
            Ok("acme.localhost".into())
        );
        assert_eq!(parse_host(""), Ok(String::new()));
        // No name at all, as without a Host: the main context, like "".
        assert_eq!(b.classify(":8443"), HostContext::Main);
    }

    #[test]
    fn nested_base_domains_match_the_longest() {
        let b = BaseDomains::new(["fly.dev".to_string(), "permetrix.fly.dev".to_string()]);
        assert_eq!(b.classify("acme.permetrix.fly.dev"), tenant("acme"));
        assert_eq!(b.classify("permetrix.fly.dev"), HostContext::Main);
    }
}
