//! The record types stored by permetrix, current schema version of each.
//!
//! Field order is part of the format (bincode is positional): never reorder or
//! retype a field of a released version. To change a record, add a new struct version,
//! bump `VERSION`, and decode the old one in [`Record::upgrade`]; keep the fixtures of
//! the old encoding under `storage/tests/fixtures` and add ones of the new version. The
//! test `storage/tests/record_fixtures` decodes every fixture and fails when a change
//! would leave stored records unreadable.
use crate::codec::{CodecError, Record, decode_payload};
use crate::{BorrowId, Money, Timestamp};
use serde::{Deserialize, Serialize};

macro_rules! record {
    ($ty:ty, $name:literal, version = $version:literal) => {
        impl $crate::codec::Record for $ty {
            const NAME: &'static str = $name;
            const VERSION: u8 = $version;
        }
    };
}
use record;

/// Whether a platform entity is live or soft-deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    /// In service.
    Active,
    /// Soft-deleted: kept for audit, refused everywhere.
    Deleted,
}

/// A secret encrypted with the server's sealing key (nonce + AEAD ciphertext).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext including the authentication tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

/// A vendor of licensed tools.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorRecord {
    /// Vendor id (also the portal user name).
    pub vendor_id: String,
    /// Display name.
    pub vendor_name: String,
    /// Contact address, if given.
    pub contact_email: Option<String>,
    /// Digest of the vendor API key's secret (`pmx_v_<vendor>_<secret>`).
    pub api_key_digest: [u8; 32],
    /// The request-signing secret, sealed.
    pub signing_secret: SealedSecret,
    /// The previous signing secret and until when it still verifies (rotation overlap).
    pub previous_signing_secret: Option<(SealedSecret, Timestamp)>,
    /// argon2id PHC string of the portal password, if one was set.
    pub password_hash: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Live or soft-deleted.
    pub lifecycle: Lifecycle,
}
record!(VendorRecord, "vendor", version = 1);

/// A tenant (a vendor's customer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant id (its subdomain label).
    pub tenant_id: String,
    /// The vendor that created the tenant.
    pub vendor_id: String,
    /// Company name.
    pub company_name: String,
    /// The customer's own domain, informational.
    pub domain: Option<String>,
    /// The vendor's CRM reference.
    pub crm_id: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Live or soft-deleted.
    pub lifecycle: Lifecycle,
    /// The tenant's own host names (`licenses.acme.com`), sorted, each also a
    /// [`CustomHostRecord`]; empty once the tenant is deleted (since V2).
    pub custom_hosts: Vec<String>,
}

impl Record for TenantRecord {
    const NAME: &'static str = "tenant";
    const VERSION: u8 = 2;

    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, crate::codec::CodecError> {
        match version {
            1 => {
                let v1: TenantRecordV1 = crate::codec::decode_payload(payload, Self::NAME)?;
                Ok(TenantRecord {
                    tenant_id: v1.tenant_id,
                    vendor_id: v1.vendor_id,
                    company_name: v1.company_name,
                    domain: v1.domain,
                    crm_id: v1.crm_id,
                    created_at: v1.created_at,
                    lifecycle: v1.lifecycle,
                    custom_hosts: Vec::new(),
                })
            }
            version => Err(crate::codec::CodecError::UnknownVersion {
                record: Self::NAME,
                version,
            }),
        }
    }
}

/// [`TenantRecord`] as version 1 stored it (before custom hosts).
#[derive(Deserialize)]
struct TenantRecordV1 {
    tenant_id: String,
    vendor_id: String,
    company_name: String,
    domain: Option<String>,
    crm_id: Option<String>,
    created_at: Timestamp,
    lifecycle: Lifecycle,
}

/// A custom host and the tenant it routes to: the index that keeps custom hosts unique
/// across tenants (one record per host name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHostRecord {
    /// The host name (lowercase, no trailing dot).
    pub host: String,
    /// The tenant it routes to.
    pub tenant_id: String,
}
record!(CustomHostRecord, "custom host", version = 1);

/// What a tenant API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Borrow, return, heartbeat and read status.
    Borrow,
    /// Everything `Borrow` may, plus configuration, keys and users.
    Admin,
}

