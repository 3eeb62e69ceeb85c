//! The server's defensive state: session settings, request limits, rate limiters,
//! login throttles, API-key usage, the slots that bound argon2 work (shared fairly
//! between tenants), and the caps on keys and users per tenant.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use permetrix_storage::{TenantId, VendorId};
use tokio::sync::{Mutex, MutexGuard};

use super::fair_slots::{FairSlots, Slot};
use super::key_cache::KeyCache;
use super::key_usage::KeyUsage;
use super::password;
use super::session::SessionConfig;
use super::throttle::FailureThrottle;
use crate::http::error::ApiError;
use crate::http::limits::Limits;
use crate::http::rate_limit::KeyedLimiter;

/// Locks that make "count, then create" of keys and users one step per tenant (tenants
/// share a lock when their ids hash alike: fixed memory).
const CREATION_LOCKS: usize = 64;
/// Verified API keys kept in memory (~250 bytes each).
const KEY_CACHE_ENTRIES: usize = 100_000;
/// Slots of each keyed limiter (8 bytes each) and throttle (24 bytes each).
const LIMITER_SLOTS: usize = 1 << 16;
const THROTTLE_SLOTS: usize = 1 << 14;
/// argon2id computations at once (19 MiB each).
const ARGON_SLOTS: usize = 4;
/// Longest wait for an argon2 slot before answering 503.
const ARGON_WAIT: Duration = Duration::from_secs(10);
/// Failures are forgotten after this long without one.
const FORGET_FAILURES: Duration = Duration::from_secs(3600);
/// Longest block after repeated failures.
const MAX_LOGIN_BLOCK: Duration = Duration::from_secs(15 * 60);

/// Defences shared by every request.
pub struct SecurityState {
    /// How sessions are issued.
    pub sessions: SessionConfig,
    /// Size, time and rate limits.
    pub limits: Limits,
    key_management: KeyedLimiter,
    tenant_management: KeyedLimiter,
    login_per_user: KeyedLimiter,
    login_per_address: KeyedLimiter,
    user_failures: FailureThrottle,
    address_failures: FailureThrottle,
    /// `last_used_at` of API keys, pending persistence.
    pub key_usage: KeyUsage,
    /// API keys verified before, so that a request reads no key from the store.
    pub key_cache: KeyCache,
    argon_slots: FairSlots,
    creation_locks: Box<[Mutex<()>]>,
    creation_hasher: RandomState,
}

fn too_many(code: &'static str, what: &str, wait: Duration) -> ApiError {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    ApiError::TooManyRequests {
        code,
        detail: format!("{what}; retry in {secs} s"),
        retry_after: Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX)),
    }
}

impl SecurityState {
    /// State for the given settings.
    pub fn new(sessions: SessionConfig, limits: Limits) -> Self {
        SecurityState {
            key_management: KeyedLimiter::new(limits.key_management, LIMITER_SLOTS),
            tenant_management: KeyedLimiter::new(limits.tenant_management, LIMITER_SLOTS),
            login_per_user: KeyedLimiter::new(limits.login_per_user, LIMITER_SLOTS),
            login_per_address: KeyedLimiter::new(limits.login_per_address, LIMITER_SLOTS),
            user_failures: FailureThrottle::new(
                limits.free_failures_per_user,
                MAX_LOGIN_BLOCK,
                FORGET_FAILURES,
                THROTTLE_SLOTS,
            ),
            address_failures: FailureThrottle::new(
                limits.free_failures_per_address,
                MAX_LOGIN_BLOCK,
                FORGET_FAILURES,
                THROTTLE_SLOTS,
            ),
            key_usage: KeyUsage::new(1_000_000),
            key_cache: KeyCache::new(KEY_CACHE_ENTRIES),
            argon_slots: FairSlots::new(ARGON_SLOTS),
            creation_locks: (0..CREATION_LOCKS).map(|_| Mutex::new(())).collect(),
            creation_hasher: RandomState::new(),
            sessions,
            limits,
        }
    }

    /// Takes one key-management request from the allowance of `credential`.
    pub fn limit_key_management(
        &self,
        credential: &(impl std::hash::Hash + ?Sized),
        now_ms: i64,
    ) -> Result<(), ApiError> {
        self.key_management
            .check(credential, now_ms)
            .map_err(|wait| {
                too_many(
                    "rate_limited",
                    "too many key or user management requests with this credential",
                    wait,
                )
            })
    }

