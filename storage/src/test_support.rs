//! Test-only helpers (cargo feature `test-support`, enabled by the test suites only): a
//! real PostgreSQL server to test against ([`postgres`]), and access to stored records
//! that rewrites them in place, as someone with write access to the data directory
//! could, so that tests can prove such changes are detected. No production code path
//! can reach them.
use crate::codec;
use crate::keys;
use crate::records::ChargeRecord;
use crate::{SledStore, StorageError, TenantId};

pub mod postgres;

/// Rewrites the stored charge `seq` of `tenant` with `change` applied, bypassing the
/// append-only rule. Returns false if there is no such charge.
pub fn rewrite_charge(
    store: &SledStore,
    tenant: &TenantId,
    seq: u64,
    change: impl FnOnce(&mut ChargeRecord),
) -> Result<bool, StorageError> {
    let tree = store.tenant_tree();
    let key = keys::charge(tenant, seq);
    let Some(bytes) = tree
        .get(&key)
        .map_err(|e| StorageError::io("reading a charge to rewrite", e))?
    else {
        return Ok(false);
    };
    let mut charge: ChargeRecord = codec::decode(&bytes)?;
    change(&mut charge);
    tree.insert(key, codec::encode(&charge))
        .map_err(|e| StorageError::io("rewriting a charge", e))?;
    tree.flush()
        .map_err(|e| StorageError::io("flushing a rewritten charge", e))?;
    Ok(true)
}
