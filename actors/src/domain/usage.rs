//! The usage history: one event per seat change, persisted in the same atomic write as
//! the change, and the arithmetic that turns a window of it into report figures.
//!
//! The actor holds only the head of the history (sequence number and time); reports
//! read the events back from storage, so memory stays bounded however long the history
//! grows.
use permetrix_storage::records::{LeaseRecord, UsageKind, UsageRecord};
use permetrix_storage::{Money, TenantMutation, Timestamp};
use serde::Serialize;

use super::views::ser_money;

/// Where a tenant's usage history ends: the next event continues from here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageHead {
    /// Sequence number of the last event (0 = no history).
    pub seq: u64,
    /// Time of the last event.
    pub at: Timestamp,
}

impl UsageHead {
    /// The head after `event`.
    pub fn after(event: &UsageRecord) -> Self {
        UsageHead {
            seq: event.seq,
            at: event.at,
        }
    }

    /// Records one seat change: advances the head and returns the event to persist in
    /// the same batch as the lease change. Borrow, return and expiry all go through
    /// here, so the history misses no change.
    ///
    /// The event time never goes back (a wall clock stepped backwards is clamped to the
    /// previous event), so storage order, time order and sequence order agree.
    pub fn record(
        &mut self,
        kind: UsageKind,
        lease: &LeaseRecord,
        in_use: u32,
        amount: Money,
        now: Timestamp,
    ) -> TenantMutation {
        let event = UsageRecord {
            seq: self.seq + 1,
            at: now.max(self.at),
            product_id: lease.product_id.clone(),
            kind,
            borrow_id: lease.id,
            user: lease.user.clone(),
            is_overage: lease.is_overage,
            amount,
            in_use,
        };
        *self = UsageHead::after(&event);
        TenantMutation::AppendUsage(event)
    }
}

/// One pool's usage over a window `[from, to)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// Seats granted.
    pub borrows: u64,
    /// Seats returned by their holders.
    pub returns: u64,
    /// Leases that lapsed.
    pub expiries: u64,
    /// Seats granted beyond the commit (each booked one charge).
    pub overage_borrows: u64,
    /// Sum of the charges those borrows booked.
    #[serde(serialize_with = "ser_money")]
    pub overage_amount: Money,
    /// Most seats held at once: the seats in use when the window opens, or after any
    /// event inside it, whichever is highest.
    pub peak_concurrent: u32,
    /// Seats in use when the window opens.
    pub in_use_at_start: u32,
    /// Seats in use when the window closes.
    pub in_use_at_end: u32,
}

impl PoolUsage {
    /// A window that opens with `in_use` seats held (from the last event before it).
    pub fn opening_with(in_use: u32) -> Self {
        PoolUsage {
            peak_concurrent: in_use,
            in_use_at_start: in_use,
            in_use_at_end: in_use,
            ..PoolUsage::default()
        }
    }

    /// Adds one event of the window (events must come in history order).
    pub fn add(&mut self, event: &UsageRecord) {
        match event.kind {
            UsageKind::Borrow => {
                self.borrows += 1;
                if event.is_overage {
                    self.overage_borrows += 1;
                    self.overage_amount += event.amount;
                }
            }
            UsageKind::Return => self.returns += 1,
            UsageKind::Expire => self.expiries += 1,
        }
        self.peak_concurrent = self.peak_concurrent.max(event.in_use);
        self.in_use_at_end = event.in_use;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use permetrix_storage::BorrowId;

    fn lease(overage: bool) -> LeaseRecord {
        LeaseRecord {
            id: BorrowId::random(),
            product_id: "ecu".into(),
            user: "u".into(),
            borrowed_at: Timestamp::from_secs(1),
            lease_expires_at: Timestamp::from_secs(61),
            lease_seconds: 60,
            is_overage: overage,
            offline: false,
        }
    }

    fn event(m: TenantMutation) -> UsageRecord {
        match m {
            TenantMutation::AppendUsage(u) => u,
            other => panic!("not a usage event: {other:?}"),
        }
    }

    #[test]
    fn events_are_numbered_and_never_go_back_in_time() {
        let mut head = UsageHead::default();
        let t = Timestamp::from_secs;
        let a = event(head.record(UsageKind::Borrow, &lease(false), 1, Money::ZERO, t(10)));
        let b = event(head.record(UsageKind::Return, &lease(false), 0, Money::ZERO, t(5)));
        assert_eq!((a.seq, a.at), (1, t(10)));
        assert_eq!((b.seq, b.at), (2, t(10)));
        assert_eq!(head, UsageHead { seq: 2, at: t(10) });
    }

    #[test]
    fn a_window_counts_borrows_overage_and_peak() {
        let mut head = UsageHead::default();
        let t = Timestamp::from_secs(1);
        let price = Money::from_cents(500);
        let mut usage = PoolUsage::opening_with(2);
        for (kind, overage, in_use) in [
            (UsageKind::Borrow, true, 3),
            (UsageKind::Return, false, 2),
            (UsageKind::Borrow, true, 3),
            (UsageKind::Borrow, true, 4),
            (UsageKind::Expire, false, 3),
        ] {
            let amount = if overage { price } else { Money::ZERO };
            usage.add(&event(head.record(
                kind,
                &lease(overage),
                in_use,
                amount,
                t,
            )));
        }
        assert_eq!(
            usage,
            PoolUsage {
                borrows: 3,
                returns: 1,
                expiries: 1,
                overage_borrows: 3,
                overage_amount: Money::from_cents(1_500),
                peak_concurrent: 4,
                in_use_at_start: 2,
                in_use_at_end: 3,
            }
        );
    }

    #[test]
    fn a_quiet_window_reports_the_seats_held_throughout() {
        let usage = PoolUsage::opening_with(5);
        assert_eq!((usage.peak_concurrent, usage.borrows), (5, 0));
    }
}