    /// Takes one key- or user-management request of `credential` at `tenant`: from the
    /// credential's allowance, then from the tenant's, which all its credentials share
    /// (so that minting admin keys brings no fresh allowance).
    pub fn limit_tenant_management(
        &self,
        tenant: &TenantId,
        credential: &(impl std::hash::Hash + ?Sized),
        now_ms: i64,
    ) -> Result<(), ApiError> {
        self.limit_key_management(credential, now_ms)?;
        self.tenant_management
            .check(tenant.as_str(), now_ms)
            .map_err(|wait| {
                too_many(
                    "rate_limited",
                    "too many key or user management requests for this tenant",
                    wait,
                )
            })
    }

    /// Holds creation of keys and users at `tenant` to one at a time, so that the caps
    /// ([`Limits::max_keys_per_tenant`], [`Limits::max_users_per_tenant`]) are checked
    /// and kept in one step.
    pub async fn creation_lock(&self, tenant: &TenantId) -> MutexGuard<'_, ()> {
        self.creation_stripe(tenant.as_str()).lock().await
    }

    /// Holds creation of a vendor's OAuth clients to one at a time, so that their cap
    /// is checked and kept in one step.
    pub async fn vendor_creation_lock(&self, vendor: &VendorId) -> MutexGuard<'_, ()> {
        self.creation_stripe(&("vendor", vendor.as_str()))
            .lock()
            .await
    }

    fn creation_stripe(&self, owner: &(impl std::hash::Hash + ?Sized)) -> &Mutex<()> {
        let stripe = self.creation_hasher.hash_one(owner) as usize % CREATION_LOCKS;
        &self.creation_locks[stripe]
    }

    /// Password hashes (logins, new users) waiting for a slot now.
    pub fn password_work_waiting(&self) -> usize {
        self.argon_slots.waiting()
    }

    /// Admits a login attempt of `user` (a user on one host) from `addr`, or says how
    /// long to wait. Says the same whether or not the user exists.
    pub fn admit_login(
        &self,
        user: &str,
        addr: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let blocked = self
            .user_failures
            .blocked(user, now_ms)
            .max(addr.and_then(|a| self.address_failures.blocked(a, now_ms)));
        if let Some(wait) = blocked {
            return Err(too_many(
                "login_throttled",
                "too many failed logins for this user or from this address",
                wait,
            ));
        }
        let limited = |r: Result<(), Duration>| {
            r.map_err(|wait| too_many("rate_limited", "too many login attempts", wait))
        };
        limited(self.login_per_user.check(user, now_ms))?;
        if let Some(a) = addr {
            limited(self.login_per_address.check(a, now_ms))?;
        }
        Ok(())
    }

    /// Records a failed login.
    pub fn login_failed(&self, user: &str, addr: Option<IpAddr>, now_ms: i64) {
        self.user_failures.failed(user, now_ms);
        if let Some(a) = addr {
            self.address_failures.failed(a, now_ms);
        }
    }

    /// Records a successful login: the user's failures are cleared.
    pub fn login_succeeded(&self, user: &str) {
        self.user_failures.clear(user);
    }

    /// A hashing slot for work of `party` (a tenant, or the vendor host), shared fairly
    /// between parties.
    async fn argon_slot(&self, party: &str) -> Result<Slot, ApiError> {
        self.argon_slots
            .acquire(party, ARGON_WAIT)
            .await
            .ok_or_else(|| ApiError::Unavailable {
                code: "busy",
                detail: "the server is busy checking passwords; retry shortly".into(),
                retry_after: Duration::from_secs(1),
            })
    }

    /// Verifies a password of `party` (see [`SecurityState::hash_password`]) off the
    /// request thread against the stored hash of either kind; `None` verifies against a
    /// dummy hash so that unknown users cost as much as known ones.
    pub async fn verify_password(
        &self,
        party: &str,
        password: String,
        hash: Option<String>,
    ) -> Result<password::Verdict, ApiError> {
        let _slot = self.argon_slot(party).await?;
        actix_web::web::block(move || password::verify_stored(&password, hash.as_deref()))
            .await
            .map_err(ApiError::internal)
    }

    /// Hashes a password off the request thread, in a slot shared fairly with other
    /// parties: `party` is whose work it is (the tenant; the vendor host's logins are
    /// one party).
    pub async fn hash_password(&self, party: &str, password: String) -> Result<String, ApiError> {
        let _slot = self.argon_slot(party).await?;
        actix_web::web::block(move || password::hash(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }
}
