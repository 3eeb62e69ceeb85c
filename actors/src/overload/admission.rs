//! Admission to a tenant's mailbox: a semaphore whose permit travels with the message.
//!
//! actix's own mailbox capacity cannot be the bound: it counts per sender (every
//! cloned address is a new one) and its queue length cannot be read. A permit is taken
//! without waiting when a message is sent and released when the actor picks the
//! message up, so permits in use are exactly the messages waiting in the mailbox.
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A message's place in its tenant's mailbox; dropped when the actor picks it up.
pub(crate) type Permit = OwnedSemaphorePermit;

/// One tenant's mailbox bound.
pub(crate) struct Admission {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Admission {
    /// A mailbox that admits `capacity` messages at once.
    pub(crate) fn new(capacity: usize) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A place in the mailbox, or `None` when it is full (the caller refuses the
    /// request: it is never queued outside the mailbox).
    pub(crate) fn try_admit(&self) -> Option<Permit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Messages admitted and not yet picked up.
    pub(crate) fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }

    /// The bound.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_mailbox_refuses_and_permits_in_use_are_its_depth() {
        let admission = Admission::new(2);
        let first = admission.try_admit().unwrap();
        let second = admission.try_admit().unwrap();
        assert_eq!(admission.depth(), 2);
        assert!(admission.try_admit().is_none());
        drop(first);
        assert_eq!(admission.depth(), 1);
        assert!(admission.try_admit().is_some());
        drop(second);
        assert_eq!((admission.depth(), admission.capacity()), (0, 2));
    }
}
