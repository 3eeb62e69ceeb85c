//! The keys of vendors' offline tokens on the vendor host.
//!
//! - `GET /.well-known/jwks.json[?vendor=<vendor_id>]` (no credential): the public keys
//!   that verify offline tokens, as a JWKS (RFC 7517). The vendor host is shared by
//!   every vendor, so `?vendor=` selects one vendor's keys: that is the set a vendor's
//!   licence check should trust, since a token of another vendor cannot verify
//!   against it. Without it, every vendor's keys (kids are unique, and each token names
//!   its vendor in the `vendor` claim).
//! - `GET /api/vendor/offline-keys`: the caller's keys and how long each is published.
//! - `POST /api/vendor/offline-keys/rotate`: a new signing key; the previous one stays
//!   published until the last token it signed expires.
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::VendorId;
use serde::Deserialize;
use serde_json::json;

use crate::auth::offline_keys::{self, KeyStore};
use crate::auth::{VendorAuth, now};
use crate::http::error::{ApiError, Result};
use crate::http::input::{RawBody, parse_json};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/api/vendor/offline-keys", web::get().to(list))
        .route("/api/vendor/offline-keys/rotate", web::post().to(rotate));
}

/// How long verifiers may cache the key set. A rotation publishes the new key at once;
/// a verifier that meets an unknown kid should fetch the set again.
const JWKS_MAX_AGE: &str = "public, max-age=300";

#[derive(Deserialize)]
struct JwksQuery {
    vendor: Option<String>,
}

async fn jwks(state: web::Data<AppState>, query: web::Query<JwksQuery>) -> Result<HttpResponse> {
    let vendor = match query.vendor.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(
            VendorId::parse(v)
                .map_err(|e| ApiError::invalid(format!("vendor '{v}' is not a vendor id: {e}")))?,
        ),
        None => None,
    };
    let set = offline_keys::jwks(&state.platform, vendor.as_ref(), now(&state))?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE)))
        .json(set))
}

async fn list(state: web::Data<AppState>, caller: VendorAuth) -> Result<HttpResponse> {
    let at = now(&state);
    let keys: Vec<_> = state
        .platform
        .offline_keys(&caller.vendor)?
        .map(|set| {
            set.keys
                .iter()
                .map(|k| {
                    json!({
                        "kid": k.kid,
                        "signing": k.retired_at.is_none(),
                        "published": k.retired_at.is_none()
                            || k.published_until.is_some_and(|u| u > at),
                        "created_at": rfc3339(k.created_at),
                        "retired_at": k.retired_at.map(rfc3339),
                        "published_until": k.published_until.map(rfc3339),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({"vendor_id": caller.vendor.as_str(), "keys": keys})))
}

/// Rotation takes no options; a body, if any, must be an empty object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {}

async fn rotate(
    state: web::Data<AppState>,
    caller: VendorAuth,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    let at = now(&state);
    state
        .security
        .limit_key_management(&("offline-keys", caller.vendor.as_str()), at.millis())?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        parse_json::<RotateBody>(&body)?;
    }
    let store = KeyStore {
        platform: &state.platform,
        secrets: &state.secrets,
        now: at,
    };
    let rotated = state.offline_keys.rotate(&store, &caller.vendor).await?;
    let (previous_kid, previous_until) = match rotated.previous {
        Some((kid, until)) => (Some(kid), until.map(rfc3339)),
        None => (None, None),
    };
    Ok(HttpResponse::Ok().json(json!({
        "vendor_id": caller.vendor.as_str(),
        "kid": rotated.kid,
        "previous_kid": previous_kid,
        "previous_published_until": previous_until,
    })))
}
