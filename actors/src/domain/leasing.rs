//! Seats changing hands: borrow, return, heartbeat and expiry of leases.
use permetrix_storage::records::{LeaseRecord, UsageKind};
use permetrix_storage::{BorrowId, Money, TenantMutation, Timestamp};

use super::DomainError;
use super::borrow::{BorrowRequest, Grant, Returned};
use super::effects::{Effects, TenantEventKind, event};
use super::input::LeaseSeconds;
use super::ledger::LedgerHead;
use super::state::{TenantState, lease_view, lease_view_orphan};
use super::views::LeaseView;
use super::webhook_events::WebhookEvent;

impl TenantState {
    /// Checks whether `req` could be granted now, without changing anything.
    pub fn check_borrow(&self, req: &BorrowRequest, now: Timestamp) -> Result<usize, DomainError> {
        let index = self.pool_index(req.tool.as_str())?;
        let pool = &self.pools[index];
        let tool = pool.name();
        if let Some(why) = pool.inactive_reason(now) {
            return Err(DomainError::PackageInactive {
                tool: tool.to_owned(),
                why,
            });
        }
        if let Some(refusal) = req
            .offline
            .as_ref()
            .and_then(|o| pool.offline_refusal(o.hours))
        {
            return Err(refusal);
        }
        if let Some(max) = pool.restriction.max_per_user
            && pool.held_by(req.user.as_str()) >= max
        {
            return Err(DomainError::UserLimitReached {
                tool: tool.to_owned(),
                user: req.user.as_str().to_owned(),
                max,
            });
        }
        let limits = pool.limits();
        if pool.borrowed >= limits.total {
            return Err(
                if limits.max_overage > 0 && pool.borrowed >= limits.commit {
                    DomainError::MaxOverageReached {
                        tool: tool.to_owned(),
                        limit: limits.total,
                        max_overage: limits.max_overage,
                    }
                } else {
                    DomainError::NoSeats {
                        tool: tool.to_owned(),
                        limit: limits.total,
                    }
                },
            );
        }
        if pool.borrowed >= limits.commit
            && let Some(cap) = pool.restriction.max_spend
        {
            let (spent, _) = pool.month_spend(now);
            let price = pool.package.overage_price;
            if spent.saturating_add(price) > cap {
                return Err(DomainError::SpendCapReached {
                    tool: tool.to_owned(),
                    price,
                    spent,
                    cap,
                });
            }
        }
        Ok(index)
    }

    /// Grants a seat, or says why not. An overage borrow books its charge in the same
    /// effects as the lease, so the two are durable together. An offline checkout is a
    /// lease of its `offline_hours`.
    pub fn borrow(
        &mut self,
        req: &BorrowRequest,
        now: Timestamp,
    ) -> Result<(Grant, Effects), DomainError> {
        let (length, seconds) = match &req.offline {
            Some(o) => (o.hours.as_duration(), o.hours.seconds()),
            None => {
                let secs = req
                    .lease_seconds
                    .unwrap_or(LeaseSeconds::stored(self.settings.default_lease_seconds));
                (secs.as_duration(), secs.get())
            }
        };
        let index = self.check_borrow(req, now)?;
        let pool = &mut self.pools[index];
        let is_overage = pool.borrowed >= pool.package.commit_qty;
        let lease = LeaseRecord {
            id: BorrowId::random(),
            product_id: pool.package.product_id.clone(),
            user: req.user.as_str().to_owned(),
            borrowed_at: now,
            lease_expires_at: now.plus(length),
            lease_seconds: seconds,
            is_overage,
            offline: req.offline.is_some(),
        };
        pool.take_seat(&lease);
        let view = lease_view(pool, &lease);
        let mut effects = Effects::default();
        let amount = if is_overage {
            pool.package.overage_price
        } else {
            Money::ZERO
        };
        effects.mutations.push(self.usage.record(
            UsageKind::Borrow,
            &lease,
            pool.borrowed,
            amount,
            now,
        ));
        let mut charge = None;
        if is_overage {
            let amount = pool.package.overage_price;
            let record = self.ledger.next_charge(
                &self.tenant,
                &pool.package.product_id,
                &pool.package.product_name,
                lease.id,
                &lease.user,
                now,
                amount,
            );
            self.ledger = LedgerHead::after(&record);
            let spend = pool.book(amount, now);
            effects
                .mutations
                .push(TenantMutation::AppendCharge(record.clone()));
            effects.mutations.push(TenantMutation::PutSpend(spend));
            effects
                .webhooks
                .push(WebhookEvent::OverageCharged(Box::new(record.clone())));
            // This borrow fitted under the cap; if the next one would not, it was
            // reached now.
            effects
                .webhooks
                .extend(WebhookEvent::cap_reached(pool, now));
            charge = Some(record);
        }
        // This borrow found a seat; if none is left, it took the last one.
        effects.webhooks.extend(WebhookEvent::exhausted(pool));
        effects
            .mutations
            .push(TenantMutation::PutLease(lease.clone()));
        if let Some(nonce) = &req.nonce {
            // First: written before the lease, so that no crash can keep a grant whose
            // nonce is forgotten.
            effects.mutations.insert(0, self.nonces.store(nonce));
        }
        effects
            .events
            .push(event(TenantEventKind::Borrow, &view, now));
        self.expiry.insert(lease.lease_expires_at, lease.id);
        self.leases.insert(lease.id, lease);
        Ok((
            Grant {
                lease: view,
                charge,
            },
            effects,
        ))
    }