/// A tenant API key (`pmx_t_<tenant>_<key_id>_<secret>`); only a digest of the secret
/// is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Key id.
    pub key_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Human label.
    pub name: String,
    /// Permission.
    pub scope: Scope,
    /// Digest of the secret part.
    pub digest: [u8; 32],
    /// Creation time.
    pub created_at: Timestamp,
    /// Set when revoked; a revoked key is refused at once.
    pub revoked_at: Option<Timestamp>,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
}
record!(ApiKeyRecord, "api key", version = 1);

/// Where a package lives (the package itself is tenant state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageIndexRecord {
    /// Package id.
    pub package_id: String,
    /// Tenant that holds the package.
    pub tenant_id: String,
    /// Vendor that provisioned it.
    pub vendor_id: String,
}
record!(PackageIndexRecord, "package index entry", version = 1);

/// The operator token's argon2id hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTokenRecord {
    /// PHC string.
    pub hash: String,
    /// When it was set.
    pub set_at: Timestamp,
}
record!(AdminTokenRecord, "operator token", version = 1);

/// Marks a directory as a permetrix store and names its format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatRecord {
    /// Always `permetrix`.
    pub magic: String,
    /// Store layout version.
    pub layout: u32,
    /// When the store was created.
    pub created_at: Timestamp,
}
record!(FormatRecord, "format marker", version = 1);

/// Package state set by the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackageStatus {
    /// Borrows allowed (within the validity window).
    Active,
    /// Temporarily refused; existing leases run out.
    Suspended,
    /// Permanently refused; existing leases run out.
    Revoked,
}

/// A license pool provisioned by a vendor to a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// Package id.
    pub package_id: String,
    /// Provisioning vendor (whose signing secret signs borrows of this tool).
    pub vendor_id: String,
    /// Product id (a borrow may name the tool by id or by name).
    pub product_id: String,
    /// Product (tool) name.
    pub product_name: String,
    /// Seats in total (`commit_qty + max_overage`).
    pub total: u32,
    /// Prepaid seats.
    pub commit_qty: u32,
    /// Seats allowed beyond the commit, each borrow of which is charged.
    pub max_overage: u32,
    /// Price of the commit block.
    pub commit_price: Money,
    /// Charge booked per overage borrow.
    pub overage_price: Money,
    /// Vendor's CRM opportunity reference.
    pub crm_opportunity_id: Option<String>,
    /// Borrows refused before this instant.
    pub valid_from: Option<Timestamp>,
    /// Borrows refused from this instant.
    pub valid_until: Option<Timestamp>,
    /// Vendor-set status.
    pub status: PackageStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Longest offline checkout (hours) a borrow may ask for; 0: no offline checkout
    /// (since V2).
    pub max_offline_hours: u32,
    /// Offline checkouts of the pool held at once; 0: none (since V2).
    pub max_offline_seats: u32,
}

impl Record for PackageRecord {
    const NAME: &'static str = "package";
    const VERSION: u8 = 2;

    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, crate::codec::CodecError> {
        match version {
            1 => {
                let v1: PackageRecordV1 = crate::codec::decode_payload(payload, Self::NAME)?;
                Ok(PackageRecord {
                    package_id: v1.package_id,
                    vendor_id: v1.vendor_id,
                    product_id: v1.product_id,
                    product_name: v1.product_name,
                    total: v1.total,
                    commit_qty: v1.commit_qty,
                    max_overage: v1.max_overage,
                    commit_price: v1.commit_price,
                    overage_price: v1.overage_price,
                    crm_opportunity_id: v1.crm_opportunity_id,
                    valid_from: v1.valid_from,
                    valid_until: v1.valid_until,
                    status: v1.status,
                    created_at: v1.created_at,
                    max_offline_hours: 0,
                    max_offline_seats: 0,
                })
            }
            version => Err(crate::codec::CodecError::UnknownVersion {
                record: Self::NAME,
                version,
            }),
        }
    }
}

/// [`PackageRecord`] as version 1 stored it (before offline checkout).
#[derive(Deserialize)]
struct PackageRecordV1 {
    package_id: String,
    vendor_id: String,
    product_id: String,
    product_name: String,
    total: u32,
    commit_qty: u32,
    max_overage: u32,
    commit_price: Money,
    overage_price: Money,
    crm_opportunity_id: Option<String>,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
    status: PackageStatus,
    created_at: Timestamp,
}

