//! What an operation changed: the records to persist and the live events to publish
//! once they are durable.
use permetrix_storage::{BorrowId, TenantMutation, Timestamp};

use super::views::LeaseView;
use super::webhook_events::WebhookEvent;

/// What an operation changed: records to persist and events to publish once they are
/// durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// Records to write, atomically, before replying.
    pub mutations: Vec<TenantMutation>,
    /// Events for subscribers, published after the write is durable.
    pub events: Vec<TenantEvent>,
    /// Events for the vendor's webhooks, written to the outbox in the same write (if
    /// the vendor receives their type).
    pub webhooks: Vec<WebhookEvent>,
}

impl Effects {
    /// Records to write and nothing else.
    pub fn writes(mutations: Vec<TenantMutation>) -> Self {
        Effects {
            mutations,
            ..Effects::default()
        }
    }

    /// Adds `other`'s writes and events after this one's.
    pub fn merge(&mut self, other: Effects) {
        self.mutations.extend(other.mutations);
        self.events.extend(other.events);
        self.webhooks.extend(other.webhooks);
    }
}

/// Kinds of live events (`GET /events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantEventKind {
    /// A seat was granted.
    Borrow,
    /// A seat was returned.
    Return,
    /// A lease lapsed and its seat was freed.
    Expire,
    /// A borrow was refused.
    Denied,
    /// A borrow found no seat and waits in the pool's queue (it ends in a `Borrow`
    /// when granted, or a `Denied` when its wait runs out).
    Queued,
}

impl TenantEventKind {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantEventKind::Borrow => "borrow",
            TenantEventKind::Return => "return",
            TenantEventKind::Expire => "expire",
            TenantEventKind::Denied => "denied",
            TenantEventKind::Queued => "queued",
        }
    }
}

/// One live event of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEvent {
    /// What happened.
    pub kind: TenantEventKind,
    /// Borrow id (empty for a denied borrow).
    pub id: Option<BorrowId>,
    /// Tool (product) name, or the name asked for if unknown.
    pub tool: String,
    /// User.
    pub user: String,
    /// When.
    pub at: Timestamp,
    /// Why, for denials (an error code).
    pub reason: Option<&'static str>,
    /// Whether the seat is beyond the commit (borrow events).
    pub is_overage: bool,
}

/// The event of a lease changing hands.
pub(super) fn event(kind: TenantEventKind, lease: &LeaseView, at: Timestamp) -> TenantEvent {
    TenantEvent {
        kind,
        id: Some(lease.id),
        tool: lease.tool.clone(),
        user: lease.user.clone(),
        at,
        reason: None,
        is_overage: lease.is_overage,
    }
}
