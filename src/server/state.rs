//! Shared application state handed to every handler. It composes the rooms below the
//! server; the edge and auth read it through their traits ([`Edge`], [`AuthContext`]).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use permetrix_actors::Registry;
use permetrix_storage::records::Lifecycle;
use permetrix_storage::{Platform, Timestamp, VendorId};
use secrecy::SecretSlice;

use crate::auth::offline_keys::OfflineKeys;
use crate::auth::secrets::ServerSecrets;
use crate::auth::security::SecurityState;
use crate::auth::streams::StreamRegistry;
use crate::auth::{AuthContext, MetricsToken, OperatorToken};
use crate::http::Edge;
use crate::http::custom_hosts::CustomHosts;
use crate::http::host::BaseDomains;
use crate::http::limits::Limits;
use crate::http::routing::Routing;
use crate::metrics::Metrics;
use crate::server::shutdown::Shutdown;
use crate::webhooks::Webhooks;

/// Everything a handler may need.
pub struct AppState {
    /// Tenant actors.
    pub registry: Registry,
    /// Platform records.
    pub platform: Platform,
    /// Sealing key and pepper.
    pub secrets: Arc<ServerSecrets>,
    /// Operator token verifier.
    pub operator: OperatorToken,
    /// Base domains for host routing and links.
    pub bases: BaseDomains,
    /// The tenants' custom hosts, for host routing.
    pub custom_hosts: CustomHosts,
    /// Unsealed vendor signing secrets.
    pub signing_keys: SigningKeyCache,
    /// Unsealed keys that sign vendors' offline tokens.
    pub offline_keys: OfflineKeys,
    /// Deadline of fan-out queries.
    pub fanout_deadline: Duration,
    /// Sessions, limits, rate limiters, login throttles, key usage.
    pub security: SecurityState,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Notice of a graceful shutdown, for live event streams.
    pub shutdown: Shutdown,
    /// Webhook endpoints and their delivery.
    pub webhooks: Webhooks,
    /// How requests reach tenants owned by other brokers.
    pub routing: Routing,
    /// Open event streams by credential: ended with it, capped.
    pub streams: StreamRegistry,
    /// `PERMETRIX_METRICS_TOKEN`, which reads `/metrics` only.
    pub metrics_token: Option<MetricsToken>,
}

/// A vendor's signing secrets that verify now.
struct CachedKeys {
    keys: Arc<Vec<SecretSlice<u8>>>,
    /// When the set changes by itself (end of a rotation overlap).
    valid_until: Option<Timestamp>,
}

/// Unsealed signing secrets, so that a signed borrow costs one HMAC and no decryption.
#[derive(Default)]
pub struct SigningKeyCache {
    map: DashMap<String, CachedKeys>,
    /// Bumped by every [`SigningKeyCache::forget`], so that a load that read the store
    /// before a rotation cannot cache the old secrets after it.
    generation: AtomicU64,
}

impl SigningKeyCache {
    /// Forgets a vendor's secrets (after a rotation or deletion). Call after the
    /// change is written.
    pub fn forget(&self, vendor: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.map.remove(vendor);
    }

    /// Forgets every vendor's secrets (another broker may have changed any of them).
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.map.clear();
    }
}

impl AppState {
    /// The signing secrets of `vendor` that verify now (empty if none).
    pub fn signing_secrets(&self, vendor: &str) -> Arc<Vec<SecretSlice<u8>>> {
        let now = self.registry.clock().now();
        if let Some(hit) = self.signing_keys.map.get(vendor)
            && hit.valid_until.is_none_or(|until| now < until)
        {
            return Arc::clone(&hit.keys);
        }
        let generation = self.signing_keys.generation.load(Ordering::SeqCst);
        let loaded = self.load_signing_secrets(vendor, now);
        let keys = Arc::clone(&loaded.keys);
        self.signing_keys.map.insert(vendor.to_owned(), loaded);
        if self.signing_keys.generation.load(Ordering::SeqCst) != generation {
            // A rotation raced with this load: what was read may be stale.
            self.signing_keys.map.remove(vendor);
        }
        keys
    }

    fn load_signing_secrets(&self, vendor: &str, now: Timestamp) -> CachedKeys {
        let record = VendorId::parse(vendor)
            .ok()
            .and_then(|id| match self.platform.vendor(&id) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(vendor, error = %e, "reading vendor signing secret failed");
                    None
                }
            })
            .filter(|r| r.lifecycle == Lifecycle::Active);
        let Some(record) = record else {
            return CachedKeys {
                keys: Arc::new(Vec::new()),
                valid_until: Some(now),
            };
        };
        let mut keys = Vec::with_capacity(2);
        let mut valid_until = None;
        match self.secrets.unseal(&record.signing_secret) {
            Ok(k) => keys.push(k),
            Err(e) => tracing::error!(vendor, error = %e, "cannot unseal vendor signing secret"),
        }
        if let Some((sealed, until)) = &record.previous_signing_secret
            && now < *until
        {
            if let Ok(k) = self.secrets.unseal(sealed) {
                keys.push(k);
            }
            valid_until = Some(*until);
        }
        CachedKeys {
            keys: Arc::new(keys),
            valid_until,
        }
    }
}

impl AuthContext for AppState {
    fn platform(&self) -> &Platform {
        &self.platform
    }
    fn secrets(&self) -> &ServerSecrets {
        &self.secrets
    }
    fn security(&self) -> &SecurityState {
        &self.security
    }
    fn operator(&self) -> &OperatorToken {
        &self.operator
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Edge for AppState {
    fn bases(&self) -> &BaseDomains {
        &self.bases
    }
    fn custom_hosts(&self) -> &CustomHosts {
        &self.custom_hosts
    }
    fn limits(&self) -> &Limits {
        &self.security.limits
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn routing(&self) -> &Routing {
        &self.routing
    }
}
