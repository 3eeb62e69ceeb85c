//! Reports read back from storage: usage over a time window and the charge ledger.
//!
//! They run beside the actors, not inside them (the HTTP edge calls them on a blocking
//! thread): a history can be long, and reading it must not hold a tenant's mailbox nor
//! live in its memory. Everything they read was written by the tenant's actor in
//! atomic batches, so a report never sees half of a borrow.
use permetrix_storage::records::ChargeRecord;
use permetrix_storage::{StorageError, Store, TenantId, Timestamp};

use crate::domain::{LedgerHead, PoolUsage, verify_chain};

/// Records read per storage call.
const PAGE: usize = 4096;

/// Usage of one pool over `[from, to)`.
pub fn pool_usage(
    store: &dyn Store,
    tenant: &TenantId,
    product_id: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<PoolUsage, StorageError> {
    let opening = store
        .usage_before(tenant, product_id, from)?
        .map_or(0, |e| e.in_use);
    let mut usage = PoolUsage::opening_with(opening);
    let mut cursor = (from, 0);
    loop {
        let page = store.usage_events(tenant, product_id, cursor, to, PAGE)?;
        for event in &page {
            usage.add(event);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => cursor = (last.at, last.seq + 1),
            _ => return Ok(usage),
        }
    }
}

/// Which charges to list.
#[derive(Clone, Debug, Default)]
pub struct ChargeFilter {
    /// Only this product.
    pub product_id: Option<String>,
    /// Booked at or after.
    pub from: Option<Timestamp>,
    /// Booked before.
    pub to: Option<Timestamp>,
}

impl ChargeFilter {
    fn matches(&self, c: &ChargeRecord) -> bool {
        self.product_id.as_ref().is_none_or(|p| *p == c.product_id)
            && self.from.is_none_or(|from| c.charged_at >= from)
            && self.to.is_none_or(|to| c.charged_at < to)
    }
}

/// Charges in ledger order after sequence number `after_seq` that match `filter`, at
/// most `limit`; and the sequence number to continue after when the limit cut the list
/// short.
pub fn charges(
    store: &dyn Store,
    tenant: &TenantId,
    filter: &ChargeFilter,
    after_seq: u64,
    limit: usize,
) -> Result<(Vec<ChargeRecord>, Option<u64>), StorageError> {
    let mut out = Vec::new();
    let mut cursor = after_seq;
    loop {
        let page = store.charges(tenant, cursor, PAGE)?;
        for c in &page {
            if filter.matches(c) {
                if out.len() == limit {
                    return Ok((out, Some(cursor)));
                }
                out.push(c.clone());
            }
            cursor = c.seq;
        }
        if page.len() < PAGE {
            return Ok((out, None));
        }
    }
}

/// The outcome of checking a tenant's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerCheck {
    /// Every check passed.
    pub valid: bool,
    /// Charges that verified, from the first.
    pub verified: u64,
    /// Where the verified chain ends (its hash is what either side can keep and compare
    /// later).
    pub head: LedgerHead,
    /// The first charge that failed a check.
    pub first_invalid_seq: Option<u64>,
    /// What failed, in words.
    pub problem: Option<String>,
}

fn failed(head: LedgerHead, seq: u64, problem: String) -> LedgerCheck {
    LedgerCheck {
        valid: false,
        verified: head.seq,
        head,
        first_invalid_seq: Some(seq),
        problem: Some(problem),
    }
}

/// Why `c` is not the charge a known head says it is, if it is not.
fn differs(c: &ChargeRecord, booked: LedgerHead, anchor: Option<LedgerHead>) -> Option<String> {
    if booked.seq == c.seq && booked.hash != c.hash {
        return Some(format!(
            "charge {} is not the one the broker booked: its hash changed since",
            c.seq
        ));
    }
    if let Some(a) = anchor
        && a.seq == c.seq
        && a.hash != c.hash
    {
        return Some(format!(
            "charge {} is not the one your anchor names: its hash changed since it was saved",
            c.seq
        ));
    }
    None
}

/// Checks the stored chain from its first charge: every charge's hash must match its
/// fields and its predecessor's hash, and the chain must contain `booked` (the head the
/// tenant's actor knows) and `anchor` (a head one side saved earlier), if given.
pub fn verify_ledger(
    store: &dyn Store,
    tenant: &TenantId,
    booked: LedgerHead,
    anchor: Option<LedgerHead>,
) -> Result<LedgerCheck, StorageError> {
    let mut head = LedgerHead::default();
    loop {
        let page = store.charges(tenant, head.seq, PAGE)?;
        for c in &page {
            if c.seq != head.seq + 1 {
                let problem = format!(
                    "charge {} is missing (the next stored one is {})",
                    head.seq + 1,
                    c.seq
                );
                return Ok(failed(head, head.seq + 1, problem));
            }
            if verify_chain(tenant, head, std::slice::from_ref(c)).is_err() {
                let problem = if c.prev_hash != head.hash {
                    format!("charge {} does not link to charge {}", c.seq, head.seq)
                } else {
                    format!(
                        "charge {} does not match its hash: a field was changed",
                        c.seq
                    )
                };
                return Ok(failed(head, c.seq, problem));
            }
            if let Some(problem) = differs(c, booked, anchor) {
                return Ok(failed(head, c.seq, problem));
            }
            head = LedgerHead::after(c);
        }
        if page.len() < PAGE {
            break;
        }
    }
    for (what, point) in [
        ("broker has booked", Some(booked)),
        ("anchor names", anchor),
    ] {
        if let Some(p) = point
            && p.seq > head.seq
        {
            let problem = format!(
                "the ledger ends at charge {} but the {what} charge {}: charges are missing",
                head.seq, p.seq
            );
            return Ok(failed(head, head.seq + 1, problem));
        }
    }
    Ok(LedgerCheck {
        valid: true,
        verified: head.seq,
        head,
        first_invalid_seq: None,
        problem: None,
    })
}
