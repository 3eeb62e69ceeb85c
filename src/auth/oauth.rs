//! OAuth 2.0 for vendors' own programs (client-credentials grant, RFC 6749 §4.4).
//!
//! A vendor creates clients (`<vendor_id>.<16 hex>` with a 256-bit secret, stored as a
//! keyed digest) and its programs exchange them at `POST /oauth/token` for an access
//! token:
//!
//! `pmx_o_<client_id>_<expiry unix seconds>_<scope bits>_<HMAC-SHA256 hex>`
//!
//! The token is self-contained (any broker holding the server key verifies it, no
//! token is stored), yet every use reads the client and its vendor, so revoking the
//! client or deleting the vendor ends its tokens at once. Its scope is a subset of
//! [`VendorScope`]s, checked by [`VendorAuth`](super::VendorAuth) against the route
//! ([`required_scope`]); routes not listed there refuse tokens.
use std::fmt;

use actix_web::http::Method;
use permetrix_storage::records::Lifecycle;
use permetrix_storage::{Timestamp, VendorId};
use subtle::ConstantTimeEq;

use super::secrets::random_hex;
use super::{AuthContext, Principal, invalid_key};
use crate::http::error::ApiError;

/// How long an access token is valid.
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

const TOKEN_PREFIX: &str = "pmx_o_";

/// What a vendor credential may do on the vendor host. A vendor key or a portal
/// session may do everything; an OAuth access token only what its scope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorScope {
    /// List customers and their requests for more seats.
    CustomersRead,
    /// Create customers, set their custom hosts.
    CustomersWrite,
    /// Provision and change packages, decide requests for more seats.
    Provision,
    /// Read customers' usage and overage ledgers.
    UsageRead,
}

impl VendorScope {
    /// Every scope, in canonical order (the order a scope string is written in).
    pub const ALL: [VendorScope; 4] = [
        VendorScope::CustomersRead,
        VendorScope::CustomersWrite,
        VendorScope::Provision,
        VendorScope::UsageRead,
    ];

    /// The scope's name in OAuth scope strings.
    pub fn name(self) -> &'static str {
        match self {
            VendorScope::CustomersRead => "customers:read",
            VendorScope::CustomersWrite => "customers:write",
            VendorScope::Provision => "provision",
            VendorScope::UsageRead => "usage:read",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            VendorScope::CustomersRead => 1,
            VendorScope::CustomersWrite => 2,
            VendorScope::Provision => 4,
            VendorScope::UsageRead => 8,
        }
    }
}

/// A set of [`VendorScope`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: a client created without one, a token asked for without one.
    pub const ALL: Scopes = Scopes(15);

    /// Parses a space-separated scope string (RFC 6749 §3.3): known names, in any
    /// order, at least one. The error names the first unknown one.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in text.split(' ').filter(|n| !n.is_empty()) {
            let scope = VendorScope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| name.to_owned())?;
            bits |= scope.bit();
        }
        if bits == 0 {
            return Err(String::new());
        }
        Ok(Scopes(bits))
    }

    /// The set of `scope` alone.
    pub const fn of(scope: VendorScope) -> Scopes {
        Scopes(scope.bit())
    }

    /// The scopes of `needed` not in this set; `None` if it covers them all.
    pub fn lacking(self, needed: Scopes) -> Option<Scopes> {
        Scopes::from_bits(needed.0 & !self.0)
    }

    /// Whether `scope` is in the set.
    pub fn allows(self, scope: VendorScope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in the set.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    fn from_bits(bits: u8) -> Option<Scopes> {
        (bits != 0 && Scopes::ALL.covers(Scopes(bits))).then_some(Scopes(bits))
    }
}

impl fmt::Display for Scopes {
    /// The canonical scope string: names in [`VendorScope::ALL`] order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = VendorScope::ALL
            .into_iter()
            .filter(|s| self.allows(*s))
            .map(VendorScope::name)
            .collect();
        f.write_str(&names.join(" "))
    }
}

