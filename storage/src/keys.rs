//! Key layout of tenant records: `<tenant_id> 0x00 <kind> <id>`.
//!
//! The sled store keys its `tenant_state` tree so; other backends keep the three parts
//! apart ([`split`]). Ids are built so that byte order is the order readers want
//! (ledger order, time order within a pool), whatever the backend.
//!
//! Tenant ids never contain 0x00, so one tenant's prefix never matches another's
//! (`acme\0` vs `acme-2\0`).
use crate::{TenantId, Timestamp};

pub(crate) const PACKAGE: u8 = b'P';
pub(crate) const LEASE: u8 = b'L';
pub(crate) const CHARGE: u8 = b'C';
pub(crate) const SETTINGS: u8 = b'S';
pub(crate) const RESTRICTION: u8 = b'R';
pub(crate) const SPEND: u8 = b'M';
pub(crate) const IDEMPOTENCY: u8 = b'I';
pub(crate) const USAGE: u8 = b'U';
pub(crate) const REQUEST: u8 = b'Q';
pub(crate) const OUTBOX: u8 = b'O';
pub(crate) const NONCE: u8 = b'N';

/// `<tenant> 0x00`
pub(crate) fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.as_str().len() + 24);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    k
}

/// `<tenant> 0x00 <kind>`
pub(crate) fn kind_prefix(tenant: &TenantId, kind: u8) -> Vec<u8> {
    let mut k = tenant_prefix(tenant);
    k.push(kind);
    k
}

/// `<tenant> 0x00 <kind> <id>`
pub(crate) fn key(tenant: &TenantId, kind: u8, id: &[u8]) -> Vec<u8> {
    let mut k = kind_prefix(tenant, kind);
    k.extend_from_slice(id);
    k
}

/// The kind and id of a key made by [`key`] for `tenant`.
pub(crate) fn split<'k>(tenant: &TenantId, key: &'k [u8]) -> Option<(u8, &'k [u8])> {
    let (&kind, id) = key
        .strip_prefix(tenant.as_str().as_bytes())?
        .strip_prefix(&[0])?
        .split_first()?;
    Some((kind, id))
}

/// Charges are keyed by big-endian sequence number so that key order is ledger order.
pub(crate) fn charge(tenant: &TenantId, seq: u64) -> Vec<u8> {
    key(tenant, CHARGE, &seq.to_be_bytes())
}

/// Outbox events are keyed by big-endian sequence number: key order is delivery order.
pub(crate) fn outbox(tenant: &TenantId, seq: u64) -> Vec<u8> {
    key(tenant, OUTBOX, &seq.to_be_bytes())
}

/// Spend counters: `<product_id> 0x00 <month be>`.
pub(crate) fn spend(tenant: &TenantId, product_id: &str, month: u32) -> Vec<u8> {
    let mut id = Vec::with_capacity(product_id.len() + 5);
    id.extend_from_slice(product_id.as_bytes());
    id.push(0);
    id.extend_from_slice(&month.to_be_bytes());
    key(tenant, SPEND, &id)
}

/// Idempotency keys: `<operation tag> <key>`.
pub(crate) fn idempotency(
    tenant: &TenantId,
    operation: crate::records::IdempotentOperation,
    key: &str,
) -> Vec<u8> {
    let mut id = Vec::with_capacity(key.len() + 1);
    id.push(operation.tag());
    id.extend_from_slice(key.as_bytes());
    self::key(tenant, IDEMPOTENCY, &id)
}

/// Signature nonces: `<vendor_id> 0x00 <nonce>` (vendor ids hold no 0x00).
pub(crate) fn nonce(tenant: &TenantId, vendor_id: &str, nonce: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(vendor_id.len() + nonce.len() + 1);
    id.extend_from_slice(vendor_id.as_bytes());
    id.push(0);
    id.extend_from_slice(nonce.as_bytes());
    key(tenant, NONCE, &id)
}

/// A usage event: `<product_id> 0x00 <at, sign-flipped be> <seq be>`, so that key
/// order is time order within a pool and a time window is one range scan.
pub(crate) fn usage(tenant: &TenantId, product_id: &str, at: Timestamp, seq: u64) -> Vec<u8> {
    key(tenant, USAGE, &usage_id(product_id, at, seq))
}

/// The ids of one pool's usage events start with `<product_id> 0x00`. Product ids hold
/// no control characters (checked at the edge), so one pool's prefix never matches
/// another's.
pub(crate) fn usage_id_prefix(product_id: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(product_id.len() + 17);
    id.extend_from_slice(product_id.as_bytes());
    id.push(0);
    id
}

/// The id part of [`usage`].
pub(crate) fn usage_id(product_id: &str, at: Timestamp, seq: u64) -> Vec<u8> {
    let mut id = usage_id_prefix(product_id);
    id.extend_from_slice(&time_bytes(at));
    id.extend_from_slice(&seq.to_be_bytes());
    id
}

/// The first id after every id that starts with `prefix` (exclusive range end).
/// `None` if there is none (the prefix is all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Big-endian with the sign bit flipped: byte order equals numeric order, negatives
/// included.
pub(crate) fn time_bytes(at: Timestamp) -> [u8; 8] {
    ((at.millis() as u64) ^ (1 << 63)).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_similar_tenants_do_not_overlap() {
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("acme-2").unwrap();
        assert!(!key(&b, LEASE, b"x").starts_with(&tenant_prefix(&a)));
    }

    #[test]
    fn usage_keys_sort_by_time_then_sequence() {
        let t = TenantId::parse("t").unwrap();
        let at = |ms| Timestamp::from_millis(ms);
        assert!(usage(&t, "p", at(-5), 9) < usage(&t, "p", at(3), 1));
        assert!(usage(&t, "p", at(3), 1) < usage(&t, "p", at(3), 2));
        assert!(usage(&t, "p", at(255), 7) < usage(&t, "p", at(256), 1));
        let other_pool = usage(&t, "p-2", at(1), 1);
        let (_, id) = split(&t, &other_pool).unwrap();
        assert!(!id.starts_with(&usage_id_prefix("p")));
    }

    #[test]
    fn keys_split_back_into_kind_and_id() {
        let t = TenantId::parse("acme").unwrap();
        let k = usage(&t, "p", Timestamp::from_millis(5), 7);
        let (kind, id) = split(&t, &k).unwrap();
        assert_eq!(
            (kind, id),
            (
                USAGE,
                usage_id("p", Timestamp::from_millis(5), 7).as_slice()
            )
        );
        let other = TenantId::parse("acme-2").unwrap();
        assert_eq!(split(&other, &k), None);
        assert_eq!(prefix_end(b"ab\xff"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn charge_keys_sort_by_sequence() {
        let t = TenantId::parse("t").unwrap();
        assert!(charge(&t, 2) < charge(&t, 10));
        assert!(charge(&t, 255) < charge(&t, 256));
    }
}
