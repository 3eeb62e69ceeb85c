//! Tenants on their own domains: a custom host (`licenses.acme.com`) is tenant context
//! for its tenant, exactly like `<tenant>.<base>`.
//!
//! [`CustomHosts`] owns the map from host name to tenant that host routing reads for
//! every host under no base domain, in memory, without a store read. It is loaded from
//! the store's host index at start and changed only by [`CustomHosts::change`], which
//! writes the store, waits until the write is durable and then updates the map, all
//! before the change is answered: a removed host stops routing with the reply. One lock
//! serialises changes, so the map follows the store's order exactly.
//!
//! With several brokers on one database, each holds a copy of the map; refreshing it
//! from the database is [`CustomHosts::reload`].
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use permetrix_storage::{CustomHost, Durable, Platform, StorageError, TenantId};

use super::error::ApiError;
use super::host::BaseDomains;

/// How many custom hosts a tenant may have unless `--max-custom-hosts` says otherwise.
pub const DEFAULT_MAX_PER_TENANT: usize = 10;

/// Host name → tenant.
type HostMap = HashMap<String, TenantId>;

/// The tenants' custom hosts, as routing sees them. See the module documentation.
pub struct CustomHosts {
    /// Replaced whole on every change: a lookup never takes a lock, and a tenant's old
    /// and new hosts are never both half visible.
    map: ArcSwap<HostMap>,
    /// Held from a change's store write until the map shows it.
    changes: tokio::sync::Mutex<()>,
    /// The store incarnation the map was read under. A store reopened after a failure
    /// may have kept or lost a write whose durability failed; the next change reloads.
    incarnation: AtomicU64,
    max_per_tenant: usize,
}

impl CustomHosts {
    /// An empty map; [`CustomHosts::reload`] fills it.
    pub fn new(max_per_tenant: usize) -> Self {
        CustomHosts {
            map: ArcSwap::from_pointee(HostMap::new()),
            changes: tokio::sync::Mutex::new(()),
            incarnation: AtomicU64::new(0),
            max_per_tenant,
        }
    }

    /// The tenant a host name (lowercase, no port, no trailing dot) routes to.
    pub fn tenant_of(&self, host: &str) -> Option<TenantId> {
        self.map.load().get(host).cloned()
    }

    /// How many custom hosts a tenant may have.
    pub fn max_per_tenant(&self) -> usize {
        self.max_per_tenant
    }

    /// Replaces the map with the store's host index; the number of hosts.
    pub fn reload(&self, platform: &Platform) -> Result<usize, StorageError> {
        // Read first: a reopen during the read makes the next change read again.
        let incarnation = platform.store().incarnation();
        let mut map = HostMap::new();
        for entry in platform.custom_hosts()? {
            let tenant = TenantId::parse(&entry.tenant_id).map_err(|e| {
                StorageError::Foreign(format!("corrupt custom host '{}': {e}", entry.host))
            })?;
            map.insert(entry.host, tenant);
        }
        let hosts = map.len();
        self.map.store(Arc::new(map));
        self.incarnation.store(incarnation, Ordering::SeqCst);
        Ok(hosts)
    }

    /// Parses a vendor's list of custom hosts: each a valid DNS name (400
    /// `invalid_host`), none a base domain, under one or above one (400
    /// `reserved_host`: those are the platform's own names), at most
    /// [`CustomHosts::max_per_tenant`] (400 `too_many_hosts`). Duplicates count once;
    /// the result is sorted.
    pub fn admit(&self, bases: &BaseDomains, raw: &[String]) -> Result<Vec<CustomHost>, ApiError> {
        let mut hosts = BTreeSet::new();
        for name in raw {
            let host = CustomHost::parse(name).map_err(|e| ApiError::BadRequest {
                code: "invalid_host",
                detail: e.to_string(),
            })?;
            if let Some(base) = bases.as_slice().iter().find(|b| overlaps(&host, b)) {
                return Err(ApiError::BadRequest {
                    code: "reserved_host",
                    detail: format!(
                        "'{host}' is the base domain {base}, or a name under or above it: \
                         those are the platform's own hosts; use a name of the customer's \
                         own domain"
                    ),
                });
            }
            hosts.insert(host);
        }
        if hosts.len() > self.max_per_tenant {
            return Err(ApiError::BadRequest {
                code: "too_many_hosts",
                detail: format!(
                    "a tenant may have at most {} custom hosts; {} were given",
                    self.max_per_tenant,
                    hosts.len()
                ),
            });
        }
        Ok(hosts.into_iter().collect())
    }

    /// Makes the store write `write` that leaves `tenant` with exactly the custom hosts
    /// `hosts` (creating the tenant, replacing its hosts, deleting it with none), waits
    /// until it is durable and updates the map. False if `write` found no tenant to
    /// change (it answered `None`).
    pub async fn change(
        &self,
        platform: &Platform,
        tenant: &TenantId,
        hosts: &[CustomHost],
        write: impl FnOnce() -> Result<Option<Durable>, StorageError>,
    ) -> Result<bool, StorageError> {
        let _serialised = self.changes.lock().await;
        if platform.store().incarnation() != self.incarnation.load(Ordering::SeqCst) {
            self.reload(platform)?;
        }
        let Some(durable) = write()? else {
            return Ok(false);
        };
        durable.wait().await?;
        let mut map = HostMap::clone(&self.map.load());
        map.retain(|_, owner| owner != tenant);
        map.extend(
            hosts
                .iter()
                .map(|h| (h.as_str().to_owned(), tenant.clone())),
        );
        self.map.store(Arc::new(map));
        Ok(true)
    }
}

