//! Creating and changing platform accounts: vendors, tenants, API keys, packages.
//! Secrets are generated here, shown once, and stored only as digests or sealed.
use std::time::Duration;

use permetrix_actors::domain::ProvisionRequest;
use permetrix_actors::messages::Provision;
use permetrix_storage::records::{
    ApiKeyRecord, Lifecycle, PackageIndexRecord, PackageRecord, Scope, TenantRecord, VendorRecord,
};
use permetrix_storage::{CustomHost, Location, TenantId, VendorId};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::auth::secrets::random_hex;
use crate::auth::{api_key, now, password};
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

/// Minimum length of an imported signing secret.
pub const MIN_SIGNING_SECRET: usize = 32;

/// A vendor to create.
pub struct NewVendor {
    /// Id.
    pub vendor_id: VendorId,
    /// Display name.
    pub vendor_name: String,
    /// Contact.
    pub contact_email: Option<String>,
    /// Portal password.
    pub password: Option<SecretString>,
    /// Signing secret to import (else one is generated).
    pub signing_secret: Option<SecretString>,
}

/// A created vendor, with its secrets (shown once).
#[derive(Serialize)]
pub struct CreatedVendor {
    /// Id.
    pub vendor_id: String,
    /// Vendor API key.
    pub api_key: String,
    /// Request-signing secret.
    pub signing_secret: String,
}

/// Creates a vendor. 409 if the id is taken.
pub async fn create_vendor(state: &AppState, new: NewVendor) -> Result<CreatedVendor> {
    let signing_secret = match new.signing_secret {
        Some(s) if s.expose_secret().chars().count() >= MIN_SIGNING_SECRET => {
            s.expose_secret().to_owned()
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "signing_secret must have at least {MIN_SIGNING_SECRET} characters; omit it to have one generated"
            )));
        }
        None => random_hex::<32>(),
    };
    let password_hash = match new.password {
        Some(p) => Some(hash_off_thread(p).await?),
        None => None,
    };
    let secret = api_key::new_secret();
    let record = VendorRecord {
        vendor_id: new.vendor_id.to_string(),
        vendor_name: new.vendor_name,
        contact_email: new.contact_email,
        api_key_digest: state.secrets.key_digest(&secret),
        signing_secret: state.secrets.seal(signing_secret.as_bytes()),
        previous_signing_secret: None,
        password_hash,
        created_at: now(state),
        lifecycle: Lifecycle::Active,
    };
    state
        .platform
        .create_vendor(&record)
        .map_err(conflict("vendor", new.vendor_id.as_str()))?
        .wait()
        .await?;
    state.signing_keys.forget(new.vendor_id.as_str());
    Ok(CreatedVendor {
        api_key: api_key::vendor_key(new.vendor_id.as_str(), &secret),
        vendor_id: new.vendor_id.to_string(),
        signing_secret,
    })
}

