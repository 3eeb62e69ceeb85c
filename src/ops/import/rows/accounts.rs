//! Accounts: `tenants`, `vendors`, `license_packages`, `api_keys`, `users`.
use permetrix_actors::domain::MAX_NAME;
use permetrix_storage::records::{PackageStatus, Scope, UserRole};
use permetrix_storage::{TenantId, Timestamp, VendorId};

use super::{Reading, decisive_time, informative_time, plain, tenant_of};
use crate::api::tenant::users::valid_username;
use crate::auth::password::passlib;
use crate::ops::import::anomalies::Origin;
use crate::ops::import::cells::Row;

/// A `tenants` row (multi-tenant shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRow {
    /// Where it is.
    pub origin: Origin,
    /// The tenant id (its subdomain).
    pub id: TenantId,
    /// `company_name`.
    pub company_name: String,
    /// `domain`.
    pub domain: Option<String>,
    /// `crm_id`.
    pub crm_id: Option<String>,
    /// `status` is `active`.
    pub active: bool,
    /// `created_at`.
    pub created_at: Option<Timestamp>,
}

fn optional(row: &Row<'_>, column: &str, max: usize) -> Result<Option<String>, String> {
    row.text(column)?
        .filter(|t| !t.trim().is_empty())
        .map(|t| plain(&t, column, max))
        .transpose()
}

impl TenantRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let raw = row.required_text("tenant_id")?;
        let id = TenantId::parse(raw.trim()).map_err(|e| e.to_string())?;
        let status = row.text("status")?.unwrap_or_else(|| "active".into());
        let active = status.eq_ignore_ascii_case("active");
        if !active {
            cx.anomalies.adjust(
                origin,
                format!("status '{status}': imported with its packages suspended (no borrowing until the vendor reactivates them)"),
            );
        }
        Ok(TenantRow {
            origin: origin.clone(),
            company_name: optional(row, "company_name", MAX_NAME)?
                .unwrap_or_else(|| id.to_string()),
            domain: optional(row, "domain", 253)?,
            crm_id: optional(row, "crm_id", MAX_NAME)?,
            created_at: informative_time(row, "created_at", origin, cx),
            active,
            id,
        })
    }
}

/// A `vendors` row (multi-tenant shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRow {
    /// Where it is.
    pub origin: Origin,
    /// The vendor id.
    pub id: VendorId,
    /// `vendor_name`.
    pub name: String,
    /// `contact_email`.
    pub contact_email: Option<String>,
    /// `created_at`.
    pub created_at: Option<Timestamp>,
}

impl VendorRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let raw = row.required_text("vendor_id")?;
        let id = VendorId::parse(raw.trim()).map_err(|e| e.to_string())?;
        if row.text("api_key_hash")?.is_some() {
            cx.anomalies.note(
                origin,
                "the vendor's old API key is not carried over (vendor keys are pmx_v_ keys); \
                 the report prints a new one for a vendor the import creates",
            );
        }
        Ok(VendorRow {
            origin: origin.clone(),
            name: optional(row, "vendor_name", MAX_NAME)?.unwrap_or_else(|| id.to_string()),
            contact_email: optional(row, "contact_email", 254)?,
            created_at: informative_time(row, "created_at", origin, cx),
            id,
        })
    }
}

/// A `license_packages` row (multi-tenant shape): who provisioned a pool, as what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRow {
    /// Where it is.
    pub origin: Origin,
    /// The package id.
    pub id: String,
    /// `tenant_id`.
    pub tenant: Option<String>,
    /// `vendor_id`.
    pub vendor: VendorId,
    /// `product_id`.
    pub product_id: Option<String>,
    /// `crm_opportunity_id`.
    pub crm_opportunity_id: Option<String>,
    /// `status`.
    pub status: PackageStatus,
    /// `provisioned_at`.
    pub provisioned_at: Option<Timestamp>,
}

/// A package or key id: what fits in a URL path segment and a storage key unchanged.
fn id_text(text: &str, column: &str) -> Result<String, String> {
    let id = text.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "{column} '{text}' is not an id of letters, digits, '-', '_' and '.'"
        ))
    }
}

impl PackageRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let id = id_text(&row.required_text("package_id")?, "package_id")?;
        let vendor =
            VendorId::parse(row.required_text("vendor_id")?.trim()).map_err(|e| e.to_string())?;
        let status = match row
            .text("status")?
            .unwrap_or_else(|| "active".into())
            .to_ascii_lowercase()
            .as_str()
        {
            "active" => PackageStatus::Active,
            "suspended" => PackageStatus::Suspended,
            "revoked" => PackageStatus::Revoked,
            other => {
                cx.anomalies.adjust(
                    origin,
                    format!("status '{other}' is not known; imported as suspended"),
                );
                PackageStatus::Suspended
            }
        };
        Ok(PackageRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            product_id: optional(row, "product_id", MAX_NAME)?,
            crm_opportunity_id: optional(row, "crm_opportunity_id", MAX_NAME)?,
            provisioned_at: informative_time(row, "provisioned_at", origin, cx),
            vendor,
            status,
            id,
        })
    }
}

/// An `api_keys` row: a key the old server issued, known by its SHA-256 only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// Where it is.
    pub origin: Origin,
    /// `tenant_id`; `None` in a single-tenant file.
    pub tenant: Option<String>,
    /// `id` (`key_<16 hex>`), kept as the key id.
    pub id: String,
    /// `key_hash`: lowercase hex SHA-256 of the whole key string.
    pub sha256_hex: String,
    /// `name`.
    pub name: String,
    /// `environment`.
    pub environment: Option<String>,
    /// `created_at`.
    pub created_at: Option<Timestamp>,
    /// `last_used_at`.
    pub last_used_at: Option<Timestamp>,
    /// `expires_at`.
    pub expires_at: Option<Timestamp>,
    /// `status` is `revoked` (or unknown).
    pub revoked: bool,
    /// The permetrix scope `scopes` maps to.
    pub scope: Scope,
}

