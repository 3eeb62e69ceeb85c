//! API key formats.
//!
//! - tenant: `pmx_t_<tenant_id>_<key_id>_<secret>`
//! - vendor: `pmx_v_<vendor_id>_<secret>`
//!
//! Ids never contain `_`; secrets are 256 random bits in hex. Only a keyed digest of
//! the secret is stored; the key itself is shown once, at creation.
use crate::auth::secrets::random_hex;

/// A token with a key format (not yet verified).
#[derive(Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A tenant key.
    Tenant {
        /// Tenant id part.
        tenant: &'a str,
        /// Key id part.
        key_id: &'a str,
        /// Secret part.
        secret: &'a str,
    },
    /// A vendor key.
    Vendor {
        /// Vendor id part.
        vendor: &'a str,
        /// Secret part.
        secret: &'a str,
    },
}

/// Splits a token into its parts; `None` if it has no key format.
pub fn parse(token: &str) -> Option<Token<'_>> {
    if let Some(rest) = token.strip_prefix("pmx_t_") {
        let mut parts = rest.split('_');
        let (tenant, key_id, secret) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || tenant.is_empty() || key_id.is_empty() || secret.is_empty() {
            return None;
        }
        return Some(Token::Tenant {
            tenant,
            key_id,
            secret,
        });
    }
    if let Some(rest) = token.strip_prefix("pmx_v_") {
        let (vendor, secret) = rest.split_once('_')?;
        if vendor.is_empty() || secret.is_empty() || secret.contains('_') {
            return None;
        }
        return Some(Token::Vendor { vendor, secret });
    }
    None
}

/// A new key id (64 random bits, hex: a valid label, no `_`).
pub fn new_key_id() -> String {
    random_hex::<8>()
}

/// A new secret (256 random bits, hex).
pub fn new_secret() -> String {
    random_hex::<32>()
}

/// Formats a tenant key.
pub fn tenant_key(tenant: &str, key_id: &str, secret: &str) -> String {
    format!("pmx_t_{tenant}_{key_id}_{secret}")
}

/// Formats a vendor key.
pub fn vendor_key(vendor: &str, secret: &str) -> String {
    format!("pmx_v_{vendor}_{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_and_rejects_the_rest() {
        assert_eq!(
            parse("pmx_t_acme-2_0a1b_s3cr3t"),
            Some(Token::Tenant {
                tenant: "acme-2",
                key_id: "0a1b",
                secret: "s3cr3t"
            })
        );
        assert_eq!(
            parse("pmx_v_vector_abc"),
            Some(Token::Vendor {
                vendor: "vector",
                secret: "abc"
            })
        );
        for bad in [
            "",
            "pmx_t_acme_k1",
            "pmx_t_acme_k1_s_x",
            "pmx_t__k_s",
            "pmx_v_vector",
            "pmx_v__s",
            "Bearer x",
            "pmx_x_a_b",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_keys_round_trip() {
        let (id, secret) = (new_key_id(), new_secret());
        assert_eq!(secret.len(), 64);
        let key = tenant_key("acme", &id, &secret);
        assert_eq!(
            parse(&key),
            Some(Token::Tenant {
                tenant: "acme",
                key_id: &id,
                secret: &secret
            })
        );
        assert_ne!(new_secret(), new_secret());
    }
}
