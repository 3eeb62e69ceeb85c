//! A fixed number of slots for expensive work (argon2), shared fairly between tenants.
//!
//! A plain semaphore serves waiters first come, first served, so one tenant that floods
//! it (creating users, failing logins) makes every other tenant's login wait behind its
//! whole queue. Here each waiter says whose work it is; a freed slot goes to the waiting
//! party that holds the fewest slots right now, ties in turn (round robin). A tenant
//! that holds every slot therefore waits for its next one until each other waiting
//! tenant has had one: nobody waits behind more than one piece of another tenant's
//! work per slot.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// The slots.
#[derive(Clone)]
pub struct FairSlots {
    inner: Arc<Mutex<State>>,
}

struct State {
    free: usize,
    /// Slots held, per party.
    running: HashMap<String, usize>,
    /// Waiters per party, oldest first.
    queues: HashMap<String, VecDeque<(u64, oneshot::Sender<Slot>)>>,
    /// Parties with waiters, in turn order.
    order: VecDeque<String>,
    next_id: u64,
}

/// A held slot, released when dropped.
pub struct Slot {
    inner: Arc<Mutex<State>>,
    party: String,
    /// False for a slot that was never handed over (its waiter had gone): dropping it
    /// releases nothing.
    armed: bool,
}

fn lock(inner: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every change keeps the state consistent before anything can panic.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn hold(&mut self, party: &str) {
        *self.running.entry(party.to_owned()).or_default() += 1;
    }

    fn unhold(&mut self, party: &str) {
        if let Some(n) = self.running.get_mut(party) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(party);
            }
        }
    }

    /// The next waiter to serve: of the parties with waiters, the one holding the
    /// fewest slots, the earliest in turn among equals; it goes to the back of the turn.
    fn next_waiter(&mut self) -> Option<(String, oneshot::Sender<Slot>)> {
        let held = |p: &String| self.running.get(p).copied().unwrap_or(0);
        let at = (0..self.order.len()).min_by_key(|&i| held(&self.order[i]))?;
        let party = self.order.remove(at)?;
        let queue = self.queues.get_mut(&party)?;
        let (_, sender) = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&party);
        } else {
            self.order.push_back(party.clone());
        }
        Some((party, sender))
    }

    fn forget_waiter(&mut self, party: &str, id: u64) {
        let Some(queue) = self.queues.get_mut(party) else {
            return;
        };
        queue.retain(|(i, _)| *i != id);
        if queue.is_empty() {
            self.queues.remove(party);
            self.order.retain(|p| p != party);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = lock(&self.inner);
        state.unhold(&self.party);
        while let Some((party, sender)) = state.next_waiter() {
            state.hold(&party);
            let slot = Slot {
                inner: Arc::clone(&self.inner),
                party: party.clone(),
                armed: true,
            };
            match sender.send(slot) {
                Ok(()) => return,
                // The waiter has gone: the slot goes to the next one.
                Err(mut unclaimed) => {
                    unclaimed.armed = false;
                    state.unhold(&party);
                }
            }
        }
        state.free += 1;
    }
}

/// A waiter that leaves the queue if it stops waiting (timed out, or its request was
/// dropped).
struct Waiting {
    inner: Arc<Mutex<State>>,
    party: String,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.inner).forget_waiter(&self.party, self.id);
    }
}

impl FairSlots {
    /// `slots` slots (at least one).
    pub fn new(slots: usize) -> Self {
        FairSlots {
            inner: Arc::new(Mutex::new(State {
                free: slots.max(1),
                running: HashMap::new(),
                queues: HashMap::new(),
                order: VecDeque::new(),
                next_id: 0,
            })),
        }
    }

    /// A slot for `party`'s work, waiting at most `patience`; `None` if none came.
    pub async fn acquire(&self, party: &str, patience: Duration) -> Option<Slot> {
        let (waiting, granted) = {
            let mut state = lock(&self.inner);
            // A free slot means nobody live is waiting (a freed slot goes to a waiter
            // first).
            if state.free > 0 {
                state.free -= 1;
                state.hold(party);
                return Some(Slot {
                    inner: Arc::clone(&self.inner),
                    party: party.to_owned(),
                    armed: true,
                });
            }
            let (sender, granted) = oneshot::channel();
            state.next_id += 1;
            let id = state.next_id;
            let queue = state.queues.entry(party.to_owned()).or_default();
            queue.push_back((id, sender));
            if queue.len() == 1 {
                state.order.push_back(party.to_owned());
            }
            let waiting = Waiting {
                inner: Arc::clone(&self.inner),
                party: party.to_owned(),
                id,
            };
            (waiting, granted)
        };
        let slot = tokio::time::timeout(patience, granted).await.ok()?.ok();
        drop(waiting);
        slot
    }

    /// Waiters now (all parties).
    pub fn waiting(&self) -> usize {
        lock(&self.inner).queues.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn another_partys_waiter_is_served_before_the_busy_partys_queue() {
        let slots = FairSlots::new(2);
        let a1 = slots.acquire("a", LONG).await.unwrap();
        let a2 = slots.acquire("a", LONG).await.unwrap();
        let mut queued = Vec::new();
        for _ in 0..3 {
            let s = slots.clone();
            queued.push(tokio::spawn(async move { s.acquire("a", LONG).await }));
        }
        tokio::task::yield_now().await;
        let s = slots.clone();
        let b = tokio::spawn(async move { s.acquire("b", LONG).await });
        tokio::task::yield_now().await;
        assert_eq!(slots.waiting(), 4);

        // One of a's slots frees: b, which holds none, gets it, not a's queue.
        drop(a1);
        let b = b.await.unwrap().unwrap();
        assert_eq!(b.party, "b");
        assert_eq!(slots.waiting(), 3);
        // Then a's queue, in order.
        drop(a2);
        drop(b);
        let first = queued.remove(0).await.unwrap().unwrap();
        let second = queued.remove(0).await.unwrap().unwrap();
        assert_eq!((first.party.as_str(), second.party.as_str()), ("a", "a"));
        assert_eq!(slots.waiting(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_leaves_gives_its_turn_away_and_nothing_leaks() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a", LONG).await.unwrap();
        // Times out while queued: leaves the queue.
        assert!(slots.acquire("b", Duration::from_secs(1)).await.is_none());
        assert_eq!(slots.waiting(), 0);
        // Dropped while queued (its request went away): leaves the queue too.
        let s = slots.clone();
        let gone = tokio::spawn(async move { s.acquire("c", LONG).await });
        tokio::task::yield_now().await;
        assert_eq!(slots.waiting(), 1);
        gone.abort();
        let _ = gone.await;
        assert_eq!(slots.waiting(), 0);
        drop(held);
        // The one slot is free again, exactly once.
        let again = slots.acquire("d", Duration::from_secs(1)).await.unwrap();
        assert!(slots.acquire("e", Duration::from_secs(1)).await.is_none());
        drop(again);
        assert!(slots.acquire("e", Duration::from_secs(1)).await.is_some());
    }
}
