//! The journal under a whole store: replay after a crash, a torn tail, damage.
use std::path::Path;

use super::journal::{FILE, RETIRED};
use super::*;
use crate::test_records::lease;

fn open(dir: &Path) -> Result<SledStore, StorageError> {
    SledStore::open(SledConfig::new(dir))
}

/// Opens a store just dropped: sled's last background writes may still hold its file
/// lock for a moment after the drop, so "in use" is waited out (bounded).
async fn reopen(dir: &Path) -> SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open(dir) {
            Err(StorageError::InUse(e)) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "waiting for the dropped store to let go");
                tokio::task::yield_now().await;
            }
            other => return other.unwrap(),
        }
    }
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// Journals three leases that sled never receives, acknowledges them, and "crashes"
/// (drops the store without a checkpoint). Returns the leases in order.
async fn journal_three(dir: &Path) -> Vec<crate::records::LeaseRecord> {
    let store = open(dir).unwrap();
    let leases = vec![lease("ecu"), lease("ecu"), lease("cad")];
    for l in &leases {
        store
            .journal_only(&acme(), &[TenantMutation::PutLease(l.clone())])
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    assert!(store.load_tenant(&acme()).unwrap().leases.is_empty());
    drop(store);
    leases
}

fn sorted(mut leases: Vec<crate::records::LeaseRecord>) -> Vec<crate::records::LeaseRecord> {
    leases.sort_by_key(|l| l.id);
    leases
}

/// Where the entries of a journal file start and end.
fn entry_bounds(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 12;
    let mut bounds = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        bounds.push((at, at + 8 + len));
        at += 8 + len;
    }
    bounds
}

#[tokio::test]
async fn acknowledged_writes_only_in_the_journal_are_replayed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let leases = journal_three(dir.path()).await;
    let store = reopen(dir.path()).await;
    assert_eq!(
        store.load_tenant(&acme()).unwrap().leases,
        sorted(leases.clone())
    );
    // Replaying again (a second crash before a checkpoint) changes nothing.
    drop(store);
    let store = reopen(dir.path()).await;
    assert_eq!(
        store.load_tenant(&acme()).unwrap().leases,
        sorted(leases.clone())
    );
    // A clean shutdown checkpoints: sled holds everything, the journal nothing.
    store.shutdown().unwrap();
    drop(store);
    let journal = std::fs::read(dir.path().join(FILE)).unwrap();
    assert_eq!(journal.len(), 12, "only the header is left");
    assert!(!dir.path().join(RETIRED).exists());
    let store = reopen(dir.path()).await;
    assert_eq!(store.load_tenant(&acme()).unwrap().leases, sorted(leases));
}

#[tokio::test]
async fn a_crash_between_rotation_and_checkpoint_replays_both_journals() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let (a, b) = (lease("ecu"), lease("ecu"));
    let put = |l: &crate::records::LeaseRecord| [TenantMutation::PutLease(l.clone())];
    store
        .journal_only(&acme(), &put(&a))
        .unwrap()
        .wait()
        .await
        .unwrap();
    store.sync.journal.rotate().unwrap();
    store
        .journal_only(&acme(), &put(&b))
        .unwrap()
        .wait()
        .await
        .unwrap();
    drop(store);
    assert!(dir.path().join(RETIRED).exists());
    let store = reopen(dir.path()).await;
    assert_eq!(
        store.load_tenant(&acme()).unwrap().leases,
        sorted(vec![a, b])
    );
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_off_and_every_whole_entry_kept() {
    let dir = tempfile::tempdir().unwrap();
    let leases = journal_three(dir.path()).await;
    let path = dir.path().join(FILE);
    let whole = std::fs::read(&path).unwrap();
    // A fourth entry that a crash interrupted: its length and half its bytes.
    let (start, end) = entry_bounds(&whole)[2];
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[start..start + (end - start) / 2]);
    std::fs::write(&path, &torn).unwrap();

    let store = reopen(dir.path()).await;
    assert_eq!(store.load_tenant(&acme()).unwrap().leases, sorted(leases));
    assert_eq!(std::fs::read(&path).unwrap(), whole, "the tail was cut off");
}

#[tokio::test]
async fn a_damaged_entry_followed_by_whole_ones_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    journal_three(dir.path()).await;
    let path = dir.path().join(FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let (second, _) = entry_bounds(&bytes)[1];
    bytes[second + 10] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let err = open(dir.path()).err().unwrap().to_string();
    assert!(err.contains(&format!("damaged at byte {second}")), "{err}");
    assert!(err.contains("Restore a backup"), "{err}");
}

/// sled writes its log out on its own, so after a crash it may hold a write that the
/// journal never made durable. Replaying an older entry must not undo part of it: here
/// a borrow's lease put back under the return that removed it.
#[tokio::test]
async fn replay_does_not_undo_a_later_write_that_only_sled_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = lease("ecu");
    for m in [
        TenantMutation::PutLease(a.clone()),
        TenantMutation::DeleteLease(a.id),
    ] {
        store
            .append(&acme(), Epoch::SOLE, &[m])
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    store.sync.sync_database().unwrap();
    drop(store);
    // The journal ends before the return, which only sled holds.
    let path = dir.path().join(FILE);
    let bytes = std::fs::read(&path).unwrap();
    let bounds = entry_bounds(&bytes);
    assert_eq!(bounds.len(), 2, "one entry per write");
    std::fs::write(&path, &bytes[..bounds[0].1]).unwrap();

    let store = reopen(dir.path()).await;
    assert!(
        store.load_tenant(&acme()).unwrap().leases.is_empty(),
        "the replayed borrow brought back a lease that sled had seen returned"
    );
    // And a write after the reopen is replayed again after the next crash.
    let b = lease("ecu");
    store
        .append(&acme(), Epoch::SOLE, &[TenantMutation::PutLease(b.clone())])
        .unwrap()
        .wait()
        .await
        .unwrap();
    drop(store);
    let store = reopen(dir.path()).await;
    assert_eq!(store.load_tenant(&acme()).unwrap().leases, vec![b]);
}

/// A write refused because the journal could not be written is in sled's memory; sled
/// flushes its memory when it is closed, so the store undoes such writes first.
#[tokio::test]
async fn writes_that_never_became_durable_are_undone_before_sled_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let (a, b) = (lease("ecu"), lease("ecu"));
    let put = |l: &crate::records::LeaseRecord| [TenantMutation::PutLease(l.clone())];
    store
        .append(&acme(), Epoch::SOLE, &put(&a))
        .unwrap()
        .wait()
        .await
        .unwrap();
    store.sync.journal.fail_writes();
    let refused = store.append(&acme(), Epoch::SOLE, &put(&b)).unwrap();
    assert!(refused.wait().await.is_err(), "the journal write failed");
    assert_eq!(
        store.load_tenant(&acme()).unwrap().leases,
        sorted(vec![a.clone(), b.clone()]),
        "sled's memory holds the refused write"
    );

    store.abandon();
    assert_eq!(store.load_tenant(&acme()).unwrap().leases, vec![a.clone()]);
    let after = store.append(&acme(), Epoch::SOLE, &put(&lease("ecu")));
    assert!(
        matches!(after, Err(StorageError::Unavailable(_))),
        "{after:?}"
    );
    drop(store);
    let store = reopen(dir.path()).await;
    assert_eq!(store.load_tenant(&acme()).unwrap().leases, vec![a]);
}
