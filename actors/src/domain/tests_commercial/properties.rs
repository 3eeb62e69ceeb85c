//! Property test of the commercial invariants under arbitrary interleavings.
use super::*;
use crate::domain::tests::proptest_config;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Borrow,
    Return(usize),
    Restrict(Option<u32>),
    Cap(Option<i64>),
    VendorTotal(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Borrow),
        2 => (0usize..16).prop_map(Op::Return),
        1 => proptest::option::of(0u32..12).prop_map(Op::Restrict),
        1 => proptest::option::of(0i64..4_000).prop_map(Op::Cap),
        1 => (2u32..12).prop_map(Op::VendorTotal),
    ]
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Whatever customers and vendors change in between: a borrow is granted only
    /// within the limits in force, a booked charge never takes the month's spend
    /// above the cap set at that moment, the spend is the sum of the charges, no
    /// seat is ever taken away, and every seat change writes one usage event.
    #[test]
    fn limits_caps_and_usage_hold(ops in proptest::collection::vec(op(), 0..80)) {
        let mut t = tenant(2, 8, 500);
        let mut held: Vec<permetrix_storage::BorrowId> = Vec::new();
        let mut charged = 0i64;
        let mut changes = 0u64;
        for op in ops {
            match op {
                Op::Borrow => {
                    let before = t.pool("ecu").unwrap().borrowed();
                    let limits = t.pool("ecu").unwrap().limits();
                    let cap = t.pool("ecu").unwrap().restriction().max_spend;
                    match borrow(&mut t, "u") {
                        Ok(g) => {
                            prop_assert!(before < limits.total);
                            held.push(g.lease.id);
                            changes += 1;
                            if let Some(c) = g.charge {
                                charged += c.amount.cents();
                                if let Some(cap) = cap {
                                    prop_assert!(charged <= cap.cents());
                                }
                            }
                        }
                        Err(DomainError::SpendCapReached { .. }) => {
                            prop_assert!(cap.is_some_and(|c| charged + 500 > c.cents()));
                        }
                        Err(_) => prop_assert!(before >= limits.total),
                    }
                }
                Op::Return(i) if !held.is_empty() => {
                    let id = held.remove(i % held.len());
                    t.return_lease(id, NOW).unwrap();
                    changes += 1;
                }
                Op::Return(_) => {}
                Op::Restrict(total) => {
                    let change = total.map_or(Change::Clear, Change::Set);
                    let vendor_total = t.pool("ecu").unwrap().package().total;
                    let r = t.restrict("ecu", restrict(change, Change::Keep), NOW);
                    prop_assert_eq!(r.is_ok(), total.is_none_or(|n| n <= vendor_total));
                }
                Op::Cap(cents) => {
                    // A cap below this month's spend is allowed: it refuses every
                    // further overage borrow this month.
                    t.protect("ecu", cents.map(Money::from_cents), NOW).unwrap();
                }
                Op::VendorTotal(total) => {
                    let patch = PackagePatch { total: Some(seats(total)), ..PackagePatch::default() };
                    t.update_package("pkg-ecu", "vector", patch).unwrap();
                }
            }
            let pool = t.pool("ecu").unwrap();
            prop_assert_eq!(pool.borrowed() as usize, held.len(), "no seat taken away");
            prop_assert!(pool.limits().total <= pool.package().total);
            prop_assert_eq!(pool.month_spend(NOW).0.cents(), charged);
            prop_assert_eq!(t.usage_head().seq, changes);
        }
    }
}