    /// Returns a seat.
    pub fn return_lease(
        &mut self,
        id: BorrowId,
        now: Timestamp,
    ) -> Result<(Returned, Effects), DomainError> {
        let (view, effects) = self.release(id, TenantEventKind::Return, now)?;
        Ok((Returned { lease: view }, effects))
    }

    pub(super) fn release(
        &mut self,
        id: BorrowId,
        kind: TenantEventKind,
        now: Timestamp,
    ) -> Result<(LeaseView, Effects), DomainError> {
        let lease = self.leases.remove(&id).ok_or_else(|| self.gone(&id))?;
        self.expiry.remove(lease.lease_expires_at, id);
        let (view, in_use) = match self.pool_by_id_mut(&lease.product_id) {
            Some(pool) => {
                pool.free_seat(&lease);
                (lease_view(pool, &lease), pool.borrowed)
            }
            None => (lease_view_orphan(&lease), 0),
        };
        let usage_kind = match kind {
            TenantEventKind::Expire => UsageKind::Expire,
            _ => UsageKind::Return,
        };
        let usage = self
            .usage
            .record(usage_kind, &lease, in_use, Money::ZERO, now);
        let effects = Effects {
            mutations: vec![TenantMutation::DeleteLease(id), usage],
            events: vec![event(kind, &view, now)],
            webhooks: Vec::new(),
        };
        Ok((view, effects))
    }

    /// Extends a lease by its lease length from `now`. An offline checkout keeps its
    /// end: the heartbeat answers it unchanged and writes nothing, so that a client
    /// which heartbeats every seat it holds does not take the seat for lost.
    pub fn heartbeat(
        &mut self,
        id: BorrowId,
        now: Timestamp,
    ) -> Result<(LeaseView, Effects), DomainError> {
        let Some(lease) = self.leases.get_mut(&id) else {
            return Err(self.gone(&id));
        };
        if lease.offline {
            let lease = lease.clone();
            return Ok((self.view_of(&lease), Effects::default()));
        }
        let before = lease.lease_expires_at;
        lease.lease_expires_at = now.plus(std::time::Duration::from_secs(u64::from(
            lease.lease_seconds,
        )));
        let lease = lease.clone();
        self.expiry.remove(before, id);
        self.expiry.insert(lease.lease_expires_at, id);
        let view = self.view_of(&lease);
        Ok((view, Effects::writes(vec![TenantMutation::PutLease(lease)])))
    }

    /// Frees every lease whose expiry is at or before `now` (each with an `expire`
    /// event), and forgets expired leases older than
    /// [`EXPIRED_MEMORY`](super::EXPIRED_MEMORY).
    pub fn expire(&mut self, now: Timestamp) -> Effects {
        let mut effects = Effects::default();
        for id in self.expiry.due(now) {
            let expires_at = self.leases.get(&id).map(|l| l.lease_expires_at);
            if let Ok((_, e)) = self.release(id, TenantEventKind::Expire, now) {
                effects.merge(e);
                self.expired.remember(id, expires_at.unwrap_or(now));
            }
        }
        self.expired.forget_old(now);
        effects
    }

    /// The earliest lease expiry, if any lease is active.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.expiry.next()
    }

    /// The error for a borrow id that names no active lease: `LeaseExpired` if it
    /// expired recently, else `UnknownBorrow`.
    pub(crate) fn gone(&self, id: &BorrowId) -> DomainError {
        match self.expired.get(id) {
            Some(at) => DomainError::LeaseExpired { expired_at: at },
            None => DomainError::UnknownBorrow,
        }
    }

    /// Number of leases in the expiry index (equals the active leases).
    pub fn indexed_leases(&self) -> usize {
        self.expiry.len()
    }
}
