//! What the server may believe about the client's connection: its address (for
//! per-address login throttling) and whether it came over HTTPS (for the `Secure`
//! cookie attribute).
//!
//! Both are easy to lie about in headers, so each is trusted only as far as a lie
//! cannot hurt anyone but the liar:
//! - The address is the TCP peer unless the operator names a header that their proxy
//!   sets (`--client-ip-header Fly-Client-IP` on fly.io, whose proxy overwrites it).
//!   Without that flag every client behind the proxy shares the proxy's address.
//! - HTTPS is assumed under `--secure-cookies always` (what a deployment behind a TLS
//!   proxy should set), never under `never`, and under `auto` when the request says
//!   `X-Forwarded-Proto: https`. A client that forges that header only makes its own
//!   cookie stricter; a client that omits it over plain HTTP already sent its password
//!   in clear text.
use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;

/// When session cookies carry the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CookieSecurity {
    /// When the request arrived over HTTPS (`X-Forwarded-Proto: https`). The default.
    Auto,
    /// Always (behind a TLS-terminating proxy such as fly.io's).
    Always,
    /// Never (plain-HTTP development only).
    Never,
}

/// Whether a cookie set in reply to `req` must be `Secure`.
pub fn is_https(req: &HttpRequest, mode: CookieSecurity) -> bool {
    match mode {
        CookieSecurity::Always => true,
        CookieSecurity::Never => false,
        CookieSecurity::Auto => {
            req.uri().scheme_str() == Some("https")
                || req
                    .headers()
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        }
    }
}

/// The client address used to throttle logins: the configured proxy header if present
/// and valid, else the TCP peer. IPv6 addresses are reduced to their /64, the unit one
/// client usually controls.
pub fn client_address(req: &HttpRequest, header: Option<&HeaderName>) -> Option<IpAddr> {
    let from_header = header
        .and_then(|h| req.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    let ip = from_header.or_else(|| req.peer_addr().map(|a| a.ip()))?;
    Some(match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn https_is_believed_only_as_configured() {
        let plain = TestRequest::default().to_http_request();
        let proxied = TestRequest::default()
            .insert_header(("X-Forwarded-Proto", "https"))
            .to_http_request();
        assert!(!is_https(&plain, CookieSecurity::Auto));
        assert!(is_https(&proxied, CookieSecurity::Auto));
        assert!(is_https(&plain, CookieSecurity::Always));
        assert!(!is_https(&proxied, CookieSecurity::Never));
    }

    #[test]
    fn addresses_come_from_the_peer_unless_a_header_is_configured() {
        let fly = HeaderName::from_static("fly-client-ip");
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .insert_header(("Fly-Client-IP", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            client_address(&req, None),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            client_address(&req, Some(&fly)),
            Some("203.0.113.9".parse().unwrap())
        );
        let v6 = TestRequest::default()
            .peer_addr("[2001:db8:1:2:3:4:5:6]:1".parse().unwrap())
            .to_http_request();
        assert_eq!(
            client_address(&v6, Some(&fly)),
            Some("2001:db8:1:2::".parse().unwrap())
        );
    }
}
