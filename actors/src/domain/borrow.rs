//! What a borrow asks for and what it gets.
use permetrix_storage::records::ChargeRecord;

use super::DomainError;
use super::input::{LeaseSeconds, ToolName, UserName};
use super::nonces::SignedNonce;
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
            nonce: None,
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
