//! The layout of tenant records, whatever the backend.
//!
//! A [`TenantMutation`] becomes one record: a key `<tenant> 0x00 <kind> <id>`
//! ([`crate::keys`]) and a value, or the removal of that key ([`record_of`]). Backends
//! store the records (sled under the key, a SQL store as `(tenant, kind, id)` columns)
//! and read them back through one primitive, an ordered scan of one kind
//! ([`TenantSource`]); everything a tenant's reads and loads need is built on that scan
//! here, once. So a new mutation kind is one arm in [`record_of`], its reader here and a
//! field in [`TenantRecords`], and every backend stores and loads it unchanged.
//!
//! Append-only kinds ([`append_only`]) are inserted and never overwritten: a backend
//! that can tell refuses a second record under the same key as a fork.
use crate::codec::{self, Record};
use crate::keys;
use crate::records::{ChargeRecord, MoreRequestRecord, OutboxRecord, PackageRecord, UsageRecord};
use crate::store::{TenantMutation, TenantRecords};
use crate::{StorageError, TenantId, Timestamp};

/// The key and value (`None` = remove) a tenant mutation writes.
pub(crate) fn record_of(tenant: &TenantId, m: &TenantMutation) -> (Vec<u8>, Option<Vec<u8>>) {
    match m {
        TenantMutation::PutPackage(p) => (
            keys::key(tenant, keys::PACKAGE, p.product_id.as_bytes()),
            Some(codec::encode(p)),
        ),
        TenantMutation::PutLease(l) => (
            keys::key(tenant, keys::LEASE, l.id.as_bytes()),
            Some(codec::encode(l)),
        ),
        TenantMutation::DeleteLease(id) => (keys::key(tenant, keys::LEASE, id.as_bytes()), None),
        TenantMutation::AppendCharge(c) => (keys::charge(tenant, c.seq), Some(codec::encode(c))),
        TenantMutation::PutSettings(s) => (
            keys::key(tenant, keys::SETTINGS, b""),
            Some(codec::encode(s)),
        ),
        TenantMutation::PutRestriction(r) => (
            keys::key(tenant, keys::RESTRICTION, r.product_id.as_bytes()),
            Some(codec::encode(r)),
        ),
        TenantMutation::PutSpend(s) => (
            keys::spend(tenant, &s.product_id, s.month),
            Some(codec::encode(s)),
        ),
        TenantMutation::PutIdempotency(r) => (
            keys::idempotency(tenant, r.operation, &r.key),
            Some(codec::encode(r)),
        ),
        TenantMutation::DeleteIdempotency { operation, key } => {
            (keys::idempotency(tenant, *operation, key), None)
        }
        TenantMutation::AppendUsage(u) => (
            keys::usage(tenant, &u.product_id, u.at, u.seq),
            Some(codec::encode(u)),
        ),
        TenantMutation::PutMoreRequest(r) => (
            keys::key(tenant, keys::REQUEST, r.id.as_bytes()),
            Some(codec::encode(r)),
        ),
        TenantMutation::PutNonce(n) => (
            keys::nonce(tenant, &n.vendor_id, &n.nonce),
            Some(codec::encode(n)),
        ),
        TenantMutation::DeleteNonce { vendor_id, nonce } => {
            (keys::nonce(tenant, vendor_id, nonce), None)
        }
        TenantMutation::AppendOutbox(e) => (keys::outbox(tenant, e.seq), Some(codec::encode(e))),
        TenantMutation::DeleteOutbox(seq) => (keys::outbox(tenant, *seq), None),
    }
}

/// Whether records of `kind` are inserted once and never overwritten (the ledger, the
/// usage history, the webhook outbox): a second insert under the same key is a fork,
/// never an update. (Outbox events are deleted once delivered, never rewritten.)
pub(crate) fn append_only(kind: u8) -> bool {
    matches!(kind, keys::CHARGE | keys::USAGE | keys::OUTBOX)
}

/// Ids from `start` (inclusive) to `end` (exclusive; `None`: to the last id of the kind).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdRange<'a> {
    pub(crate) start: &'a [u8],
    pub(crate) end: Option<&'a [u8]>,
}

impl IdRange<'_> {
    /// Every id of a kind.
    pub(crate) const ALL: IdRange<'static> = IdRange {
        start: b"",
        end: None,
    };
}

/// Which end of a range a scan starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// From the first id on.
    Forward,
    /// From the last id back.
    Backward,
}

