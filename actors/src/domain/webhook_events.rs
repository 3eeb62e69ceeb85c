//! The events a vendor's systems receive by webhook: their types, the set of types a
//! vendor subscribes to, and each type's `data` object.
//!
//! An operation that causes an event returns it in its [`Effects`](super::Effects); the
//! actor stores it in the tenant's outbox, in the same write as the change, only if the
//! tenant's vendor receives its type. Its JSON is built then, so an event nobody wants
//! costs no serialisation.
use permetrix_storage::Timestamp;
use permetrix_storage::records::{ChargeRecord, MoreRequestRecord};
use serde_json::{Value, json};

use super::calendar::month_of;
use super::pool::Pool;
use super::views::rfc3339;

/// A webhook event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookEventKind {
    /// Borrows of a tool were refused (coalesced per tool and reason, see
    /// [`DenialSummary`]).
    BorrowDenied,
    /// An overage borrow booked a charge.
    OverageCharged,
    /// A borrow took the last seat of a pool.
    PoolExhausted,
    /// A charge (or a lowered cap) left a pool's monthly spend cap no room for another
    /// overage borrow.
    SpendCapReached,
    /// A customer asked for more seats.
    RequestCreated,
    /// A tenant was quarantined after restarting again and again (emitted by the
    /// crash-loop quarantine through [`TenantCx::emit`](crate::TenantCx::emit)).
    TenantQuarantined,
}

impl WebhookEventKind {
    /// Every type, in the order the API lists them.
    pub const ALL: [WebhookEventKind; 6] = [
        WebhookEventKind::BorrowDenied,
        WebhookEventKind::OverageCharged,
        WebhookEventKind::PoolExhausted,
        WebhookEventKind::SpendCapReached,
        WebhookEventKind::RequestCreated,
        WebhookEventKind::TenantQuarantined,
    ];

