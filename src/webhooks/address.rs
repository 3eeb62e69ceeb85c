//! Where a webhook may point: an `http` or `https` URL whose host is not, and does not
//! resolve to, a private, loopback, link-local, unique-local or unspecified address
//! (server-side request forgery), unless the server runs with `--webhooks-allow-private`.
//!
//! The rule is checked when an endpoint is registered and again on every delivery,
//! because a name can resolve elsewhere later: deliveries connect through
//! [`GuardedResolver`], which resolves the name once and hands the connector only the
//! addresses it allowed, so no second lookup can differ from the checked one.
use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use actix_tls::connect::Resolve;
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// Why a URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    /// Not a URL this server can deliver to.
    #[error("{0}")]
    Invalid(String),
    /// Its host is, or resolves to, an address inside a private network.
    #[error(
        "'{host}' is or resolves to {addr}, a private, loopback, link-local or unspecified \
         address; webhooks go to public addresses only (an operator may allow private ones \
         with --webhooks-allow-private)"
    )]
    Private {
        /// The URL's host.
        host: String,
        /// The refused address.
        addr: IpAddr,
    },
}

/// A parsed webhook URL.
#[derive(Clone, Debug)]
pub struct WebhookUrl {
    /// As given (what is stored and shown).
    raw: String,
    uri: Uri,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
}

impl WebhookUrl {
    /// Parses `raw`: `http` or `https`, a host, no user name or password, no fragment.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let invalid = |why: &str| UrlError::Invalid(format!("url '{raw}' {why}"));
        if raw.len() > MAX_URL {
            return Err(UrlError::Invalid(format!(
                "url is longer than {MAX_URL} characters"
            )));
        }
        if raw.contains('#') || raw.chars().any(char::is_whitespace) {
            return Err(invalid("must not contain a fragment or spaces"));
        }
        let uri: Uri = raw.parse().map_err(|_| invalid("is not an absolute URL"))?;
        let default_port = match uri.scheme_str() {
            Some("https") => 443,
            Some("http") => 80,
            _ => return Err(invalid("must start with https:// or http://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("names no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("must not carry a user name or password"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("names no host"));
        }
        Ok(WebhookUrl {
            raw: raw.to_owned(),
            port: authority.port_u16().unwrap_or(default_port),
            uri,
            host,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL to request.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether deliveries use TLS.
    pub fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// The refusal of a host that is itself a forbidden IP address (connections to IP
    /// literals do not go through [`GuardedResolver`]).
    pub fn refused_literal(&self) -> Option<UrlError> {
        let addr = self.host.parse::<IpAddr>().ok()?;
        forbidden(addr).then(|| UrlError::Private {
            host: self.host.clone(),
            addr,
        })
    }

    /// Checks that the URL's host is, and resolves to, public addresses only.
    pub async fn check_public(&self) -> Result<(), UrlError> {
        let addrs = lookup(&self.host, self.port).await.map_err(|e| {
            UrlError::Invalid(format!("host '{}' does not resolve: {e}", self.host))
        })?;
        match addrs.iter().find(|a| forbidden(a.ip())) {
            Some(a) => Err(UrlError::Private {
                host: self.host.clone(),
                addr: a.ip(),
            }),
            None => Ok(()),
        }
    }
}

/// How long a name may take to resolve when an endpoint is registered (deliveries
/// resolve within their own timeout).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The addresses of `host` (an IP literal is itself).
async fn lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))?;
    let addrs: Vec<SocketAddr> = found?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ));
    }
    Ok(addrs)
}

/// Whether a webhook must not connect to `ip`: an address of this machine or of a
/// private network, or no unicast address at all.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 "this network", 100.64.0.0/10 carrier-grade NAT, 240.0.0.0/4 reserved.
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 (deprecated) site-local.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
}

/// The IPv4 address inside an IPv6 one that reaches it: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // `::` and `::1` are themselves, not IPv4-compatible addresses.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The DNS resolver deliveries connect through: it resolves a name once and returns
/// only allowed addresses, so the connection goes where the check looked.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    /// `--webhooks-allow-private`: every address is allowed.
    pub allow_private: bool,
}

impl GuardedResolver {
    /// The addresses of `host` a delivery may connect to; an error names the refusal.
    pub async fn allowed(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, UrlError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = lookup(host, port)
            .await
            .map_err(|e| UrlError::Invalid(format!("host '{host}' does not resolve: {e}")))?;
        if self.allow_private {
            return Ok(addrs);
        }
        match addrs.iter().find(|a| forbidden(a.ip())) {
            // One private address among public ones refuses them all: a name that
            // points inside is not a receiver's.
            Some(a) => Err(UrlError::Private {
                host: host.to_owned(),
                addr: a.ip(),
            }),
            None => Ok(addrs),
        }
    }
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            self.allowed(host, port)
                .await
                .map_err(|e| Box::new(e) as Box<dyn StdError>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_unspecified_addresses_are_forbidden() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(forbidden(ip(s)), "{s} must be forbidden");
        }
        for s in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "203.0.113.10",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert!(!forbidden(ip(s)), "{s} must be allowed");
        }
    }

    #[test]
    fn urls_are_http_or_https_with_a_host_and_nothing_else() {
        let url = WebhookUrl::parse("https://hooks.example.com:8443/permetrix?x=1").unwrap();
        assert!(url.is_https());
        assert_eq!((url.host.as_str(), url.port), ("hooks.example.com", 8443));
        let v6 = WebhookUrl::parse("http://[::1]/hook").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 80));
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "example.com/hook",
            "/hook",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https://exa mple.com/",
            "https:///nohost",
        ] {
            assert!(
                matches!(WebhookUrl::parse(bad), Err(UrlError::Invalid(_))),
                "{bad} must be refused"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(WebhookUrl::parse(&long).is_err());
    }

    #[actix_rt::test]
    async fn a_name_or_literal_that_points_inside_is_refused_at_registration_and_delivery() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://localhost/x",
        ] {
            let parsed = WebhookUrl::parse(url).unwrap();
            assert!(
                matches!(parsed.check_public().await, Err(UrlError::Private { .. })),
                "{url} must be refused"
            );
        }
        let guarded = GuardedResolver {
            allow_private: false,
        };
        // What the connector asks at delivery time (IPv6 literals arrive bracketed).
        for host in ["localhost", "[::1]", "127.0.0.1"] {
            let refused = guarded.lookup(host, 80).await;
            assert!(refused.is_err(), "{host} must be refused at delivery");
        }
        let allowed = GuardedResolver {
            allow_private: true,
        };
        assert!(!allowed.lookup("localhost", 80).await.unwrap().is_empty());
        let public = WebhookUrl::parse("https://203.0.113.10/hook").unwrap();
        assert_eq!(public.check_public().await, Ok(()));
    }
}