/// Maps the old comma list of scopes to a permetrix scope: `admin` (or `*`) → admin;
/// anything else → borrow (the old `borrow`, `return`, `status` are what borrow scope
/// may do). Returns the scope and the words it did not know.
pub fn map_scopes(list: &str) -> (Scope, Vec<String>) {
    let words: Vec<String> = list
        .split([',', ' '])
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let admin = words.iter().any(|w| w == "admin" || w == "*");
    let unknown = words
        .iter()
        .filter(|w| {
            !["admin", "*", "borrow", "return", "status", "heartbeat"].contains(&w.as_str())
        })
        .cloned()
        .collect();
    (if admin { Scope::Admin } else { Scope::Borrow }, unknown)
}

impl KeyRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let id = id_text(&row.required_text("id")?, "id")?;
        let hash = row.required_text("key_hash")?;
        let sha256_hex = hash.trim().to_ascii_lowercase();
        if sha256_hex.len() != 64 || !sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "key_hash '{hash}' is not a hex SHA-256 (64 hex digits)"
            ));
        }
        let expires_at = decisive_time(row, "expires_at", origin, cx)?;
        let status = row.text("status")?.unwrap_or_else(|| "active".into());
        let revoked = match status.to_ascii_lowercase().as_str() {
            "active" => false,
            "revoked" => true,
            other => {
                cx.anomalies.adjust(
                    origin,
                    format!("status '{other}' is not known; imported as revoked"),
                );
                true
            }
        };
        let scopes = row
            .text("scopes")?
            .unwrap_or_else(|| "borrow,return,status".into());
        let (scope, unknown) = map_scopes(&scopes);
        if !unknown.is_empty() {
            cx.anomalies.note(
                origin,
                format!(
                    "scopes '{scopes}': {} not known; mapped to {}",
                    unknown.join(", "),
                    scope_name(scope)
                ),
            );
        } else if scope == Scope::Borrow && !scopes.to_ascii_lowercase().contains("borrow") {
            cx.anomalies.note(
                origin,
                format!("scopes '{scopes}' are narrower than permetrix's borrow scope, which it gets (no narrower scope exists)"),
            );
        }
        Ok(KeyRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            name: optional(row, "name", 100)?.unwrap_or_else(|| id.clone()),
            environment: optional(row, "environment", 32)?,
            created_at: informative_time(row, "created_at", origin, cx),
            last_used_at: informative_time(row, "last_used_at", origin, cx),
            expires_at,
            revoked,
            scope,
            sha256_hex,
            id,
        })
    }
}

fn scope_name(scope: Scope) -> &'static str {
    crate::api::accounts::scope_name(scope)
}

/// Where a user's password stands after the import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// The old passlib `pbkdf2_sha256` hash, verified at login and then replaced.
    Imported(String),
    /// None: an admin sets one (`pending` in the file, or unusable).
    NotSet,
}

/// A `users` row: a portal user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// Where it is.
    pub origin: Origin,
    /// `tenant_id`; `None` in a single-tenant file.
    pub tenant: Option<String>,
    /// The login name, folded to lowercase.
    pub username: String,
    /// The password.
    pub password: PasswordSource,
    /// `role`.
    pub role: UserRole,
    /// `created_at`.
    pub created_at: Option<Timestamp>,
}

impl UserRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let raw = row.required_text("username")?;
        if tenant_of(row).is_none() && row.text("vendor_id")?.is_some_and(|v| !v.trim().is_empty())
        {
            return Err(
                "a vendor portal user: the vendor portal's user is the vendor id itself, with the \
                 password given when the vendor is created"
                    .into(),
            );
        }
        let username = valid_username(raw.trim()).ok_or_else(|| {
            format!(
                "username '{raw}' is not 1-64 of a-z 0-9 . _ @ + - starting with a letter or digit"
            )
        })?;
        let hash = row.text("password_hash")?.unwrap_or_default();
        let status = row.text("status")?.unwrap_or_else(|| "active".into());
        let password = if hash.trim() == "pending" || hash.trim().is_empty() {
            cx.anomalies.note(
                origin,
                "password 'pending' (never set): imported without one; a tenant admin sets it",
            );
            PasswordSource::NotSet
        } else if !status.eq_ignore_ascii_case("active") {
            cx.anomalies.adjust(
                origin,
                format!("status '{status}': imported without a password; a tenant admin sets one"),
            );
            PasswordSource::NotSet
        } else {
            match passlib::Pbkdf2Sha256::parse(hash.trim()) {
                Ok(_) => PasswordSource::Imported(hash.trim().to_owned()),
                Err(e) => {
                    cx.anomalies.adjust(
                        origin,
                        format!("password_hash is {e}; imported without a password, a tenant admin sets one"),
                    );
                    PasswordSource::NotSet
                }
            }
        };
        let role = match row
            .text("role")?
            .unwrap_or_else(|| "admin".into())
            .to_ascii_lowercase()
            .as_str()
        {
            "admin" => UserRole::Admin,
            "viewer" => UserRole::Viewer,
            other => {
                cx.anomalies.adjust(
                    origin,
                    format!("role '{other}' is not known; imported as viewer"),
                );
                UserRole::Viewer
            }
        };
        Ok(UserRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            created_at: informative_time(row, "created_at", origin, cx),
            username,
            password,
            role,
        })
    }
}
