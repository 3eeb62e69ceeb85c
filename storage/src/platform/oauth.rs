//! Vendors' OAuth 2.0 clients (client-credentials grant).
use super::{Keyed, Platform, Stored, insert};
use crate::backend::{PlatformKey, Table};
use crate::records::OAuthClientRecord;
use crate::{Durable, StorageError, Timestamp, VendorId};

impl Stored for OAuthClientRecord {
    const TABLE: Table = Table::OAuthClients;
}

impl Keyed for OAuthClientRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::scoped(&self.vendor_id, &self.client_id)
    }
}

impl Platform {
    /// One OAuth client of a vendor, revoked or not.
    pub fn oauth_client(
        &self,
        vendor: &VendorId,
        client_id: &str,
    ) -> Result<Option<OAuthClientRecord>, StorageError> {
        self.get(PlatformKey::scoped(vendor.as_str(), client_id))
    }

    /// A vendor's OAuth clients, revoked ones included, in client id order.
    pub fn vendor_oauth_clients(
        &self,
        vendor: &VendorId,
    ) -> Result<Vec<OAuthClientRecord>, StorageError> {
        self.records(Some(vendor.as_str()))
    }

    /// Adds an OAuth client; [`StorageError::AlreadyExists`] if the vendor has a client
    /// with its id.
    pub fn add_oauth_client(&self, client: &OAuthClientRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(client)])
    }

    /// Revokes an OAuth client as of `at`; a client revoked before keeps its first
    /// revocation time (and nothing is written). `None` if the vendor has no such client.
    pub fn revoke_oauth_client(
        &self,
        vendor: &VendorId,
        client_id: &str,
        at: Timestamp,
    ) -> Result<Option<Durable>, StorageError> {
        match self.oauth_client(vendor, client_id)? {
            Some(client) if client.revoked_at.is_some() => Ok(Some(Durable::done())),
            found => self.replace(found, |client| client.revoked_at = Some(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tests::platform;

    fn client(vendor: &str, id: &str) -> OAuthClientRecord {
        OAuthClientRecord {
            client_id: id.into(),
            vendor_id: vendor.into(),
            name: "crm".into(),
            scope: "customers:read provision".into(),
            secret_digest: [7; 32],
            created_at: Timestamp::from_secs(10),
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn clients_are_listed_per_vendor_and_revoked_once() {
        let (_dir, platform) = platform();
        let (vector, other) = (
            VendorId::parse("vector").unwrap(),
            VendorId::parse("other").unwrap(),
        );
        for c in [
            client("vector", "b"),
            client("vector", "a"),
            client("other", "a"),
        ] {
            platform.add_oauth_client(&c).unwrap().wait().await.unwrap();
        }
        assert!(matches!(
            platform.add_oauth_client(&client("vector", "a")),
            Err(StorageError::AlreadyExists { .. })
        ));
        let ids: Vec<_> = platform
            .vendor_oauth_clients(&vector)
            .unwrap()
            .into_iter()
            .map(|c| c.client_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);

        let first = Timestamp::from_secs(20);
        platform
            .revoke_oauth_client(&vector, "a", first)
            .unwrap()
            .unwrap()
            .wait()
            .await
            .unwrap();
        platform
            .revoke_oauth_client(&vector, "a", Timestamp::from_secs(30))
            .unwrap()
            .unwrap();
        let revoked = platform.oauth_client(&vector, "a").unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(first));
        assert_eq!(
            platform
                .oauth_client(&other, "a")
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        assert!(
            platform
                .revoke_oauth_client(&vector, "zzz", first)
                .unwrap()
                .is_none()
        );
    }
}