/// Whether `host` is `base`, a name under it, or a name above it (the domain the base
/// itself belongs to).
fn overlaps(host: &CustomHost, base: &str) -> bool {
    let host = host.as_str();
    let below = |name: &str, parent: &str| {
        name.strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
    };
    host == base || below(host, base) || below(base, host)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use permetrix_storage::records::TenantRecord;
    use permetrix_storage::{SledConfig, SledStore, Timestamp, test_records};

    use super::*;
    use crate::http::host::HostContext;

    fn bases() -> BaseDomains {
        BaseDomains::new(["localhost".to_string(), "permetrix.fly.dev".to_string()])
    }

    fn names(hosts: &[&str]) -> Vec<String> {
        hosts.iter().map(|h| (*h).to_owned()).collect()
    }

    fn refusal(hosts: &CustomHosts, raw: &[&str]) -> &'static str {
        hosts.admit(&bases(), &names(raw)).unwrap_err().code()
    }

    #[test]
    fn admits_dns_names_of_the_customers_own_domains() {
        let hosts = CustomHosts::new(2);
        let admitted = hosts
            .admit(
                &bases(),
                &names(&["Licenses.ACME.com.", "lm.acme.com", "licenses.acme.com"]),
            )
            .unwrap();
        let admitted: Vec<&str> = admitted.iter().map(CustomHost::as_str).collect();
        assert_eq!(admitted, ["licenses.acme.com", "lm.acme.com"]);
        // A label that merely ends like a base domain is not under it.
        assert!(hosts.admit(&bases(), &names(&["notlocalhost.com"])).is_ok());
        assert!(
            hosts
                .admit(&bases(), &names(&["evilpermetrix.fly.dev"]))
                .is_ok()
        );

        for raw in ["*.acme.com", "10.0.0.1", "acme", "bücher.de", "a..b"] {
            assert_eq!(refusal(&hosts, &[raw]), "invalid_host", "{raw}");
        }
        for raw in [
            "permetrix.fly.dev",
            "vendor.permetrix.fly.dev",
            "acme.permetrix.fly.dev.",
            "a.b.localhost",
            "fly.dev",
        ] {
            assert_eq!(refusal(&hosts, &[raw]), "reserved_host", "{raw}");
        }
        assert_eq!(
            refusal(&hosts, &["a.acme.com", "b.acme.com", "c.acme.com"]),
            "too_many_hosts"
        );
    }

    fn store() -> (tempfile::TempDir, Platform) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        (dir, Platform::new(Arc::new(store)))
    }

    fn classify(hosts: &CustomHosts, host: &str) -> HostContext {
        bases().classify_with(host, |name| hosts.tenant_of(name))
    }

    #[actix_rt::test]
    async fn routing_follows_every_change_and_a_reload_reads_the_store() {
        let (_dir, platform) = store();
        let hosts = CustomHosts::new(DEFAULT_MAX_PER_TENANT);
        let acme = TenantId::parse("acme").unwrap();
        let admitted = hosts
            .admit(&bases(), &names(&["licenses.acme.com"]))
            .unwrap();
        let record = TenantRecord {
            custom_hosts: names(&["licenses.acme.com"]),
            ..test_records::tenant("acme", Timestamp::from_secs(1))
        };
        let key = test_records::admin_key("acme", "k1", Timestamp::from_secs(1));
        let created = hosts
            .change(&platform, &acme, &admitted, || {
                platform.create_tenant(&record, &key).map(Some)
            })
            .await;
        assert!(created.unwrap());
        let tenant = HostContext::Tenant(acme.clone());
        assert_eq!(classify(&hosts, "LICENSES.acme.com.:443"), tenant);
        assert_eq!(classify(&hosts, "other.acme.com"), HostContext::Main);
        // Base-domain rules come first and are unchanged.
        assert_eq!(classify(&hosts, "acme.localhost"), tenant);

        // Another copy reads the same map from the store.
        let copy = CustomHosts::new(DEFAULT_MAX_PER_TENANT);
        assert_eq!(copy.reload(&platform).unwrap(), 1);
        assert_eq!(classify(&copy, "licenses.acme.com"), tenant);

        let moved = hosts.admit(&bases(), &names(&["lm.acme.com"])).unwrap();
        let changed = hosts
            .change(&platform, &acme, &moved, || {
                platform.set_custom_hosts(&acme, &moved)
            })
            .await;
        assert!(changed.unwrap());
        assert_eq!(classify(&hosts, "licenses.acme.com"), HostContext::Main);
        assert_eq!(classify(&hosts, "lm.acme.com"), tenant);

        // A refused write leaves the map as it was.
        let beta = TenantId::parse("beta").unwrap();
        let refused = hosts
            .change(&platform, &beta, &moved, || {
                platform.set_custom_hosts(&beta, &moved)
            })
            .await;
        assert!(!refused.unwrap());
        assert_eq!(classify(&hosts, "lm.acme.com"), tenant);

        let deleted = hosts
            .change(&platform, &acme, &[], || platform.soft_delete_tenant(&acme))
            .await;
        assert!(deleted.unwrap());
        assert_eq!(classify(&hosts, "lm.acme.com"), HostContext::Main);
        assert_eq!(copy.reload(&platform).unwrap(), 0);
    }
}
