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
pub mod key_cache;
pub mod key_usage;
pub mod oauth;
pub mod offline_keys;
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
use std::sync::Arc;

use permetrix_storage::records::{ApiKeyRecord, Lifecycle, Scope};
use permetrix_storage::{Platform, TenantId, Timestamp, VendorId};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use api_key::Token;
use key_cache::{CachedKey, KeyCache};
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
    /// An OAuth access token of a vendor's client, limited to its scope.
    VendorClient {
        /// The client's vendor.
        vendor: VendorId,
        /// The client.
        client_id: String,
        /// What the token may do.
        scope: oauth::Scopes,
    },
    /// The operator token.
    Operator,
}

/// 401 for a credential that is no valid key.
pub fn invalid_key() -> ApiError {
    ApiError::unauthorized("the API key is not valid; check it, or create a new one")
}

/// Verifies a tenant or vendor key, or a vendor's OAuth access token, without blocking
/// (a keyed SHA-256 and one store read; two of each for a key imported from the old
/// license server or an access token). `None` means the token is no key: it can only be
/// the operator token.
pub fn identify_key(state: &impl AuthContext, token: &str) -> Option<Result<Principal, ApiError>> {
    if oauth::is_access_token(token) {
        return Some(oauth::verify(state, token));
    }
    match api_key::parse(token) {
        Some(Token::Tenant {
            tenant,
            key_id,
            secret,
        }) => Some(verify_tenant_key(state, tenant, key_id, secret)),
        Some(Token::Vendor { vendor, secret }) => Some(verify_vendor_key(state, vendor, secret)),
        None => identify_legacy_key(state, token),
    }
}

fn verify_tenant_key(
    state: &impl AuthContext,
    tenant: &str,
    key_id: &str,
    secret: &str,
) -> Result<Principal, ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|_| invalid_key())?;
    let digest = state.secrets().key_digest(secret);
    verify_stored_key(state, tenant, key_id, &digest)
}

/// A key of the old license server (any token without the `pmx_` format), found by the
/// keyed digest of its SHA-256, the only thing the old server stored. `None` if no
/// imported key has that digest.
fn identify_legacy_key(
    state: &impl AuthContext,
    token: &str,
) -> Option<Result<Principal, ApiError>> {
    let sha256_hex = hex::encode(Sha256::digest(token.as_bytes()));
    let digest = state.secrets().legacy_key_digest(&sha256_hex);
    if let Some(CachedKey::Tenant(record)) =
        state.security().key_cache.get(state.platform(), &digest)
    {
        return Some(accept_tenant_key(state, &record));
    }
    let generation = KeyCache::generation(state.platform());
    let found = match state.platform().legacy_key(&digest) {
        Ok(found) => found?,
        Err(e) => return Some(Err(e.into())),
    };
    let Ok(tenant) = TenantId::parse(&found.tenant_id) else {
        return Some(Err(invalid_key()));
    };
    Some(read_tenant_key(
        state,
        generation,
        &tenant,
        &found.key_id,
        &digest,
    ))
}

/// Checks a presented key's digest against the stored key `key_id` of `tenant`, then
/// its revocation and expiry, and notes its use. A key verified before (and unchanged
/// since) is checked from memory.
fn verify_stored_key(
    state: &impl AuthContext,
    tenant: TenantId,
    key_id: &str,
    digest: &[u8; 32],
) -> Result<Principal, ApiError> {
    if let Some(CachedKey::Tenant(record)) =
        state.security().key_cache.get(state.platform(), digest)
        && record.tenant_id == tenant.as_str()
        && record.key_id == key_id
    {
        return accept_tenant_key(state, &record);
    }
    let generation = KeyCache::generation(state.platform());
    read_tenant_key(state, generation, &tenant, key_id, digest)
}

/// [`verify_stored_key`] from the store; remembers a key whose digest matched.
fn read_tenant_key(
    state: &impl AuthContext,
    generation: Option<u64>,
    tenant: &TenantId,
    key_id: &str,
    digest: &[u8; 32],
) -> Result<Principal, ApiError> {
    let record = state
        .platform()
        .api_key(tenant, key_id)?
        .ok_or_else(invalid_key)?;
    if !bool::from(record.digest.ct_eq(digest)) {
        return Err(invalid_key());
    }
    let record = Arc::new(record);
    state
        .security()
        .key_cache
        .insert(generation, *digest, CachedKey::Tenant(Arc::clone(&record)));
    accept_tenant_key(state, &record)
}

/// The checks of a tenant key whose digest matched: revocation, expiry; then notes
/// its use.
fn accept_tenant_key(
    state: &impl AuthContext,
    record: &ApiKeyRecord,
) -> Result<Principal, ApiError> {
    let tenant = TenantId::parse(&record.tenant_id).map_err(|_| invalid_key())?;
    if record.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "this API key has been revoked; use another key",
        ));
    }
    let now = state.registry().clock().now();
    if record.expires_at.is_some_and(|at| now >= at) {
        return Err(ApiError::unauthorized(
            "this API key has expired; create a new one",
        ));
    }
    state
        .security()
        .key_usage
        .touch(&record.digest, &tenant, &record.key_id, now);
    Ok(Principal::Tenant {
        tenant,
        key_id: record.key_id.clone(),
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
    let digest = state.secrets().key_digest(secret);
    let cache = &state.security().key_cache;
    if let Some(CachedKey::Vendor(id)) = cache.get(state.platform(), &digest)
        && id == vendor
    {
        return Ok(Principal::Vendor(vendor));
    }
    let generation = KeyCache::generation(state.platform());
    let record = state.platform().vendor(&vendor)?.ok_or_else(invalid_key)?;
    if !bool::from(record.api_key_digest.ct_eq(&digest)) || record.lifecycle != Lifecycle::Active {
        return Err(invalid_key());
    }
    cache.insert(generation, digest, CachedKey::Vendor(vendor.clone()));
    Ok(Principal::Vendor(vendor))
}

/// The current time, for records.
pub fn now(state: &impl AuthContext) -> Timestamp {
    state.registry().clock().now()
}