/// An active borrow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Borrow id.
    pub id: BorrowId,
    /// Product id of the pool it holds a seat of.
    pub product_id: String,
    /// Who borrowed.
    pub user: String,
    /// When granted.
    pub borrowed_at: Timestamp,
    /// When it lapses unless heartbeated; for an offline checkout, the end of the
    /// checkout (the token's `exp`), which no heartbeat moves.
    pub lease_expires_at: Timestamp,
    /// Lease length granted; each heartbeat extends the lease by this much.
    pub lease_seconds: u32,
    /// Whether the seat is beyond the commit.
    pub is_overage: bool,
    /// An offline checkout: held until `lease_expires_at` or an early return, never
    /// heartbeated (since V2; version 1 leases are online).
    pub offline: bool,
}

impl Record for LeaseRecord {
    const NAME: &'static str = "lease";
    const VERSION: u8 = 2;

    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, crate::codec::CodecError> {
        match version {
            1 => {
                let v1: LeaseRecordV1 = crate::codec::decode_payload(payload, Self::NAME)?;
                Ok(LeaseRecord {
                    id: v1.id,
                    product_id: v1.product_id,
                    user: v1.user,
                    borrowed_at: v1.borrowed_at,
                    lease_expires_at: v1.lease_expires_at,
                    lease_seconds: v1.lease_seconds,
                    is_overage: v1.is_overage,
                    offline: false,
                })
            }
            version => Err(crate::codec::CodecError::UnknownVersion {
                record: Self::NAME,
                version,
            }),
        }
    }
}

/// [`LeaseRecord`] as version 1 stored it (before offline checkout).
#[derive(Deserialize)]
struct LeaseRecordV1 {
    id: BorrowId,
    product_id: String,
    user: String,
    borrowed_at: Timestamp,
    lease_expires_at: Timestamp,
    lease_seconds: u32,
    is_overage: bool,
}

/// One booked overage charge. Append-only; `hash` chains it to the previous charge of
/// the tenant so that either side can detect a rewritten ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// Position in the tenant's ledger, from 1.
    pub seq: u64,
    /// Charge id.
    pub id: String,
    /// Product id charged.
    pub product_id: String,
    /// Product name at booking time.
    pub product_name: String,
    /// The borrow that caused it.
    pub borrow_id: BorrowId,
    /// Who borrowed.
    pub user: String,
    /// Booking time.
    pub charged_at: Timestamp,
    /// Amount.
    pub amount: Money,
    /// `hash` of the previous charge (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over this charge's fields and `prev_hash`.
    pub hash: [u8; 32],
}
record!(ChargeRecord, "overage charge", version = 1);

/// Which request signatures a tenant requires on borrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignaturePolicy {
    /// No signature required.
    Off,
    /// v1 or v2 signatures accepted.
    V1,
    /// Only v2 signatures accepted.
    V2,
}

/// Tenant-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsRecord {
    /// Signature requirement on borrow.
    pub signature_policy: SignaturePolicy,
    /// Lease length when a borrow asks for none.
    pub default_lease_seconds: u32,
    /// Whether the status endpoints answer requests without credentials.
    pub anonymous_status: bool,
}
record!(SettingsRecord, "tenant settings", version = 1);

/// Customer-set restrictions on one pool (each `None` = the vendor's limit applies).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestrictionRecord {
    /// Product id.
    pub product_id: String,
    /// Lower seat total.
    pub total: Option<u32>,
    /// Lower overage allowance.
    pub max_overage: Option<u32>,
    /// Monthly overage spend cap.
    pub max_spend: Option<Money>,
    /// Seats one user may hold at once.
    pub max_per_user: Option<u32>,
}
record!(RestrictionRecord, "restriction", version = 1);

/// Month-to-date overage spend of one pool, updated in the same write as each charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRecord {
    /// Product id.
    pub product_id: String,
    /// UTC month as `yyyy * 100 + mm`.
    pub month: u32,
    /// Sum of charges booked this month.
    pub overage_cost: Money,
    /// Number of charges booked this month.
    pub overage_count: u64,
}
record!(SpendRecord, "spend counter", version = 1);

/// What a tenant portal user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserRole {
    /// Read-only: the tenant's status, borrows and charges.
    Viewer,
    /// Everything an admin-scope API key may do.
    Admin,
}