    /// The type's name (`type` of a delivery).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventKind::BorrowDenied => "borrow.denied",
            WebhookEventKind::OverageCharged => "overage.charged",
            WebhookEventKind::PoolExhausted => "pool.exhausted",
            WebhookEventKind::SpendCapReached => "spend_cap.reached",
            WebhookEventKind::RequestCreated => "request.created",
            WebhookEventKind::TenantQuarantined => "tenant.quarantined",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of event types (what a vendor's endpoints receive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventMask(u8);

impl EventMask {
    /// No type.
    pub const NONE: EventMask = EventMask(0);

    /// The set of `kinds`.
    pub fn of(kinds: impl IntoIterator<Item = WebhookEventKind>) -> Self {
        EventMask(kinds.into_iter().fold(0, |bits, k| bits | k.bit()))
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: WebhookEventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Both sets.
    pub fn union(self, other: EventMask) -> Self {
        EventMask(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as bits (to keep in an atomic).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set of [`EventMask::bits`].
    pub fn from_bits(bits: u8) -> Self {
        EventMask(bits)
    }
}

/// Refusals of one tool for one reason within one window (one second from the first):
/// what a `borrow.denied` event reports, so that a flood of refusals is one event per
/// tool and reason per second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialSummary {
    /// Tool (product) name.
    pub tool: String,
    /// Product id.
    pub product_id: String,
    /// The refusal's error code (`no_seats`, `spend_cap_reached`, …).
    pub reason: &'static str,
    /// Refusals in the window.
    pub count: u64,
    /// The first refusal.
    pub first_at: Timestamp,
    /// The last refusal.
    pub last_at: Timestamp,
    /// The users refused, first ones first (at most [`DenialSummary::MAX_USERS`]).
    pub users: Vec<String>,
}

impl DenialSummary {
    /// Users named in one event.
    pub const MAX_USERS: usize = 10;
}

/// A tenant quarantined by the crash-loop guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantine {
    /// Restarts that led to it.
    pub restarts: u32,
    /// Why, in words.
    pub reason: String,
    /// Until when requests are refused, if the quarantine ends by itself.
    pub until: Option<Timestamp>,
}

/// One webhook event, as an operation returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookEvent {
    /// `borrow.denied`.
    BorrowDenied(DenialSummary),
    /// `overage.charged`: the charge booked.
    OverageCharged(Box<ChargeRecord>),
    /// `pool.exhausted`: the pool right after its last seat was taken.
    PoolExhausted {
        /// Tool (product) name.
        tool: String,
        /// Product id.
        product_id: String,
        /// Seats in use (= the limit in force).
        borrowed: u32,
        /// The limit in force.
        total: u32,
        /// Prepaid seats.
        commit_qty: u32,
    },
    /// `spend_cap.reached`.
    SpendCapReached {
        /// Tool (product) name.
        tool: String,
        /// Product id.
        product_id: String,
        /// The monthly cap.
        max_spend: permetrix_storage::Money,
        /// Overage cost this month.
        spent: permetrix_storage::Money,
        /// Price of the next overage borrow (which the cap refuses).
        overage_price: permetrix_storage::Money,
        /// When (its UTC month is the month capped).
        at: Timestamp,
    },
    /// `request.created`: the request as filed.
    RequestCreated(Box<MoreRequestRecord>),
    /// `tenant.quarantined`.
    TenantQuarantined(Quarantine),
}

impl WebhookEvent {
    /// The event's type.
    pub fn kind(&self) -> WebhookEventKind {
        match self {
            WebhookEvent::BorrowDenied(_) => WebhookEventKind::BorrowDenied,
            WebhookEvent::OverageCharged(_) => WebhookEventKind::OverageCharged,
            WebhookEvent::PoolExhausted { .. } => WebhookEventKind::PoolExhausted,
            WebhookEvent::SpendCapReached { .. } => WebhookEventKind::SpendCapReached,
            WebhookEvent::RequestCreated(_) => WebhookEventKind::RequestCreated,
            WebhookEvent::TenantQuarantined(_) => WebhookEventKind::TenantQuarantined,
        }
    }

    /// The pool as it is now, if its last seat is taken.
    pub(super) fn exhausted(pool: &Pool) -> Option<Self> {
        let limits = pool.limits();
        (pool.borrowed >= limits.total).then(|| WebhookEvent::PoolExhausted {
            tool: pool.name().to_owned(),
            product_id: pool.product_id().to_owned(),
            borrowed: pool.borrowed,
            total: limits.total,
            commit_qty: limits.commit,
        })
    }

    /// The pool's spend cap, if it leaves no room for another overage borrow at `now`.
    pub(super) fn cap_reached(pool: &Pool, now: Timestamp) -> Option<Self> {
        let cap = pool.restriction.max_spend?;
        let price = pool.package.overage_price;
        let (spent, _) = pool.month_spend(now);
        (spent.saturating_add(price) > cap).then(|| WebhookEvent::SpendCapReached {
            tool: pool.name().to_owned(),
            product_id: pool.product_id().to_owned(),
            max_spend: cap,
            spent,
            overage_price: price,
            at: now,
        })
    }

    /// The `data` object, as compact JSON.
    pub fn data_json(&self) -> String {
        self.data().to_string()
    }

    fn data(&self) -> Value {
        match self {
            WebhookEvent::BorrowDenied(d) => json!({
                "tool": d.tool,
                "product_id": d.product_id,
                "reason": d.reason,
                "count": d.count,
                "first_at": rfc3339(d.first_at),
                "last_at": rfc3339(d.last_at),
                "users": d.users,
            }),
            WebhookEvent::OverageCharged(c) => json!({
                "charge_id": c.id,
                "ledger_seq": c.seq,
                "tool": c.product_name,
                "product_id": c.product_id,
                "borrow_id": c.borrow_id.to_string(),
                "user": c.user,
                "charged_at": rfc3339(c.charged_at),
                "amount": c.amount.as_decimal(),
                "amount_cents": c.amount.cents(),
                "hash": hex(&c.hash),
            }),
            WebhookEvent::PoolExhausted {
                tool,
                product_id,
                borrowed,
                total,
                commit_qty,
            } => json!({
                "tool": tool,
                "product_id": product_id,
                "borrowed": borrowed,
                "total": total,
                "commit_qty": commit_qty,
            }),
            WebhookEvent::SpendCapReached {
                tool,
                product_id,
                max_spend,
                spent,
                overage_price,
                at,
            } => {
                let month = month_of(*at);
                json!({
                    "tool": tool,
                    "product_id": product_id,
                    "month": format!("{:04}-{:02}", month / 100, month % 100),
                    "max_spend": max_spend.as_decimal(),
                    "month_to_date_overage_cost": spent.as_decimal(),
                    "overage_price_per_license": overage_price.as_decimal(),
                })
            }
            WebhookEvent::RequestCreated(r) => json!({
                "request_id": r.id,
                "tool": r.product_name,
                "product_id": r.product_id,
                "package_id": r.package_id,
                "requested_total": r.requested_total,
                "requested_overage": r.requested_overage,
                "message": r.message,
                "limits_before": {
                    "total": r.limits_before.0,
                    "commit_qty": r.limits_before.1,
                    "max_overage": r.limits_before.2,
                },
                "created_at": rfc3339(r.created_at),
            }),
            WebhookEvent::TenantQuarantined(q) => json!({
                "restarts": q.restarts,
                "reason": q.reason,
                "until": q.until.map(rfc3339),
            }),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_name_and_one_bit() {
        let mask = EventMask::of(WebhookEventKind::ALL);
        for kind in WebhookEventKind::ALL {
            assert_eq!(WebhookEventKind::parse(kind.as_str()), Some(kind));
            assert!(mask.contains(kind));
            assert!(
                EventMask::of([kind])
                    .union(EventMask::NONE)
                    .bits()
                    .is_power_of_two()
            );
        }
        assert_eq!(mask.bits().count_ones(), 6);
        assert_eq!(WebhookEventKind::parse("borrow.granted"), None);
        let one = EventMask::of([WebhookEventKind::PoolExhausted]);
        assert!(!one.contains(WebhookEventKind::OverageCharged));
        assert_eq!(EventMask::from_bits(one.bits()), one);
    }

    #[test]
    fn a_quarantine_event_says_until_when() {
        let event = WebhookEvent::TenantQuarantined(Quarantine {
            restarts: 5,
            reason: "panicked 5 times in 60 s".into(),
            until: Some(Timestamp::from_secs(0)),
        });
        assert_eq!(event.kind(), WebhookEventKind::TenantQuarantined);
        assert_eq!(
            event.data_json(),
            r#"{"reason":"panicked 5 times in 60 s","restarts":5,"until":"1970-01-01T00:00:00.000+00:00"}"#
        );
    }
}
