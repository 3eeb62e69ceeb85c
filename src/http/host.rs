//! Host routing: the request's context comes from the `Host` header alone.
//!
//! Never from `X-Forwarded-Host`, `Forwarded` or `connection_info()`: clients can set
//! those. The header (or the HTTP/2 authority) is matched against the configured base
//! domains after stripping the port, folding case and dropping one trailing dot; a host
//! under no base domain may still be a tenant's custom host ([`super::custom_hosts`]).
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
        let host = strip_port(host.trim());
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
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

/// Drops `:port`; IPv6 literals (`[::1]:8000`) keep their brackets.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(inner, _)| &host[..=inner.len()]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// A host name as routing sees it: port stripped, one trailing dot dropped, lowercase.
/// Sessions are bound to this form of the host they were issued on.
pub fn canonical_host(host: &str) -> String {
    let host = strip_port(host.trim());
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// The host of a request: the `Host` header, or the URI authority (HTTP/2).
pub fn request_host(req: &actix_web::dev::RequestHead) -> &str {
    req.headers
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// Classifies the request once, by the base domains and custom hosts of `state`, and
/// stores the result in its extensions.
pub fn tag<S: Edge>(req: &ServiceRequest, state: Option<&S>) -> HostContext {
    let host = request_host(req.head());
    let ctx = match state {
        Some(s) => s
            .bases()
            .classify_with(host, |name| s.custom_hosts().tenant_of(name)),
        None => BaseDomains::new(Vec::new()).classify(host),
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

/// Tags each request with its host context; names that can never be served get 404.
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
    if let HostContext::Invalid(why) = ctx {
        let res = actix_web::ResponseError::error_response(&ApiError::NotFound {
            code: "not_found",
            detail: why,
        });
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req).await.map(|r| r.map_into_left_body())
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

    #[test]
    fn nested_base_domains_match_the_longest() {
        let b = BaseDomains::new(["fly.dev".to_string(), "permetrix.fly.dev".to_string()]);
        assert_eq!(b.classify("acme.permetrix.fly.dev"), tenant("acme"));
        assert_eq!(b.classify("permetrix.fly.dev"), HostContext::Main);
    }
}
