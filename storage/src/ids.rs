//! Identifier newtypes. Each is parsed once at the edge; inside, the type carries the
//! guarantee (no re-validation, no surprise characters in storage keys).
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The value does not match the identifier syntax.
    #[error(
        "'{value}' is not a valid {what}: use 1-63 lowercase letters, digits and hyphens, \
         starting and ending with a letter or digit"
    )]
    Syntax {
        /// Which identifier.
        what: &'static str,
        /// The rejected value (truncated).
        value: String,
    },
    /// The value is reserved for the platform's own hosts.
    #[error("'{0}' is a reserved name and cannot be a tenant id")]
    Reserved(String),
    /// Not a borrow id.
    #[error("'{0}' is not a borrow id")]
    BorrowId(String),
    /// Not a host name a tenant can be reached on.
    #[error("'{value}' is not a valid host name: {why}")]
    HostName {
        /// The rejected value (truncated).
        value: String,
        /// What is wrong with it, and what to send instead.
        why: &'static str,
    },
}

/// Labels that name platform hosts, never tenants.
pub const RESERVED_LABELS: [&str; 6] = ["vendor", "www", "api", "admin", "app", "static"];

/// True if `s` is a DNS label of the form `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`.
fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match b {
        [] => false,
        [one] => alnum(*one),
        [first, middle @ .., last] => {
            b.len() <= 63
                && alnum(*first)
                && alnum(*last)
                && middle.iter().all(|&c| alnum(c) || c == b'-')
        }
    }
}

fn shown(value: &str) -> String {
    value.chars().take(80).collect()
}

macro_rules! label_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, reserved = $reserved:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an identifier.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                if !is_label(value) {
                    return Err(IdError::Syntax { what: $what, value: shown(value) });
                }
                if $reserved && RESERVED_LABELS.contains(&value) {
                    return Err(IdError::Reserved(value.to_owned()));
                }
                Ok(Self(value.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

label_id!(
    /// A tenant (customer) id: the subdomain label of its host.
    TenantId, "tenant id", reserved = true
);
label_id!(
    /// A vendor id (also the vendor portal user name).
    VendorId, "vendor id", reserved = false
);
label_id!(
    /// An API key id (the non-secret part that finds the stored digest).
    KeyId, "key id", reserved = false
);
label_id!(
    /// A package (provisioned pool) id.
    PackageId, "package id", reserved = false
);

/// A borrow (lease) id: a random UUID v4 (122 random bits). Knowing it authorises the
/// return of that borrow on its tenant's host, so it must stay unguessable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BorrowId([u8; 16]);

impl BorrowId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().into_bytes())
    }

    /// Parses the hyphenated text form.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        uuid::Uuid::try_parse(value)
            .map(|u| Self(u.into_bytes()))
            .map_err(|_| IdError::BorrowId(shown(value)))
    }

    /// The 16 raw bytes (storage keys).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for BorrowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for BorrowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BorrowId({self})")
    }
}

/// Longest host name (RFC 1035: 255 octets on the wire, 253 as text).
pub const MAX_HOST_LEN: usize = 253;

/// A tenant's own host name (`licenses.acme.com`), in the form routing compares: ASCII
/// lowercase, no trailing dot. Only the syntax is checked here (a DNS name of at least
/// two letter-digit-hyphen labels, internationalised names in their `xn--` form, no IP
/// address, no wildcard); whether the name is free, and not one of the platform's own,
/// is decided above the store.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomHost(String);

impl CustomHost {
    /// Parses a host name: case is folded and one trailing dot dropped.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let refuse = |why| IdError::HostName {
            value: shown(value),
            why,
        };
        if !value.is_ascii() {
            return Err(refuse(
                "use ASCII; send an internationalised name in its punycode (xn--) form",
            ));
        }
        let host = value
            .strip_suffix('.')
            .unwrap_or(value)
            .to_ascii_lowercase();
        if host.contains('*') {
            return Err(refuse("wildcards are not allowed; list each host name"));
        }
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return Err(refuse("a host name has 1-253 characters"));
        }
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 2 {
            return Err(refuse(
                "use a fully qualified name of at least two labels, such as licenses.acme.com",
            ));
        }
        if !labels.iter().all(|l| is_label(l)) {
            return Err(refuse(
                "each label has 1-63 letters, digits and hyphens, and starts and ends with a \
                 letter or digit",
            ));
        }
        // An all-numeric top-level label makes an IPv4 address (RFC 3696 §2); IPv6
        // literals already failed on their colons.
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(refuse(
                "IP addresses are not allowed, and the last label is never all digits",
            ));
        }
        Ok(CustomHost(host))
    }

    /// The host name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names of `hosts` as a tenant record lists them: sorted, each once.
    pub fn sorted_names(hosts: &[CustomHost]) -> Vec<String> {
        let mut names: Vec<String> = hosts.iter().map(|h| h.0.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

impl fmt::Display for CustomHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CustomHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomHost({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_label_syntax() {
        for ok in ["a", "acme", "acme-2", "0", "a1-b2-c3", &"a".repeat(63)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Acme",
            "a_b",
            "a.b",
            "ä",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_labels_are_not_tenants_but_may_be_vendors() {
        for r in RESERVED_LABELS {
            assert_eq!(TenantId::parse(r), Err(IdError::Reserved(r.to_owned())));
        }
        assert!(VendorId::parse("vendor").is_ok());
    }

    #[test]
    fn borrow_ids_round_trip() {
        let id = BorrowId::random();
        assert_eq!(BorrowId::parse(&id.to_string()), Ok(id));
        assert!(BorrowId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn custom_hosts_are_folded_dns_names() {
        for (raw, parsed) in [
            ("licenses.acme.com", "licenses.acme.com"),
            ("Licenses.ACME.com.", "licenses.acme.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("a.b", "a.b"),
            ("1.2.3.example", "1.2.3.example"),
            ("x-1.y2", "x-1.y2"),
        ] {
            assert_eq!(
                CustomHost::parse(raw).map(|h| h.0),
                Ok(parsed.into()),
                "{raw}"
            );
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        for bad in [
            "",
            ".",
            "com",
            "acme.com..",
            ".acme.com",
            "a..b",
            "*.acme.com",
            "licenses.*.com",
            "bücher.example",
            "10.0.0.1",
            "1.2.3.4.",
            "[::1]",
            "::1",
            "acme.com:443",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a b.com",
            &long_label,
            &long_name,
        ] {
            assert!(
                matches!(CustomHost::parse(bad), Err(IdError::HostName { .. })),
                "{bad}"
            );
        }
    }
}
