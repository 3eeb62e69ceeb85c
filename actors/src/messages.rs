//! The verbs a tenant actor understands. Each is a message with a typed reply; its
//! handler applies a domain operation, persists the effects and replies once they are
//! durable (see [`TenantMessage`] and [`Reply`]).
use permetrix_storage::BorrowId;
use permetrix_storage::records::{PackageRecord, SettingsRecord};

use crate::domain::{
    LeaseView, ProvisionRequest, SettingsPatch, TenantSnapshot, ToolStatus, UserName,
};
use crate::handling::{TenantCx, TenantMessage};
use crate::reply::Reply;

mod borrow;
mod commercial;
mod leases;
mod limits;

pub use borrow::{
    Borrow, BorrowOutcome, QueueListing, QueueOf, QueuedBorrow, Return, ReturnOutcome,
};
pub use commercial::{
    DecideRequest, GetBudget, GetLedgerHead, RequestMore, Restrict, SetSpendCap, UpdatePackage,
};
pub use leases::{DueReport, ExpireDue};
pub use limits::{GetUserLimits, SetUserLimit};

/// Extend a lease.
#[derive(Debug)]
pub struct Heartbeat(pub BorrowId);

impl TenantMessage for Heartbeat {
    type Reply = LeaseView;
    const KIND: &'static str = "heartbeat";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<LeaseView> {
        let now = cx.now;
        match cx.state.heartbeat(self.0, now) {
            Ok((view, effects)) => cx.commit(effects, view),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Status of one tool (`Some`, a tool name or product id) or all tools.
#[derive(Debug)]
pub struct Status(pub Option<String>);

impl TenantMessage for Status {
    type Reply = Vec<ToolStatus>;
    const KIND: &'static str = "status";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<ToolStatus>> {
        cx.state.status(self.0.as_deref(), cx.now).into()
    }
}

/// Active borrows, newest first, optionally of one user.
#[derive(Debug)]
pub struct ListBorrows(pub Option<UserName>);

impl TenantMessage for ListBorrows {
    type Reply = Vec<LeaseView>;
    const KIND: &'static str = "list_borrows";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<LeaseView>> {
        Reply::ready(Ok(cx.state.borrows(self.0.as_ref().map(UserName::as_str))))
    }
}

/// Create a pool from a vendor's package.
#[derive(Debug)]
pub struct Provision(pub ProvisionRequest);

impl TenantMessage for Provision {
    type Reply = PackageRecord;
    const KIND: &'static str = "provision";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<PackageRecord> {
        match cx.state.provision(self.0) {
            Ok((package, effects)) => {
                cx.view_changed();
                cx.commit(effects, package)
            }
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Read settings.
#[derive(Debug)]
pub struct GetSettings;

impl TenantMessage for GetSettings {
    type Reply = SettingsRecord;
    const KIND: &'static str = "get_settings";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<SettingsRecord> {
        Reply::ready(Ok(cx.state.settings().clone()))
    }
}

/// Change settings.
#[derive(Debug)]
pub struct UpdateSettings(pub SettingsPatch);

impl TenantMessage for UpdateSettings {
    type Reply = SettingsRecord;
    const KIND: &'static str = "update_settings";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<SettingsRecord> {
        let (settings, effects) = cx.state.update_settings(self.0);
        cx.view_changed();
        cx.commit(effects, settings)
    }
}

/// Live counts, for fan-out queries.
#[derive(Debug)]
pub struct Snapshot;

impl TenantMessage for Snapshot {
    type Reply = TenantSnapshot;
    const KIND: &'static str = "snapshot";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<TenantSnapshot> {
        Reply::ready(Ok(cx.state.snapshot(cx.now)))
    }
}