/// A tenant portal user (`POST /api/users`). Vendor portal users are the vendors
/// themselves ([`VendorRecord::password_hash`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Random id of this incarnation of the user: a session names it, so a user
    /// deleted and created again under the same name (or given a new password by an
    /// admin) does not revive old sessions.
    pub user_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Login name (lowercase).
    pub username: String,
    /// The password's hash: an argon2id PHC string, or a passlib `pbkdf2_sha256` string
    /// imported from the old license server (replaced by argon2id at the first login).
    /// `None` until an admin sets a password: such a user cannot log in.
    pub password_hash: Option<String>,
    /// Permission.
    pub role: UserRole,
    /// Creation time.
    pub created_at: Timestamp,
}

impl Record for UserRecord {
    const NAME: &'static str = "portal user";
    const VERSION: u8 = 2;

    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => decode_payload::<UserRecordV1>(payload, Self::NAME).map(UserRecord::from),
            _ => Err(CodecError::UnknownVersion {
                record: Self::NAME,
                version,
            }),
        }
    }
}

/// [`UserRecord`] as version 1 stored it: every user had an argon2id hash.
#[derive(Deserialize)]
struct UserRecordV1 {
    user_id: String,
    tenant_id: String,
    username: String,
    password_hash: String,
    role: UserRole,
    created_at: Timestamp,
}

impl From<UserRecordV1> for UserRecord {
    fn from(v1: UserRecordV1) -> Self {
        UserRecord {
            user_id: v1.user_id,
            tenant_id: v1.tenant_id,
            username: v1.username,
            password_hash: Some(v1.password_hash),
            role: v1.role,
            created_at: v1.created_at,
        }
    }
}

/// Whom a portal session authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionSubject {
    /// A vendor, on the vendor host.
    Vendor {
        /// Vendor id.
        vendor_id: String,
    },
    /// A tenant portal user, on its tenant's host.
    TenantUser {
        /// Tenant id.
        tenant_id: String,
        /// Login name.
        username: String,
        /// [`UserRecord::user_id`] at login.
        user_id: String,
    },
}

/// A portal session. Stored under a keyed digest of its token; the token itself lives
/// only in the client's cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Who is logged in.
    pub subject: SessionSubject,
    /// The host name (lowercase, no port) the session was issued on and is valid on.
    pub host: String,
    /// Login time.
    pub created_at: Timestamp,
    /// The session is refused from this instant.
    pub expires_at: Timestamp,
}
record!(SessionRecord, "portal session", version = 1);

/// The lookup entry of an API key imported from the old license server, stored under
/// the hex of the key's digest. The old server kept only the SHA-256 of each whole key
/// string, so an imported key has no `pmx_t_…` form to find it by: its
/// [`ApiKeyRecord`] (under its tenant and the file's key id) holds a keyed digest of
/// that SHA-256, and this entry leads from the key a client sends to that record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyKeyRecord {
    /// The key's tenant.
    pub tenant_id: String,
    /// The key's id (as in the old file, `key_<16 hex>`).
    pub key_id: String,
    /// The old server's environment label (`live`, `test`), if it had one.
    pub environment: Option<String>,
}
record!(LegacyKeyRecord, "imported api key", version = 1);

/// An OAuth 2.0 client of a vendor (the client-credentials grant, RFC 6749 §4.4): the
/// vendor's own programs exchange its id and secret for short-lived access tokens.
/// Only a keyed digest of the secret is stored; the secret is shown once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClientRecord {
    /// The client id (carries the vendor id, so that one read finds the record).
    pub client_id: String,
    /// Owning vendor.
    pub vendor_id: String,
    /// Human label.
    pub name: String,
    /// The scopes its tokens may carry, space-separated and in canonical order, as
    /// OAuth 2.0 writes them (the edge defines the names).
    pub scope: String,
    /// Keyed digest of the client secret.
    pub secret_digest: [u8; 32],
    /// Creation time.
    pub created_at: Timestamp,
    /// Revocation time; its tokens stop working at once.
    pub revoked_at: Option<Timestamp>,
}
record!(OAuthClientRecord, "oauth client", version = 1);

/// When a tenant API key was last used. Kept apart from [`ApiKeyRecord`] so that the
/// periodic write of usage never races with a revocation of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsageRecord {
    /// Latest successful authentication seen (coalesced, persisted periodically).
    pub last_used_at: Timestamp,
}
record!(KeyUsageRecord, "api key usage", version = 1);