/// The one read a backend provides for tenant records.
pub(crate) trait TenantSource {
    /// The values of `tenant`'s records of `kind` whose ids lie in `ids`, in `order`,
    /// at most `limit`.
    fn scan(
        &mut self,
        tenant: &TenantId,
        kind: u8,
        ids: IdRange<'_>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StorageError>;
}

fn decode_all<R: Record>(values: Vec<Vec<u8>>) -> Result<Vec<R>, StorageError> {
    values
        .iter()
        .map(|v| codec::decode(v).map_err(StorageError::from))
        .collect()
}

fn all<R: Record>(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    kind: u8,
) -> Result<Vec<R>, StorageError> {
    decode_all(src.scan(tenant, kind, IdRange::ALL, Order::Forward, usize::MAX)?)
}

fn last<R: Record>(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    kind: u8,
    ids: IdRange<'_>,
) -> Result<Option<R>, StorageError> {
    Ok(decode_all(src.scan(tenant, kind, ids, Order::Backward, 1)?)?.pop())
}

/// Everything an actor needs to rebuild a tenant's state.
pub(crate) fn load(
    src: &mut impl TenantSource,
    tenant: &TenantId,
) -> Result<TenantRecords, StorageError> {
    let packages: Vec<PackageRecord> = all(src, tenant, keys::PACKAGE)?;
    let usage_head = usage_head(src, tenant, &packages)?;
    let outbox_oldest = outbox(src, tenant, 0, 1)?.pop().map(|e| e.seq);
    Ok(TenantRecords {
        leases: all(src, tenant, keys::LEASE)?,
        settings: all(src, tenant, keys::SETTINGS)?.pop(),
        restrictions: all(src, tenant, keys::RESTRICTION)?,
        spend: all(src, tenant, keys::SPEND)?,
        ledger_head: last(src, tenant, keys::CHARGE, IdRange::ALL)?,
        idempotency: all(src, tenant, keys::IDEMPOTENCY)?,
        usage_head,
        nonces: all(src, tenant, keys::NONCE)?,
        outbox_head: last(src, tenant, keys::OUTBOX, IdRange::ALL)?,
        outbox_oldest,
        packages,
    })
}

/// The usage event with the highest `seq`: the last one of some pool (events are
/// appended with non-decreasing time, so each pool's last id holds its highest seq).
pub(crate) fn usage_head(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    packages: &[PackageRecord],
) -> Result<Option<UsageRecord>, StorageError> {
    let mut head: Option<UsageRecord> = None;
    for p in packages {
        let prefix = keys::usage_id_prefix(&p.product_id);
        let end = keys::prefix_end(&prefix);
        let ids = IdRange {
            start: &prefix,
            end: end.as_deref(),
        };
        if let Some(record) = last::<UsageRecord>(src, tenant, keys::USAGE, ids)?
            && head.as_ref().is_none_or(|h| record.seq > h.seq)
        {
            head = Some(record);
        }
    }
    Ok(head)
}

/// See [`crate::Store::charges`].
pub(crate) fn charges(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<ChargeRecord>, StorageError> {
    after(src, tenant, keys::CHARGE, after_seq, limit)
}

/// See [`crate::Store::outbox`].
pub(crate) fn outbox(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<OutboxRecord>, StorageError> {
    after(src, tenant, keys::OUTBOX, after_seq, limit)
}

/// Records of a kind keyed by big-endian sequence number, after `after_seq`, in order.
fn after<R: Record>(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    kind: u8,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<R>, StorageError> {
    let Some(first) = after_seq.checked_add(1) else {
        return Ok(Vec::new());
    };
    let start = first.to_be_bytes();
    let ids = IdRange {
        start: &start,
        end: None,
    };
    decode_all(src.scan(tenant, kind, ids, Order::Forward, limit)?)
}

/// See [`crate::Store::usage_events`].
pub(crate) fn usage_events(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    product_id: &str,
    start: (Timestamp, u64),
    end: Timestamp,
    limit: usize,
) -> Result<Vec<UsageRecord>, StorageError> {
    let from = keys::usage_id(product_id, start.0, start.1);
    let until = keys::usage_id(product_id, end, 0);
    if from >= until {
        return Ok(Vec::new());
    }
    let ids = IdRange {
        start: &from,
        end: Some(&until),
    };
    decode_all(src.scan(tenant, keys::USAGE, ids, Order::Forward, limit)?)
}

/// See [`crate::Store::usage_before`].
pub(crate) fn usage_before(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    product_id: &str,
    before: Timestamp,
) -> Result<Option<UsageRecord>, StorageError> {
    let from = keys::usage_id_prefix(product_id);
    let until = keys::usage_id(product_id, before, 0);
    let ids = IdRange {
        start: &from,
        end: Some(&until),
    };
    last(src, tenant, keys::USAGE, ids)
}

/// See [`crate::Store::more_requests`].
pub(crate) fn more_requests(
    src: &mut impl TenantSource,
    tenant: &TenantId,
) -> Result<Vec<MoreRequestRecord>, StorageError> {
    all(src, tenant, keys::REQUEST)
}

/// See [`crate::Store::more_request`].
pub(crate) fn more_request(
    src: &mut impl TenantSource,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<MoreRequestRecord>, StorageError> {
    // The first id after `id` itself is `id` followed by 0x00.
    let mut end = id.as_bytes().to_vec();
    end.push(0);
    let ids = IdRange {
        start: id.as_bytes(),
        end: Some(&end),
    };
    Ok(decode_all(src.scan(tenant, keys::REQUEST, ids, Order::Forward, 1)?)?.pop())
}
