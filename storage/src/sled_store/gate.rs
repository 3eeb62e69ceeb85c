//! The write gate: writers of different tenants must not share a lock, yet a snapshot
//! has to stop every writer for a moment. A fixed array of cache-line-padded stripes:
//! a writer takes its tenant's stripe shared, a snapshot takes all of them exclusively.
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Enough stripes that two busy tenants rarely share one on a many-core machine.
const STRIPES: usize = 64;

/// One stripe on its own cache line, so that writers on different stripes do not
/// bounce a line between cores.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(RwLock<()>);

pub(super) struct WriteGate {
    stripes: Box<[Stripe]>,
}

impl WriteGate {
    pub(super) fn new() -> Self {
        WriteGate {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        }
    }

    /// The stripe of `key` (a tenant id, or a platform table name), taken shared.
    pub(super) fn shared(&self, key: &[u8]) -> RwLockReadGuard<'_, ()> {
        // Fixed-key hasher: the stripe of a key only has to be stable within a process.
        let index = BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % STRIPES;
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.stripes[index]
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every stripe, taken exclusively in index order (so two snapshots cannot deadlock).
    pub(super) fn exclusive(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.stripes
            .iter()
            .map(|s| s.0.write().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_hold_excludes_every_writer_and_writers_do_not_exclude_each_other() {
        let gate = WriteGate::new();
        let a = gate.shared(b"acme");
        let b = gate.shared(b"globex");
        drop((a, b));
        let all = gate.exclusive();
        assert_eq!(all.len(), STRIPES);
        for key in [b"acme".as_slice(), b"globex", b"platform"] {
            let index =
                BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % STRIPES;
            assert!(gate.stripes[index].0.try_read().is_err(), "{key:?} got in");
        }
        drop(all);
        assert!(gate.stripes.iter().all(|s| s.0.try_read().is_ok()));
    }
}
