//! Tenant settings (`/config/*`), admin scope.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{LeaseSeconds, SettingsPatch};
use permetrix_actors::messages::{GetSettings, UpdateSettings};
use permetrix_storage::records::{SettingsRecord, SignaturePolicy};
use serde::{Deserialize, Serialize};

use crate::auth::TenantAdmin;
use crate::http::error::Result;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/config/security", web::get().to(get_security))
        .route("/config/security", web::put().to(put_security));
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Policy {
    Off,
    V1,
    V2,
}

impl From<SignaturePolicy> for Policy {
    fn from(p: SignaturePolicy) -> Self {
        match p {
            SignaturePolicy::Off => Policy::Off,
            SignaturePolicy::V1 => Policy::V1,
            SignaturePolicy::V2 => Policy::V2,
        }
    }
}

impl From<Policy> for SignaturePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Off => SignaturePolicy::Off,
            Policy::V1 => SignaturePolicy::V1,
            Policy::V2 => SignaturePolicy::V2,
        }
    }
}

#[derive(Serialize)]
struct Security {
    signature_policy: Policy,
    default_lease_seconds: u32,
    anonymous_status: bool,
}

impl From<SettingsRecord> for Security {
    fn from(s: SettingsRecord) -> Self {
        Security {
            signature_policy: s.signature_policy.into(),
            default_lease_seconds: s.default_lease_seconds,
            anonymous_status: s.anonymous_status,
        }
    }
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct SecurityPatch {
    signature_policy: Option<Policy>,
    default_lease_seconds: Option<u32>,
    anonymous_status: Option<bool>,
}

async fn get_security(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    let s = state.registry.send(&caller.tenant, GetSettings).await?;
    Ok(HttpResponse::Ok().json(Security::from(s)))
}

async fn put_security(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<SecurityPatch>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let patch = SettingsPatch {
        signature_policy: b.signature_policy.map(Into::into),
        default_lease_seconds: b
            .default_lease_seconds
            .map(|s| LeaseSeconds::parse("default_lease_seconds", s))
            .transpose()?,
        anonymous_status: b.anonymous_status,
    };
    let s = state
        .registry
        .send(&caller.tenant, UpdateSettings(patch))
        .await?;
    Ok(HttpResponse::Ok().json(Security::from(s)))
}