/// Which request an idempotency key was used on (keys of different operations never
/// collide).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdempotentOperation {
    /// `POST /licenses/borrow`.
    Borrow,
    /// `POST /licenses/return`.
    Return,
}

impl IdempotentOperation {
    /// One byte for storage keys.
    pub fn tag(self) -> u8 {
        match self {
            IdempotentOperation::Borrow => b'b',
            IdempotentOperation::Return => b'r',
        }
    }
}

/// What the first request with an idempotency key achieved, replayed to retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdempotentOutcome {
    /// A seat was granted (the lease as it was at grant time).
    Borrowed {
        /// Borrow id.
        id: BorrowId,
        /// Tool (product) name at grant time.
        tool: String,
        /// Who borrowed.
        user: String,
        /// When granted.
        borrowed_at: Timestamp,
        /// Expiry at grant time.
        lease_expires_at: Timestamp,
        /// Whether the seat was beyond the commit.
        is_overage: bool,
    },
    /// A seat was returned.
    Returned {
        /// Borrow id returned.
        id: BorrowId,
        /// Tool (product) name at return time.
        tool: String,
    },
}

/// A remembered `Idempotency-Key`: written in the same atomic batch as the change it
/// acknowledges, kept for 24 hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The client's key, as sent.
    pub key: String,
    /// The operation it was used on.
    pub operation: IdempotentOperation,
    /// SHA-256 of the request's meaning; a retry must match it.
    pub fingerprint: [u8; 32],
    /// When the first request succeeded.
    pub created_at: Timestamp,
    /// What it achieved.
    pub outcome: IdempotentOutcome,
}
record!(IdempotencyRecord, "idempotency key", version = 1);

/// A v2 signature's nonce, written with the borrow it signed so that the same signed
/// request is refused after a restart; deleted once its timestamp has left the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceRecord {
    /// Vendor whose signing secret signed it.
    pub vendor_id: String,
    /// `X-Nonce` as sent.
    pub nonce: String,
    /// When a request with this nonce stops being accepted anyway (its signed
    /// timestamp plus the window).
    pub expires_at: Timestamp,
}
record!(NonceRecord, "signature nonce", version = 1);
/// What happened to a seat, as kept in the usage history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsageKind {
    /// A seat was granted.
    Borrow,
    /// A seat was returned by its holder.
    Return,
    /// A lease lapsed and its seat was freed.
    Expire,
}

/// One entry of a tenant's usage history: append-only, written with the lease change it
/// describes (just before it; a crash between the two is rolled back on load, see
/// `sled_store/seat_change.rs`), read back for usage reports. `in_use` makes peak
/// concurrency over any window exact without replaying the history from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Position in the tenant's usage history, from 1 (orders events of the same
    /// millisecond).
    pub seq: u64,
    /// When it happened (never earlier than the previous event of the tenant).
    pub at: Timestamp,
    /// Product id of the pool.
    pub product_id: String,
    /// What happened.
    pub kind: UsageKind,
    /// The borrow concerned.
    pub borrow_id: BorrowId,
    /// Who holds (held) the seat.
    pub user: String,
    /// Whether the seat is beyond the commit.
    pub is_overage: bool,
    /// Charge booked by this event (an overage borrow), zero otherwise.
    pub amount: Money,
    /// Seats of the pool in use right after the event.
    pub in_use: u32,
}
record!(UsageRecord, "usage event", version = 1);

/// Where a customer's request for more seats stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    /// Waiting for the vendor.
    Pending,
    /// Granted; the package now has the limits in `applied`.
    Approved,
    /// Declined; nothing changed.
    Rejected,
}

/// A customer's request for higher limits on one package, answered by the vendor.
/// Kept in the tenant's keyspace so that approving it and changing the package are one
/// atomic write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoreRequestRecord {
    /// Request id (`<tenant>.<random hex>`: the vendor host finds the tenant from it).
    pub id: String,
    /// Product id of the pool.
    pub product_id: String,
    /// Product (tool) name when the request was made.
    pub product_name: String,
    /// Package the request is about.
    pub package_id: String,
    /// Vendor that answers it.
    pub vendor_id: String,
    /// Seats in total asked for.
    pub requested_total: Option<u32>,
    /// Overage allowance asked for.
    pub requested_overage: Option<u32>,
    /// The customer's note to the vendor.
    pub message: Option<String>,
    /// The vendor's limits when the request was made: `(total, commit_qty, max_overage)`.
    pub limits_before: (u32, u32, u32),
    /// When it was made.
    pub created_at: Timestamp,
    /// Pending, approved or rejected.
    pub status: RequestStatus,
    /// When the vendor answered.
    pub decided_at: Option<Timestamp>,
    /// The vendor's note with the answer.
    pub decision_note: Option<String>,
    /// Limits the approval set: `(total, commit_qty, max_overage)`.
    pub applied: Option<(u32, u32, u32)>,
}
record!(MoreRequestRecord, "request for more seats", version = 1);

