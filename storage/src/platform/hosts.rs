//! Custom hosts: the index from a tenant's own host names to the tenant.
//!
//! A tenant's hosts are listed twice, in one atomic write: in its [`crate::records::TenantRecord`] (what
//! the vendor sees) and as one [`CustomHostRecord`] per host (what routing loads). The
//! index is keyed by the host name and written with inserts, so a host can belong to
//! one tenant only, whatever the backend: a second claim fails the whole write. A
//! deleted tenant releases its hosts (see `soft_delete_tenant`).
use super::{Platform, Stored, delete, insert_at, put};
use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::records::{CustomHostRecord, Lifecycle};
use crate::{CustomHost, Durable, StorageError, TenantId};

impl Stored for CustomHostRecord {
    const TABLE: Table = Table::CustomHosts;
}

/// The index writes that take `tenant` from the hosts `before` to the hosts `after`.
pub(super) fn index_writes<'a>(
    tenant: &str,
    before: &'a [String],
    after: &'a [String],
) -> Vec<PlatformWrite<'a>> {
    let removed = before
        .iter()
        .filter(|h| !after.contains(h))
        .map(|h| delete::<CustomHostRecord>(PlatformKey::new(h)));
    let added = after.iter().filter(|h| !before.contains(h)).map(|h| {
        let entry = CustomHostRecord {
            host: h.clone(),
            tenant_id: tenant.to_owned(),
        };
        insert_at(PlatformKey::new(h), &entry)
    });
    removed.chain(added).collect()
}

impl Platform {
    /// Every custom host with the tenant it routes to, in host order.
    pub fn custom_hosts(&self) -> Result<Vec<CustomHostRecord>, StorageError> {
        self.records(None)
    }

    /// Replaces the custom hosts of a live tenant (duplicates count once): its record
    /// and the host index change in one atomic write.
    /// [`StorageError::AlreadyExists`] (table `custom_hosts`) if a host is another
    /// tenant's; `None` if there is no live tenant `id`.
    pub fn set_custom_hosts(
        &self,
        id: &TenantId,
        hosts: &[CustomHost],
    ) -> Result<Option<Durable>, StorageError> {
        let Some(mut tenant) = self
            .tenant(id)?
            .filter(|t| t.lifecycle == Lifecycle::Active)
        else {
            return Ok(None);
        };
        let before = std::mem::replace(&mut tenant.custom_hosts, CustomHost::sorted_names(hosts));
        let mut writes = vec![put(&tenant)];
        writes.extend(index_writes(
            &tenant.tenant_id,
            &before,
            &tenant.custom_hosts,
        ));
        self.apply(&writes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::TenantRecord;
    use crate::{Timestamp, test_records};

    fn hosts(names: &[&str]) -> Vec<CustomHost> {
        names
            .iter()
            .map(|h| CustomHost::parse(h).unwrap())
            .collect()
    }

    fn create(platform: &Platform, id: &str, custom: &[&str]) -> Result<Durable, StorageError> {
        let tenant = TenantRecord {
            custom_hosts: CustomHost::sorted_names(&hosts(custom)),
            ..test_records::tenant(id, Timestamp::from_secs(1))
        };
        let key = test_records::admin_key(id, "k1", Timestamp::from_secs(1));
        platform.create_tenant(&tenant, &key)
    }

    /// The index as `(host, tenant)` pairs.
    fn index(platform: &Platform) -> Vec<(String, String)> {
        let entries = platform.custom_hosts().unwrap();
        entries.into_iter().map(|e| (e.host, e.tenant_id)).collect()
    }

    fn listed(platform: &Platform, id: &TenantId) -> Vec<String> {
        platform.tenant(id).unwrap().unwrap().custom_hosts
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let owned = pairs
            .iter()
            .map(|(h, t)| ((*h).to_owned(), (*t).to_owned()));
        owned.collect()
    }

    #[tokio::test]
    async fn a_host_belongs_to_one_tenant_and_moves_with_its_record() {
        let (_dir, platform) = platform();
        let (acme, beta) = (
            TenantId::parse("acme").unwrap(),
            TenantId::parse("beta").unwrap(),
        );
        create(&platform, "acme", &["b.acme.com", "a.acme.com"])
            .unwrap()
            .wait()
            .await
            .unwrap();
        create(&platform, "beta", &[]).unwrap();
        assert_eq!(listed(&platform, &acme), ["a.acme.com", "b.acme.com"]);
        assert_eq!(
            index(&platform),
            pairs(&[("a.acme.com", "acme"), ("b.acme.com", "acme")])
        );

        // A claim of a taken host fails as a whole: beta gets nothing, acme keeps it.
        let taken = platform.set_custom_hosts(&beta, &hosts(&["beta.com", "b.acme.com"]));
        assert!(taken.is_err_and(|e| e.is_host_taken()));
        assert!(listed(&platform, &beta).is_empty());
        let again = create(&platform, "gamma", &["a.acme.com"]);
        assert!(again.is_err_and(|e| e.is_host_taken()));
        assert!(
            platform
                .tenant(&TenantId::parse("gamma").unwrap())
                .unwrap()
                .is_none()
        );

        // Replacing keeps, removes and adds; a duplicate counts once.
        let set = hosts(&["c.acme.com", "b.acme.com", "c.acme.com"]);
        platform.set_custom_hosts(&acme, &set).unwrap().unwrap();
        assert_eq!(listed(&platform, &acme), ["b.acme.com", "c.acme.com"]);
        assert_eq!(
            index(&platform),
            pairs(&[("b.acme.com", "acme"), ("c.acme.com", "acme")])
        );
        platform
            .set_custom_hosts(&beta, &hosts(&["a.acme.com"]))
            .unwrap()
            .unwrap();

        // Deleting a tenant releases its hosts; a deleted tenant's hosts stay unchanged.
        platform.soft_delete_tenant(&acme).unwrap().unwrap();
        assert!(listed(&platform, &acme).is_empty());
        assert_eq!(index(&platform), pairs(&[("a.acme.com", "beta")]));
        assert!(
            platform
                .set_custom_hosts(&acme, &hosts(&["d.acme.com"]))
                .unwrap()
                .is_none()
        );
        // Deleting it again releases nothing that is now another tenant's.
        platform
            .set_custom_hosts(&beta, &hosts(&["a.acme.com", "b.acme.com"]))
            .unwrap()
            .unwrap();
        platform.soft_delete_tenant(&acme).unwrap().unwrap();
        assert_eq!(
            index(&platform),
            pairs(&[("a.acme.com", "beta"), ("b.acme.com", "beta")])
        );
        let unknown = TenantId::parse("nobody").unwrap();
        assert!(platform.set_custom_hosts(&unknown, &[]).unwrap().is_none());
    }
}
