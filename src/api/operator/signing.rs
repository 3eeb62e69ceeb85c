//! Rotating a vendor's request-signing secret (operator, main host).
//!
//! `POST /api/admin/vendors/{id}/rotate-signing-secret` with an optional body
//! `{overlap_seconds?, signing_secret?}` seals a new secret (generated, or imported
//! when `signing_secret` is given) and keeps the old one verifying for the overlap
//! window (default 24 h, at most 7 days, 0 = none), so that clients can be updated
//! without a gap. The new secret is shown once. Rotating again during an overlap ends
//! the older overlap: only the current and the immediately previous secret verify.
use std::time::Duration;

use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::VendorId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::api::accounts::MIN_SIGNING_SECRET;
use crate::auth::secrets::random_hex;
use crate::auth::{OperatorAuth, now};
use crate::http::error::{ApiError, Result};
use crate::http::headers::shown_once;
use crate::http::input::{RawBody, parse_json};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/admin/vendors/{id}/rotate-signing-secret",
        web::post().to(rotate),
    );
}

/// Overlap when the request names none.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Longest overlap.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    overlap_seconds: Option<u64>,
    signing_secret: Option<String>,
}

async fn rotate(
    state: web::Data<AppState>,
    _: OperatorAuth,
    path: web::Path<String>,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    state
        .security
        .limit_key_management(&"operator:rotate", now(&state).millis())?;
    let input: Rotation = if body.iter().all(u8::is_ascii_whitespace) {
        Rotation::default()
    } else {
        parse_json(&body)?
    };
    let overlap = input
        .overlap_seconds
        .map_or(DEFAULT_OVERLAP, Duration::from_secs);
    if overlap > MAX_OVERLAP {
        return Err(ApiError::invalid(format!(
            "overlap_seconds must be at most {} (7 days)",
            MAX_OVERLAP.as_secs()
        )));
    }
    let secret = match input.signing_secret.map(SecretString::from) {
        Some(s) if s.expose_secret().chars().count() >= MIN_SIGNING_SECRET => {
            s.expose_secret().to_owned()
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "signing_secret must have at least {MIN_SIGNING_SECRET} characters; omit it to \
                 have one generated"
            )));
        }
        None => random_hex::<32>(),
    };

    let unknown = || ApiError::NotFound {
        code: "unknown_vendor",
        detail: format!("no active vendor '{}'", path.as_str()),
    };
    let id = VendorId::parse(&path).map_err(|_| unknown())?;
    let until = now(&state).plus(overlap);
    state
        .platform
        .rotate_signing_secret(
            &id,
            state.secrets.seal(secret.as_bytes()),
            (!overlap.is_zero()).then_some(until),
        )?
        .ok_or_else(unknown)?
        .wait()
        .await?;
    state.signing_keys.forget(id.as_str());
    tracing::info!(vendor = %id, overlap_secs = overlap.as_secs(), "rotated signing secret");
    Ok(HttpResponse::Ok().insert_header(shown_once()).json(json!({
        "vendor_id": id.as_str(),
        "signing_secret": secret,
        "previous_valid_until": (!overlap.is_zero()).then(|| rfc3339(until)),
    })))
}