/// The scopes a route of the vendor host needs from an OAuth access token; `None`: the
/// route takes no token (managing OAuth clients, and any route not listed here, so
/// that a route added later is closed to tokens until it is given a scope). The
/// webhook and offline-key routes decide where every customer's events go and how
/// their offline tokens are signed, which no one scope names: they take a token with
/// every scope (what a client gets by default), as they take the vendor key.
pub fn required_scope(method: &Method, pattern: &str) -> Option<Scopes> {
    let read = *method == Method::GET;
    let scope = match pattern {
        "/api/vendor/customers" | "/api/vendor/requests" if read => VendorScope::CustomersRead,
        "/api/vendor/customers" | "/api/vendor/customers/{tenant_id}/hosts" => {
            VendorScope::CustomersWrite
        }
        "/api/vendor/provision"
        | "/api/vendor/packages/{package_id}"
        | "/api/vendor/requests/{id}/approve"
        | "/api/vendor/requests/{id}/reject" => VendorScope::Provision,
        "/api/vendor/usage"
        | "/api/vendor/customers/{tenant_id}/overage-charges"
        | "/api/vendor/customers/{tenant_id}/overage-charges/verify"
            if read =>
        {
            VendorScope::UsageRead
        }
        p if p.starts_with("/api/vendor/webhooks") || p.starts_with("/api/vendor/offline-keys") => {
            return Some(Scopes::ALL);
        }
        _ => return None,
    };
    Some(Scopes::of(scope))
}

/// A new client id of `vendor`: the vendor id (so that one read finds the client),
/// a dot, 64 random bits in hex.
pub fn new_client_id(vendor: &VendorId) -> String {
    format!("{vendor}.{}", random_hex::<8>())
}

/// The vendor a client id belongs to; `None` if it has no client id format.
pub fn client_vendor(client_id: &str) -> Option<VendorId> {
    let (vendor, rest) = client_id.split_once('.')?;
    if rest.len() != 16 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    VendorId::parse(vendor).ok()
}

/// A new client secret (256 random bits, hex).
pub fn new_client_secret() -> String {
    random_hex::<32>()
}

/// An access token granted to a client: the token and when it expires.
pub struct Granted {
    /// The bearer token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Its scope.
    pub scope: Scopes,
}

/// What the MAC of a token covers.
fn signed(client_id: &str, expires: i64, bits: u8) -> String {
    format!("permetrix oauth2 access token v1|{client_id}|{expires}|{bits}")
}

/// Issues an access token to `client_id` for `scope`, valid from `now`.
pub fn issue(state: &impl AuthContext, client_id: &str, scope: Scopes, now: Timestamp) -> Granted {
    let expires = now.millis() / 1000 + TOKEN_LIFETIME_SECS;
    let mac = state
        .secrets()
        .key_digest(&signed(client_id, expires, scope.0));
    Granted {
        access_token: format!(
            "{TOKEN_PREFIX}{client_id}_{expires}_{}_{}",
            scope.0,
            hex::encode(mac)
        ),
        expires_in: TOKEN_LIFETIME_SECS,
        scope,
    }
}

/// Whether `token` has the access-token format (it may still be invalid).
pub fn is_access_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

