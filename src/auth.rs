//! Authentication at the edge: who is calling, and may they do this here.
//!
//! A credential is bound to one tenant, one vendor, or the operator, and is refused
//! anywhere else: 401 when it is missing or invalid, 403 when it is valid but belongs
//! elsewhere or lacks the scope. A 403 never depends on whether the addressed tenant
//! exists.
pub mod api_key;
pub mod client;
mod extract;
pub mod key_usage;
mod operator;
pub mod password;
pub mod security;
pub mod session;
pub mod throttle;

pub use extract::{
    AnyTenantCaller, OperatorAuth, TenantAdmin, TenantAuth, TenantBorrower, VendorAuth, bearer,
    wrong_place,
};
pub use operator::{OperatorToken, TokenSetup};

use permetrix_storage::records::{Lifecycle, Scope};
use permetrix_storage::{TenantId, Timestamp, VendorId};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;
use api_key::Token;

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A tenant API key.
    Tenant {
        /// Owning tenant.
        tenant: TenantId,
        /// Key id.
        key_id: String,
        /// Scope.
        scope: Scope,
    },
    /// A vendor API key.
    Vendor(VendorId),
    /// The operator token.
    Operator,
}

/// 401 for a credential that is no valid key.
pub fn invalid_key() -> ApiError {
    ApiError::unauthorized("the API key is not valid; check it, or create a new one")
}

/// Verifies a tenant or vendor key without blocking (a keyed SHA-256 and one store
/// read). `None` means the token has no key format: it can only be the operator token.
pub fn identify_key(state: &AppState, token: &str) -> Option<Result<Principal, ApiError>> {
    match api_key::parse(token)? {
        Token::Tenant {
            tenant,
            key_id,
            secret,
        } => Some(verify_tenant_key(state, tenant, key_id, secret)),
        Token::Vendor { vendor, secret } => Some(verify_vendor_key(state, vendor, secret)),
    }
}

fn verify_tenant_key(
    state: &AppState,
    tenant: &str,
    key_id: &str,
    secret: &str,
) -> Result<Principal, ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|_| invalid_key())?;
    let record = state
        .platform
        .api_key(&tenant, key_id)?
        .ok_or_else(invalid_key)?;
    let digest = state.secrets.key_digest(secret);
    if !bool::from(record.digest.ct_eq(&digest)) {
        return Err(invalid_key());
    }
    if record.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "this API key has been revoked; use another key",
        ));
    }
    if record
        .expires_at
        .is_some_and(|at| state.registry.clock().now() >= at)
    {
        return Err(ApiError::unauthorized(
            "this API key has expired; create a new one",
        ));
    }
    state.security.key_usage.touch(
        &record.digest,
        &tenant,
        &record.key_id,
        state.registry.clock().now(),
    );
    Ok(Principal::Tenant {
        tenant,
        key_id: record.key_id,
        scope: record.scope,
    })
}

fn verify_vendor_key(state: &AppState, vendor: &str, secret: &str) -> Result<Principal, ApiError> {
    let vendor = VendorId::parse(vendor).map_err(|_| invalid_key())?;
    let record = state.platform.vendor(&vendor)?.ok_or_else(invalid_key)?;
    let digest = state.secrets.key_digest(secret);
    if !bool::from(record.api_key_digest.ct_eq(&digest)) || record.lifecycle != Lifecycle::Active {
        return Err(invalid_key());
    }
    Ok(Principal::Vendor(vendor))
}

/// The current time, for records.
pub fn now(state: &AppState) -> Timestamp {
    state.registry.clock().now()
}
