//! The server's defensive state: session settings, request limits, rate limiters,
//! login throttles, API-key usage, and the slots that bound argon2 work.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::key_usage::KeyUsage;
use super::password;
use super::session::SessionConfig;
use super::throttle::FailureThrottle;
use crate::http::error::ApiError;
use crate::http::limits::Limits;
use crate::http::rate_limit::KeyedLimiter;

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
    login_per_user: KeyedLimiter,
    login_per_address: KeyedLimiter,
    user_failures: FailureThrottle,
    address_failures: FailureThrottle,
    /// `last_used_at` of API keys, pending persistence.
    pub key_usage: KeyUsage,
    argon_slots: Arc<Semaphore>,
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
            argon_slots: Arc::new(Semaphore::new(ARGON_SLOTS)),
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

    async fn argon_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let busy = || ApiError::Unavailable {
            code: "busy",
            detail: "the server is busy checking passwords; retry shortly".into(),
            retry_after: Duration::from_secs(1),
        };
        tokio::time::timeout(ARGON_WAIT, Arc::clone(&self.argon_slots).acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }

    /// Verifies a password off the request thread; `None` verifies against a dummy hash
    /// so that unknown users cost as much as known ones.
    pub async fn verify_password(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let _slot = self.argon_slot().await?;
        actix_web::web::block(move || password::verify(&password, hash.as_deref()))
            .await
            .map_err(ApiError::internal)
    }

    /// Hashes a password off the request thread.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let _slot = self.argon_slot().await?;
        actix_web::web::block(move || password::hash(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }
}