/// Verifies an access token: its MAC, its expiry, its client (not revoked) and its
/// vendor (not deleted). One keyed hash and two store reads, no argon2.
pub fn verify(state: &impl AuthContext, token: &str) -> Result<Principal, ApiError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid_key)?;
    let mut parts = rest.split('_');
    let (Some(client_id), Some(expires), Some(bits), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid_key());
    };
    let vendor = client_vendor(client_id).ok_or_else(invalid_key)?;
    let expires: i64 = expires.parse().map_err(|_| invalid_key())?;
    let bits: u8 = bits.parse().map_err(|_| invalid_key())?;
    let mac = hex::decode(mac).map_err(|_| invalid_key())?;
    let expected = state
        .secrets()
        .key_digest(&signed(client_id, expires, bits));
    if !bool::from(expected.as_slice().ct_eq(&mac)) {
        return Err(invalid_key());
    }
    let scope = Scopes::from_bits(bits).ok_or_else(invalid_key)?;
    if super::now(state).millis() / 1000 >= expires {
        return Err(ApiError::unauthorized(
            "this access token has expired; get a new one from POST /oauth/token",
        ));
    }
    let client = state.platform().oauth_client(&vendor, client_id)?;
    if client.is_none_or(|c| c.revoked_at.is_some()) {
        return Err(ApiError::unauthorized(
            "this access token's OAuth client has been revoked",
        ));
    }
    let live = state
        .platform()
        .vendor(&vendor)?
        .is_some_and(|v| v.lifecycle == Lifecycle::Active);
    if !live {
        return Err(invalid_key());
    }
    Ok(Principal::VendorClient {
        vendor,
        client_id: client_id.to_owned(),
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_strings_parse_in_any_order_and_print_canonically() {
        let s = Scopes::parse("provision  customers:read").unwrap();
        assert_eq!(s.to_string(), "customers:read provision");
        assert!(s.allows(VendorScope::Provision));
        assert!(!s.allows(VendorScope::UsageRead));
        assert!(Scopes::ALL.covers(s));
        assert!(!s.covers(Scopes::ALL));
        assert_eq!(
            Scopes::ALL.to_string(),
            "customers:read customers:write provision usage:read"
        );
        assert_eq!(Scopes::parse("provision admin"), Err("admin".into()));
        assert_eq!(Scopes::parse(" "), Err(String::new()));
        assert_eq!(Scopes::from_bits(16), None);
        assert_eq!(Scopes::from_bits(0), None);
    }

    #[test]
    fn client_ids_name_their_vendor() {
        let vector = VendorId::parse("vector").unwrap();
        let id = new_client_id(&vector);
        assert_eq!(client_vendor(&id), Some(vector));
        for bad in [
            "vector",
            "vector.xyz",
            "Vector.0123456789abcdef",
            ".0123456789abcdef",
            "vector.0123456789abcdef0",
        ] {
            assert_eq!(client_vendor(bad), None, "{bad}");
        }
    }

    #[test]
    fn token_scopes_follow_the_routes_and_unlisted_routes_take_none() {
        let get = Method::GET;
        let post = Method::POST;
        let one = |s| Some(Scopes::of(s));
        assert_eq!(
            required_scope(&get, "/api/vendor/customers"),
            one(VendorScope::CustomersRead)
        );
        assert_eq!(
            required_scope(&post, "/api/vendor/customers"),
            one(VendorScope::CustomersWrite)
        );
        assert_eq!(
            required_scope(&post, "/api/vendor/provision"),
            one(VendorScope::Provision)
        );
        assert_eq!(
            required_scope(&get, "/api/vendor/usage"),
            one(VendorScope::UsageRead)
        );
        for (method, path) in [
            (&post, "/api/vendor/webhooks"),
            (&get, "/api/vendor/webhooks/{id}/deliveries"),
            (&post, "/api/vendor/offline-keys/rotate"),
        ] {
            assert_eq!(required_scope(method, path), Some(Scopes::ALL), "{path}");
        }
        let read = Scopes::of(VendorScope::CustomersRead);
        assert_eq!(read.lacking(read), None);
        assert_eq!(
            read.lacking(Scopes::ALL).map(|s| s.to_string()).as_deref(),
            Some("customers:write provision usage:read")
        );
        assert_eq!(required_scope(&post, "/api/vendor/usage"), None);
        assert_eq!(required_scope(&post, "/api/vendor/oauth-clients"), None);
        assert_eq!(required_scope(&get, "/api/vendor/oauth-clients"), None);
        assert_eq!(required_scope(&get, "/api/vendor/something-new"), None);
    }
}
