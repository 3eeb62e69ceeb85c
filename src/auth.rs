//! Authentication at the edge: who is calling, and may they do this here.
//!
//! A credential is bound to one tenant, one vendor, or the operator, and is refused
//! anywhere else: 401 when it is missing or invalid, 403 when it is valid but belongs
//! elsewhere or lacks the scope. A 403 never depends on whether the addressed tenant
//! exists.
pub mod api_key;
pub mod client;
mod extract;
pub mod fair_slots;
pub mod key_usage;
mod operator;
pub mod password;
pub mod secrets;
pub mod security;
pub mod session;
pub mod signature;
pub mod streams;
pub mod throttle;

pub use extract::{
    AnyTenantCaller, OperatorAuth, TenantAdmin, TenantAuth, TenantBorrower, VendorAuth, bearer,
    wrong_place,
};
pub use operator::{MetricsToken, OperatorToken, TokenSetup};

use actix_web::web;
use permetrix_actors::Registry;
use permetrix_storage::records::{Lifecycle, Scope};
use permetrix_storage::{Platform, TenantId, Timestamp, VendorId};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use api_key::Token;
use secrets::ServerSecrets;
use security::SecurityState;

/// What authentication reads from the running server. The server's application state
/// implements it, so that this room never names that state (which holds its types);
/// the extractors find it as `web::Data<dyn AuthContext>`.
pub trait AuthContext: Send + Sync + 'static {
    /// Platform records: keys, vendors, users, sessions.
    fn platform(&self) -> &Platform;
    /// Key digests and sealed secrets.
    fn secrets(&self) -> &ServerSecrets;
    /// Session settings, throttles, key usage and argon2 slots.
    fn security(&self) -> &SecurityState;
    /// The operator token.
    fn operator(&self) -> &OperatorToken;
    /// Tenant actors (whether a tenant exists) and their clock.
    fn registry(&self) -> &Registry;
}

/// Handlers pass their `web::Data` as it is.
impl<T: AuthContext + ?Sized> AuthContext for web::Data<T> {
    fn platform(&self) -> &Platform {
        (**self).platform()
    }
    fn secrets(&self) -> &ServerSecrets {
        (**self).secrets()
    }
    fn security(&self) -> &SecurityState {
        (**self).security()
    }
    fn operator(&self) -> &OperatorToken {
        (**self).operator()
    }
    fn registry(&self) -> &Registry {
        (**self).registry()
    }
}

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
        /// When the key stops working, if it expires.
        expires_at: Option<Timestamp>,
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
pub fn identify_key(state: &impl AuthContext, token: &str) -> Option<Result<Principal, ApiError>> {
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
    state: &impl AuthContext,
    tenant: &str,
    key_id: &str,
    secret: &str,
) -> Result<Principal, ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|_| invalid_key())?;
    let record = state
        .platform()
        .api_key(&tenant, key_id)?
        .ok_or_else(invalid_key)?;
    let digest = state.secrets().key_digest(secret);
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
        .is_some_and(|at| state.registry().clock().now() >= at)
    {
        return Err(ApiError::unauthorized(
            "this API key has expired; create a new one",
        ));
    }
    state.security().key_usage.touch(
        &record.digest,
        &tenant,
        &record.key_id,
        state.registry().clock().now(),
    );
    Ok(Principal::Tenant {
        tenant,
        key_id: record.key_id,
        scope: record.scope,
        expires_at: record.expires_at,
    })
}

fn verify_vendor_key(
    state: &impl AuthContext,
    vendor: &str,
    secret: &str,
) -> Result<Principal, ApiError> {
    let vendor = VendorId::parse(vendor).map_err(|_| invalid_key())?;
    let record = state.platform().vendor(&vendor)?.ok_or_else(invalid_key)?;
    let digest = state.secrets().key_digest(secret);
    if !bool::from(record.api_key_digest.ct_eq(&digest)) || record.lifecycle != Lifecycle::Active {
        return Err(invalid_key());
    }
    Ok(Principal::Vendor(vendor))
}

/// The current time, for records.
pub fn now(state: &impl AuthContext) -> Timestamp {
    state.registry().clock().now()
}
