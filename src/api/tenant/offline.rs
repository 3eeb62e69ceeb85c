//! Offline checkout on the tenant host: the token that goes with an offline borrow.
//!
//! The tenant's actor grants the seat (the domain's rules); this edge signs the token,
//! off the actor. Before the seat is granted, the vendor's key is made ready and
//! recorded as published past the latest end the checkout can have, so that a granted
//! checkout always gets its token and every token stays verifiable until it expires;
//! if the token cannot be made anyway, the seat is returned before the error answers.
use std::time::Duration;

use actix_web::HttpRequest;
use permetrix_actors::TenantView;
use permetrix_actors::domain::{BorrowRequest, LeaseView, WaitSeconds};
use permetrix_actors::messages::Return;
use permetrix_client::offline_token::Claims;
use permetrix_storage::{TenantId, VendorId};

use crate::auth::now;
use crate::auth::offline_keys::{ActiveKey, KeyStore};
use crate::http::error::{ApiError, Result};
use crate::http::host::{canonical_host, request_host};
use crate::server::state::AppState;

/// Time a granted borrow may spend in the tenant's mailbox beyond its wait.
const GRANT_MARGIN: Duration = Duration::from_secs(600);

/// What signs the token of one offline borrow.
pub(super) struct Issuer {
    vendor: VendorId,
    key: std::sync::Arc<ActiveKey>,
    iss: String,
    fingerprint: Option<String>,
}

fn key_store(state: &AppState) -> KeyStore<'_> {
    KeyStore {
        platform: &state.platform,
        secrets: &state.secrets,
        now: now(state),
    }
}

/// For an offline borrow of a tool the tenant has: the vendor's key, published past
/// the latest end the checkout can have. `None` for an online borrow, or a tool the
/// tenant does not have (the actor answers that).
pub(super) async fn prepare(
    state: &AppState,
    req: &HttpRequest,
    view: &TenantView,
    request: &BorrowRequest,
    wait: WaitSeconds,
) -> Result<Option<Issuer>> {
    let Some(offline) = &request.offline else {
        return Ok(None);
    };
    let Some(vendor) = view.tool_vendor(request.tool.as_str()) else {
        return Ok(None);
    };
    let vendor = VendorId::parse(vendor).map_err(ApiError::internal)?;
    let store = key_store(state);
    let until = store
        .now
        .plus(offline.hours.as_duration() + wait.as_duration() + GRANT_MARGIN);
    let key = state.offline_keys.key_for(&store, &vendor, until).await?;
    Ok(Some(Issuer {
        vendor,
        key,
        iss: issuer_url(state, req),
        fingerprint: offline.fingerprint.clone(),
    }))
}

/// The token of the granted offline borrow `lease` of `tenant`.
pub(super) async fn token(
    state: &AppState,
    tenant: &TenantId,
    issuer: &Issuer,
    lease: &LeaseView,
) -> Result<String> {
    let store = key_store(state);
    state
        .offline_keys
        .publish(&store, &issuer.vendor, &issuer.key, lease.lease_expires_at)
        .await?;
    let secs = |t: permetrix_storage::Timestamp| u64::try_from(t.secs()).unwrap_or_default();
    let claims = Claims {
        iss: issuer.iss.clone(),
        sub: lease.user.clone(),
        vendor: issuer.vendor.to_string(),
        tenant: tenant.to_string(),
        tool: lease.tool.clone(),
        product_id: lease.product_id.clone(),
        borrow_id: lease.id.to_string(),
        fingerprint: issuer.fingerprint.clone(),
        iat: secs(lease.borrowed_at),
        exp: secs(lease.lease_expires_at),
    };
    issuer.key.key.sign(&claims).map_err(ApiError::internal)
}

/// Returns a seat whose token could not be made, so that it is not held for hours
/// without one. The client is answered the error that stopped the token.
pub(super) async fn give_back(state: &AppState, tenant: &TenantId, lease: &LeaseView) {
    if let Err(e) = state.registry.send(tenant, Return::of(lease.id)).await {
        tracing::warn!(tenant = %tenant, error = %e, "returning an offline seat without a token failed");
    }
}

/// `https://vendor.<base>` of the base domain the borrow was addressed to (the first
/// configured one when it came by a custom host): the issuer of the token.
fn issuer_url(state: &AppState, req: &HttpRequest) -> String {
    let host = canonical_host(request_host(req.head()));
    let bases = state.bases.as_slice();
    let base = bases
        .iter()
        .find(|b| host.ends_with(&format!(".{b}")))
        .or_else(|| bases.first())
        .map_or("localhost", String::as_str);
    format!("https://vendor.{base}")
}