/// One entry of the sled store's write-ahead journal: the records one tenant write
/// changed in the `tenant_state` tree, in the order they were applied. Replaying it
/// puts or removes each key; an entry the database already holds (its `seq` is not
/// above the tenant's replay mark) is skipped, so that replaying it cannot undo a
/// later write the database holds too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntryRecord {
    /// The tenant that wrote it.
    pub tenant: String,
    /// Position among all entries of this store, growing across restarts: a tenant's
    /// entries have increasing `seq` in the order it wrote them.
    pub seq: u64,
    /// `(key, value)`: `Some` puts the value, `None` removes the key.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}
record!(JournalEntryRecord, "journal entry", version = 1);

/// One event of a tenant's webhook outbox. Written in the same atomic write as the change
/// that caused it (coalesced denials: by the tenant actor's timer), read in order by the
/// delivery worker, deleted by the actor once every endpoint that wants it has it (or
/// when the outbox is full). Append-only: every insert has a new `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Position in the tenant's outbox, from 1: the order of delivery.
    pub seq: u64,
    /// The event's id, what receivers de-duplicate on (`evt_` and 32 hex digits).
    pub id: String,
    /// Event type (`overage.charged`, `borrow.denied`, …).
    pub kind: String,
    /// When the event happened.
    pub created_at: Timestamp,
    /// The event's `data` object, as compact JSON (its fields depend on the type).
    pub data: String,
}
record!(OutboxRecord, "outbox event", version = 1);

/// A vendor's webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointRecord {
    /// Endpoint id (`wh_` and 32 hex digits; unique across vendors).
    pub id: String,
    /// The vendor it belongs to.
    pub vendor_id: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    /// Event types it receives.
    pub events: Vec<String>,
    /// The signing secret, sealed: it is needed to sign every delivery.
    pub secret: SealedSecret,
    /// Creation time; the endpoint receives events from then on.
    pub created_at: Timestamp,
    /// Set while deliveries are stopped: since when, and why (shown in the portal).
    pub disabled: Option<(Timestamp, String)>,
}
record!(WebhookEndpointRecord, "webhook endpoint", version = 1);

/// How far one endpoint has got in one tenant's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCursorRecord {
    /// Every event of the tenant up to this sequence number was delivered (or was of a
    /// type the endpoint does not receive).
    pub delivered_seq: u64,
}
record!(WebhookCursorRecord, "webhook cursor", version = 1);

/// Where one delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Not delivered yet; retried at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after failing for the retry period; the endpoint was disabled.
    Failed,
}

/// One event's delivery to one endpoint: what the portal shows, and what a resend sends
/// again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveryRecord {
    /// Delivery id within its endpoint: `<tenant_id>.<seq>`.
    pub id: String,
    /// The tenant whose event it is.
    pub tenant_id: String,
    /// The event's position in the tenant's outbox.
    pub seq: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub kind: String,
    /// The JSON body as delivered (a resend sends it again with a new signature).
    pub body: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far (resends included).
    pub attempts: u32,
    /// The first attempt: the retry period runs from here.
    pub first_attempt_at: Timestamp,
    /// The latest attempt.
    pub last_attempt_at: Timestamp,
    /// When it is tried again (pending deliveries only).
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the latest answer, if one came.
    pub response_status: Option<u16>,
    /// Why the latest attempt failed, if it did.
    pub error: Option<String>,
    /// When the receiver first answered 2xx.
    pub delivered_at: Option<Timestamp>,
}
record!(WebhookDeliveryRecord, "webhook delivery", version = 1);
mod offline_keys;
pub use offline_keys::{OfflineKeyRecord, OfflineKeySetRecord};