async fn hash_off_thread(p: SecretString) -> Result<String> {
    actix_web::web::block(move || password::hash(p.expose_secret()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn conflict(
    what: &'static str,
    id: &str,
) -> impl FnOnce(permetrix_storage::StorageError) -> ApiError {
    let id = id.to_owned();
    move |e| match e {
        // A taken custom host has its own answer (`host_taken`).
        e if e.is_host_taken() => e.into(),
        permetrix_storage::StorageError::AlreadyExists { .. } => ApiError::Conflict {
            code: "already_exists",
            detail: format!("a {what} with id '{id}' already exists; choose another id"),
        },
        other => other.into(),
    }
}

/// A tenant to create.
pub struct NewTenant {
    /// Id.
    pub tenant_id: TenantId,
    /// Company name.
    pub company_name: String,
    /// The customer's domain.
    pub domain: Option<String>,
    /// CRM reference.
    pub crm_id: Option<String>,
    /// The tenant's own host names, admitted by
    /// [`CustomHosts::admit`](crate::http::custom_hosts::CustomHosts::admit).
    pub custom_hosts: Vec<CustomHost>,
}

/// A created tenant with its first admin key (shown once).
#[derive(Serialize)]
pub struct CreatedTenant {
    /// Id.
    pub tenant_id: String,
    /// Admin-scope API key.
    pub admin_api_key: String,
}

/// Creates a tenant of `vendor` with an admin key and its custom hosts, which route to
/// it before this returns. 409 if the id is taken (by anyone), 409 `host_taken` if a
/// host is another tenant's.
pub async fn create_tenant(
    state: &AppState,
    vendor: &VendorId,
    new: NewTenant,
) -> Result<CreatedTenant> {
    let record = TenantRecord {
        tenant_id: new.tenant_id.to_string(),
        vendor_id: vendor.to_string(),
        company_name: new.company_name,
        domain: new.domain,
        crm_id: new.crm_id,
        created_at: now(state),
        lifecycle: Lifecycle::Active,
        custom_hosts: CustomHost::sorted_names(&new.custom_hosts),
    };
    let (key_record, key) = new_key_record(state, &new.tenant_id, "admin".into(), Scope::Admin);
    let create = || state.platform.create_tenant(&record, &key_record).map(Some);
    state
        .custom_hosts
        .change(&state.platform, &new.tenant_id, &new.custom_hosts, create)
        .await
        .map_err(conflict("tenant", new.tenant_id.as_str()))?;
    Ok(CreatedTenant {
        tenant_id: new.tenant_id.to_string(),
        admin_api_key: key,
    })
}

fn new_key_record(
    state: &AppState,
    tenant: &TenantId,
    name: String,
    scope: Scope,
) -> (ApiKeyRecord, String) {
    let key_id = api_key::new_key_id();
    let secret = api_key::new_secret();
    let record = ApiKeyRecord {
        key_id: key_id.clone(),
        tenant_id: tenant.to_string(),
        name,
        scope,
        digest: state.secrets.key_digest(&secret),
        created_at: now(state),
        revoked_at: None,
        expires_at: None,
    };
    (
        record,
        api_key::tenant_key(tenant.as_str(), &key_id, &secret),
    )
}

/// A created key (secret shown once).
#[derive(Serialize)]
pub struct CreatedKey {
    /// Key id.
    pub key_id: String,
    /// The key.
    pub api_key: String,
    /// Label.
    pub name: String,
    /// Scope.
    pub scope: &'static str,
    /// When the key stops working, if it expires.
    pub expires_at: Option<String>,
}

/// The wire name of a scope.
pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Admin => "admin",
        Scope::Borrow => "borrow",
    }
}

/// Creates a tenant API key.
pub async fn create_key(
    state: &AppState,
    tenant: &TenantId,
    name: String,
    scope: Scope,
) -> Result<CreatedKey> {
    create_expiring_key(state, tenant, name, scope, None).await
}

/// Creates a tenant API key that stops working at `expires_at` (if given).
pub async fn create_expiring_key(
    state: &AppState,
    tenant: &TenantId,
    name: String,
    scope: Scope,
    expires_at: Option<permetrix_storage::Timestamp>,
) -> Result<CreatedKey> {
    let (mut record, key) = new_key_record(state, tenant, name, scope);
    record.expires_at = expires_at;
    state.platform.add_api_key(&record)?.wait().await?;
    Ok(CreatedKey {
        key_id: record.key_id,
        api_key: key,
        name: record.name,
        scope: scope_name(scope),
        expires_at: record.expires_at.map(permetrix_actors::domain::rfc3339),
    })
}

/// A key issued to replace another, which it revoked.
#[derive(Serialize)]
pub struct RotatedKey {
    /// The new key (secret shown once).
    #[serde(flatten)]
    pub key: CreatedKey,
    /// The key it replaces, revoked now.
    pub replaced_key_id: String,
}

/// Replaces a working key by a new `pmx_t_…` key with the same name, scope and expiry,
/// revoking the old one in the same write (how keys imported from the old license
/// server are moved to the permetrix format, or a leaked key is replaced). 404 for an
/// unknown key, 409 `key_inactive` for one that no longer works.
pub async fn rotate_key(state: &AppState, tenant: &TenantId, key_id: &str) -> Result<RotatedKey> {
    let old = state
        .platform
        .api_key(tenant, key_id)?
        .ok_or_else(|| unknown_key(key_id))?;
    let at = now(state);
    if old.revoked_at.is_some() || old.expires_at.is_some_and(|e| at >= e) {
        return Err(ApiError::Conflict {
            code: "key_inactive",
            detail: format!(
                "key '{key_id}' is revoked or expired; create a new key with POST /api/keys"
            ),
        });
    }
    let (mut record, key) = new_key_record(state, tenant, old.name.clone(), old.scope);
    record.expires_at = old.expires_at;
    state
        .platform
        .rotate_api_key(&old, &record, at)?
        .wait()
        .await?;
    state.streams.end_key(tenant, &old.key_id);
    Ok(RotatedKey {
        key: CreatedKey {
            key_id: record.key_id,
            api_key: key,
            name: record.name,
            scope: scope_name(record.scope),
            expires_at: record.expires_at.map(permetrix_actors::domain::rfc3339),
        },
        replaced_key_id: old.key_id,
    })
}

fn unknown_key(key_id: &str) -> ApiError {
    ApiError::NotFound {
        code: "unknown_key",
        detail: format!("this tenant has no API key '{key_id}'"),
    }
}

/// Revokes a key; effective on the next request (keys are read on every request), and
/// at once for the event streams it holds open.
pub async fn revoke_key(state: &AppState, tenant: &TenantId, key_id: &str) -> Result<()> {
    state
        .platform
        .revoke_api_key(tenant, key_id, now(state))?
        .ok_or_else(|| unknown_key(key_id))?
        .wait()
        .await?;
    state.streams.end_key(tenant, key_id);
    Ok(())
}

/// A live tenant of `vendor`, or 404 (also for another vendor's tenant, so that a
/// vendor learns nothing about other vendors' customers).
pub fn vendor_tenant(state: &AppState, vendor: &VendorId, tenant: &str) -> Result<TenantRecord> {
    let unknown = || ApiError::NotFound {
        code: "unknown_tenant",
        detail: format!("you have no customer with tenant id '{tenant}'"),
    };
    let id = TenantId::parse(tenant).map_err(|_| unknown())?;
    state
        .platform
        .live_tenant(&id)?
        .filter(|t| t.vendor_id == vendor.as_str())
        .ok_or_else(unknown)
}

/// Provisions a package to one of the vendor's tenants.
pub async fn provision(
    state: &AppState,
    vendor: &VendorId,
    tenant: &TenantId,
    package: PackageRecord,
) -> Result<PackageRecord> {
    let index = PackageIndexRecord {
        package_id: package.package_id.clone(),
        tenant_id: tenant.to_string(),
        vendor_id: vendor.to_string(),
    };
    // Index first: a crash after it leaves an index entry that finds no package (a 404
    // later), never a package that cannot be found.
    state.platform.index_package(&index)?.wait().await?;
    match state
        .registry
        .send(tenant, Provision(ProvisionRequest { package }))
        .await
    {
        Ok(p) => Ok(p),
        Err(e) => {
            let undo = state.platform.unindex_package(&index.package_id);
            if let Ok(d) = undo {
                let _ = d.wait().await;
            }
            Err(e.into())
        }
    }
}

/// Replaces the custom hosts of a live tenant (routing follows before this returns);
/// the hosts it now has, sorted. 409 `host_taken` if one is another tenant's.
pub async fn set_custom_hosts(
    state: &AppState,
    tenant: &TenantId,
    hosts: &[CustomHost],
) -> Result<Vec<String>> {
    let set = || state.platform.set_custom_hosts(tenant, hosts);
    let changed = state
        .custom_hosts
        .change(&state.platform, tenant, hosts, set)
        .await?;
    if !changed {
        return Err(ApiError::unknown_tenant());
    }
    Ok(CustomHost::sorted_names(hosts))
}

/// Soft-deletes a tenant: its actor stops, its host answers 404, its custom hosts are
/// released (they route nowhere, and another tenant may claim them), records stay. A
/// tenant owned by another broker is deleted there, where its actor runs.
pub async fn delete_tenant(state: &AppState, tenant: &str) -> Result<()> {
    let id = TenantId::parse(tenant).map_err(|e| ApiError::not_found(e.to_string()))?;
    if !state.registry.is_active(&id)
        && let Location::Remote(owner) = state.registry.locate(&id).await?
    {
        return Err(ApiError::Elsewhere(owner));
    }
    let delete = || state.platform.soft_delete_tenant(&id);
    let deleted = state
        .custom_hosts
        .change(&state.platform, &id, &[], delete)
        .await?;
    if !deleted {
        return Err(ApiError::not_found(format!("no tenant '{tenant}'")));
    }
    state.registry.deactivate(&id);
    state.streams.end_tenant(&id);
    Ok(())
}

/// Soft-deletes a vendor: its key and signing secret stop working; records stay.
pub async fn delete_vendor(state: &AppState, vendor: &str) -> Result<()> {
    let id = VendorId::parse(vendor).map_err(|e| ApiError::not_found(e.to_string()))?;
    state
        .platform
        .soft_delete_vendor(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no vendor '{vendor}'")))?
        .wait()
        .await?;
    state.signing_keys.forget(id.as_str());
    state.webhooks.forget_vendor(&id);
    state.offline_keys.forget(id.as_str());
    Ok(())
}

/// How long fan-out queries wait for tenants by default.
pub const FANOUT_DEADLINE: Duration = Duration::from_secs(2);
