//! The ends of the stored outbox: the sequence numbers it spans and the refusal windows
//! still open. Apart from the tenant's verbs so that the state can hold it.
use permetrix_storage::records::OutboxRecord;
use permetrix_storage::{TenantMutation, Timestamp};

use crate::domain::webhook_events::{DenialSummary, EventMask, WebhookEvent};

/// Delivered events deleted with one write at most (the rest go with the next ones).
const TRIM_BATCH: u64 = 64;

/// What the actor knows about delivery when it writes outbox events.
#[derive(Clone, Copy, Debug)]
pub struct OutboxPolicy {
    /// The event types the tenant's vendor receives now; others are not stored.
    pub wanted: EventMask,
    /// Every endpoint that wants them has the events up to this sequence number.
    pub delivered_through: u64,
    /// The most events kept; beyond, the oldest are dropped, delivered or not.
    pub capacity: u64,
}

/// What [`Outbox::stage`] added to a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Staged {
    /// The sequence number of the newest event written, if any was.
    pub head: Option<u64>,
    /// Events dropped undelivered because the outbox was full.
    pub dropped: u64,
}

/// The ends of the stored outbox and the refusals not written yet.
#[derive(Clone, Debug)]
pub(in crate::domain) struct Outbox {
    /// The sequence number of the next event.
    pub(super) next_seq: u64,
    /// The oldest event stored (`next_seq` when none is).
    pub(super) oldest: u64,
    /// Open windows of refusals, one per pool and reason.
    pub(super) denials: Vec<(DenialSummary, Timestamp)>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            next_seq: 1,
            oldest: 1,
            denials: Vec::new(),
        }
    }
}

impl Outbox {
    /// The outbox as stored: its newest event (the sequence continues from it) and
    /// its oldest.
    pub(in crate::domain) fn stored(head: Option<&OutboxRecord>, oldest: Option<u64>) -> Self {
        let next_seq = head.map_or(1, |h| h.seq + 1);
        Outbox {
            next_seq,
            oldest: oldest.unwrap_or(next_seq).min(next_seq),
            denials: Vec::new(),
        }
    }

    /// When the first open window of refusals closes.
    pub(in crate::domain) fn next_flush(&self) -> Option<Timestamp> {
        self.denials.iter().map(|(_, closes)| *closes).min()
    }

    /// The windows closed by `now`, as events.
    pub(super) fn take_closed(&mut self, now: Timestamp) -> Vec<WebhookEvent> {
        let mut closed = Vec::new();
        self.denials.retain(|(summary, closes)| {
            if *closes <= now {
                closed.push(WebhookEvent::BorrowDenied(summary.clone()));
                false
            } else {
                true
            }
        });
        closed
    }

    /// Numbers the wanted `events` in order and adds them to `mutations`, then deletes
    /// what `policy` says may go. Events of types nobody wants are not stored and take
    /// no number.
    pub(in crate::domain) fn stage(
        &mut self,
        events: Vec<WebhookEvent>,
        mutations: &mut Vec<TenantMutation>,
        policy: &OutboxPolicy,
        now: Timestamp,
    ) -> Staged {
        let mut staged = Staged::default();
        for event in events
            .into_iter()
            .filter(|e| policy.wanted.contains(e.kind()))
        {
            let seq = self.next_seq;
            self.next_seq += 1;
            mutations.push(TenantMutation::AppendOutbox(OutboxRecord {
                seq,
                id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
                kind: event.kind().as_str().to_owned(),
                created_at: now,
                data: event.data_json(),
            }));
            staged.head = Some(seq);
        }
        if staged.head.is_some() {
            staged.dropped = self.trim(mutations, policy.delivered_through, policy.capacity);
        }
        staged
    }

    /// Deletes events every endpoint has (through `delivered_through`; a batch at most) and, beyond `capacity`, the oldest
    /// ones; never the newest, whose number the sequence continues from. Returns the
    /// events dropped undelivered.
    fn trim(
        &mut self,
        mutations: &mut Vec<TenantMutation>,
        delivered_through: u64,
        capacity: u64,
    ) -> u64 {
        let newest = self.next_seq - 1;
        let delivered = delivered_through.min(newest.saturating_sub(1));
        let mut deleted = 0;
        while self.oldest <= delivered && deleted < TRIM_BATCH {
            mutations.push(TenantMutation::DeleteOutbox(self.oldest));
            self.oldest += 1;
            deleted += 1;
        }
        let mut dropped = 0;
        while self.next_seq - self.oldest > capacity.max(1) {
            mutations.push(TenantMutation::DeleteOutbox(self.oldest));
            if self.oldest > delivered_through {
                dropped += 1;
            }
            self.oldest += 1;
        }
        dropped
    }
}
