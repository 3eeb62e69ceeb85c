//! What a borrow asks for and what it gets.
use permetrix_storage::records::ChargeRecord;

use super::DomainError;
use super::input::{LeaseSeconds, ToolName, UserName};
use super::nonces::SignedNonce;
use super::offline::OfflineCheckout;
use super::views::LeaseView;

/// A borrow as the domain sees it: its fields parsed at the edge.
#[derive(Clone, Debug)]
pub struct BorrowRequest {
    /// Product name or id.
    pub tool: ToolName,
    /// Who borrows.
    pub user: UserName,
    /// Lease length; `None` = the tenant's default.
    pub lease_seconds: Option<LeaseSeconds>,
    /// An offline checkout (then `lease_seconds` is `None`).
    pub offline: Option<OfflineCheckout>,
    /// The nonce of its v2 signature: recorded by the tenant, and written with the
    /// lease if the borrow is granted (now, or later from the queue).
    pub nonce: Option<SignedNonce>,
}

impl BorrowRequest {
    /// Parses the fields of a borrow in the order a client's mistakes are reported:
    /// tool, user, lease length.
    pub fn parse(tool: &str, user: &str, lease_seconds: Option<u32>) -> Result<Self, DomainError> {
        Ok(BorrowRequest {
            tool: ToolName::parse(tool)?,
            user: UserName::parse(user)?,
            lease_seconds: lease_seconds
                .map(|s| LeaseSeconds::parse("lease_seconds", s))
                .transpose()?,
            offline: None,
            nonce: None,
        })
    }

    /// Makes this an offline checkout. Its length is `offline_hours`: a lease length
    /// as well would contradict it, and is refused rather than one of them ignored.
    pub fn checked_out(self, offline: OfflineCheckout) -> Result<Self, DomainError> {
        if self.lease_seconds.is_some() {
            return Err(DomainError::Invalid(
                "an offline borrow lasts offline_hours and takes no lease_seconds; send one or the other"
                    .into(),
            ));
        }
        Ok(BorrowRequest {
            offline: Some(offline),
            ..self
        })
    }
}

/// A granted borrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The new lease.
    pub lease: LeaseView,
    /// The charge booked, for an overage borrow.
    pub charge: Option<ChargeRecord>,
}

/// A returned borrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Returned {
    /// The lease as it was.
    pub lease: LeaseView,
}
