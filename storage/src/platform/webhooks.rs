//! Webhook endpoints of vendors, how far each endpoint got in each tenant's outbox
//! (cursors), and the recent deliveries the portal shows.
use super::{Keyed, Platform, Stored, Written, delete, insert, put_at};
use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::records::{
    DeliveryStatus, WebhookCursorRecord, WebhookDeliveryRecord, WebhookEndpointRecord,
};
use crate::{Durable, StorageError, TenantId, Timestamp, VendorId};

impl Stored for WebhookEndpointRecord {
    const TABLE: Table = Table::WebhookEndpoints;
}

impl Keyed for WebhookEndpointRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::scoped(&self.vendor_id, &self.id)
    }
}

impl Stored for WebhookCursorRecord {
    const TABLE: Table = Table::WebhookCursors;
}

impl Stored for WebhookDeliveryRecord {
    const TABLE: Table = Table::WebhookDeliveries;
}

impl Platform {
    /// A vendor's webhook endpoints, in id order.
    pub fn webhooks(&self, vendor: &VendorId) -> Result<Vec<WebhookEndpointRecord>, StorageError> {
        self.records(Some(vendor.as_str()))
    }

    /// One webhook endpoint of a vendor.
    pub fn webhook(
        &self,
        vendor: &VendorId,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StorageError> {
        self.get(PlatformKey::scoped(vendor.as_str(), id))
    }

    /// Adds a webhook endpoint; [`StorageError::AlreadyExists`] if its id is taken.
    pub fn add_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(endpoint)])
    }

    /// Stops (`Some`: since when, and why) or resumes (`None`) deliveries to an endpoint.
    /// `None` if the vendor has no such endpoint.
    pub fn set_webhook_disabled(
        &self,
        vendor: &VendorId,
        id: &str,
        disabled: Option<(Timestamp, String)>,
    ) -> Result<Option<Durable>, StorageError> {
        self.replace(self.webhook(vendor, id)?, |endpoint| {
            endpoint.disabled = disabled;
        })
    }

    /// Deletes an endpoint with its cursors and deliveries, in one atomic write. `None`
    /// if the vendor has no such endpoint.
    pub fn delete_webhook(
        &self,
        vendor: &VendorId,
        id: &str,
    ) -> Result<Option<Durable>, StorageError> {
        if self.webhook(vendor, id)?.is_none() {
            return Ok(None);
        }
        let cursors = self.store.platform_scan(Table::WebhookCursors, Some(id))?;
        let deliveries = self
            .store
            .platform_scan(Table::WebhookDeliveries, Some(id))?;
        let mut writes = vec![delete::<WebhookEndpointRecord>(PlatformKey::scoped(
            vendor.as_str(),
            id,
        ))];
        writes.extend(
            cursors
                .iter()
                .map(|(tenant, _)| delete::<WebhookCursorRecord>(PlatformKey::scoped(id, tenant))),
        );
        writes.extend(deliveries.iter().map(|(delivery, _)| {
            delete::<WebhookDeliveryRecord>(PlatformKey::scoped(id, delivery))
        }));
        self.apply(&writes).map(Some)
    }

    /// How far an endpoint got in each tenant's outbox, by tenant id.
    pub fn webhook_cursors(
        &self,
        endpoint: &str,
    ) -> Result<Vec<(String, WebhookCursorRecord)>, StorageError> {
        self.scan(Some(endpoint))
    }

    /// How far an endpoint got in one tenant's outbox.
    pub fn webhook_cursor(
        &self,
        endpoint: &str,
        tenant: &TenantId,
    ) -> Result<Option<WebhookCursorRecord>, StorageError> {
        self.get(PlatformKey::scoped(endpoint, tenant.as_str()))
    }

    /// Records that an endpoint has every event of `tenant` up to `delivered_seq`.
    pub fn set_webhook_cursor(
        &self,
        endpoint: &str,
        tenant: &TenantId,
        delivered_seq: u64,
    ) -> Result<Durable, StorageError> {
        let cursor = WebhookCursorRecord { delivered_seq };
        self.apply(&[put_at(
            PlatformKey::scoped(endpoint, tenant.as_str()),
            &cursor,
        )])
    }

    /// An endpoint's deliveries, in id order.
    pub fn webhook_deliveries(
        &self,
        endpoint: &str,
    ) -> Result<Vec<WebhookDeliveryRecord>, StorageError> {
        self.records(Some(endpoint))
    }

    /// One delivery of an endpoint.
    pub fn webhook_delivery(
        &self,
        endpoint: &str,
        id: &str,
    ) -> Result<Option<WebhookDeliveryRecord>, StorageError> {
        self.get(PlatformKey::scoped(endpoint, id))
    }

    /// Stores a delivery as it stands now; a delivered one then moves the endpoint's
    /// cursor for its tenant to it. Two single-record writes in this order, not one
    /// batch: a backend may write one record without locking out other writers, and
    /// this runs once per delivery. A crash between them leaves the cursor behind, so
    /// the event is delivered again (deliveries are at least once). The ticket is the
    /// later write's; it resolves once both are durable.
    pub fn record_webhook_delivery(
        &self,
        endpoint: &str,
        delivery: &WebhookDeliveryRecord,
        advance_cursor: bool,
    ) -> Result<Durable, StorageError> {
        let key = PlatformKey::scoped(endpoint, &delivery.id);
        let recorded = self.apply(&[put_at(key, delivery)])?;
        if !advance_cursor {
            return Ok(recorded);
        }
        let cursor = WebhookCursorRecord {
            delivered_seq: delivery.seq,
        };
        self.apply(&[put_at(
            PlatformKey::scoped(endpoint, &delivery.tenant_id),
            &cursor,
        )])
    }

    /// Deletes all but the `keep` most recent settled (delivered or failed) deliveries
    /// of an endpoint; pending ones always stay.
    pub fn prune_webhook_deliveries(
        &self,
        endpoint: &str,
        keep: usize,
    ) -> Result<Written, StorageError> {
        let mut settled: Vec<WebhookDeliveryRecord> = self
            .webhook_deliveries(endpoint)?
            .into_iter()
            .filter(|d| d.status != DeliveryStatus::Pending)
            .collect();
        settled.sort_by_key(|d| std::cmp::Reverse(d.last_attempt_at));
        let writes: Vec<PlatformWrite<'_>> = settled
            .iter()
            .skip(keep)
            .map(|d| delete::<WebhookDeliveryRecord>(PlatformKey::scoped(endpoint, &d.id)))
            .collect();
        self.apply_all(&writes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::SealedSecret;

    fn endpoint(vendor: &str, id: &str) -> WebhookEndpointRecord {
        WebhookEndpointRecord {
            id: id.into(),
            vendor_id: vendor.into(),
            url: "https://billing.example/hooks".into(),
            events: vec!["overage.charged".into()],
            secret: SealedSecret {
                nonce: vec![1; 24],
                ciphertext: vec![2; 48],
            },
            created_at: Timestamp::from_secs(1),
            disabled: None,
        }
    }

    fn delivery(tenant: &str, seq: u64, status: DeliveryStatus, at: i64) -> WebhookDeliveryRecord {
        WebhookDeliveryRecord {
            id: format!("{tenant}.{seq}"),
            tenant_id: tenant.into(),
            seq,
            event_id: format!("evt_{seq}"),
            kind: "overage.charged".into(),
            body: "{}".into(),
            status,
            attempts: 1,
            first_attempt_at: Timestamp::from_secs(at),
            last_attempt_at: Timestamp::from_secs(at),
            next_attempt_at: None,
            response_status: Some(200),
            error: None,
            delivered_at: None,
        }
    }

    #[tokio::test]
    async fn an_endpoint_is_added_disabled_and_deleted_with_its_progress() {
        let (_dir, platform) = platform();
        let vector = VendorId::parse("vector").unwrap();
        let acme = TenantId::parse("acme").unwrap();
        platform.add_webhook(&endpoint("vector", "wh_1")).unwrap();
        platform.add_webhook(&endpoint("other", "wh_2")).unwrap();
        let again = platform.add_webhook(&endpoint("vector", "wh_1"));
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));
        assert_eq!(platform.webhooks(&vector).unwrap().len(), 1);
        assert!(platform.webhook(&vector, "wh_2").unwrap().is_none());

        let off = Some((Timestamp::from_secs(9), "failing".to_owned()));
        platform
            .set_webhook_disabled(&vector, "wh_1", off.clone())
            .unwrap()
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(
            platform.webhook(&vector, "wh_1").unwrap().unwrap().disabled,
            off
        );

        let d = delivery("acme", 3, DeliveryStatus::Delivered, 5);
        platform.record_webhook_delivery("wh_1", &d, true).unwrap();
        let pending = delivery("acme", 4, DeliveryStatus::Pending, 6);
        platform
            .record_webhook_delivery("wh_1", &pending, false)
            .unwrap();
        platform.set_webhook_cursor("wh_2", &acme, 7).unwrap();
        let cursors = platform.webhook_cursors("wh_1").unwrap();
        assert_eq!(
            cursors,
            vec![("acme".to_owned(), WebhookCursorRecord { delivered_seq: 3 })]
        );
        assert_eq!(
            platform.webhook_delivery("wh_1", "acme.4").unwrap(),
            Some(pending)
        );

        platform.delete_webhook(&vector, "wh_1").unwrap().unwrap();
        assert!(platform.webhook(&vector, "wh_1").unwrap().is_none());
        assert!(platform.webhook_cursors("wh_1").unwrap().is_empty());
        assert!(platform.webhook_deliveries("wh_1").unwrap().is_empty());
        // The other vendor's endpoint keeps its progress.
        assert_eq!(platform.webhook_cursors("wh_2").unwrap().len(), 1);
        assert!(platform.delete_webhook(&vector, "wh_1").unwrap().is_none());
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_settled_deliveries_and_every_pending_one() {
        let (_dir, platform) = platform();
        for (seq, status) in [
            (1, DeliveryStatus::Delivered),
            (2, DeliveryStatus::Failed),
            (3, DeliveryStatus::Delivered),
            (4, DeliveryStatus::Pending),
        ] {
            let d = delivery("acme", seq, status, seq as i64);
            platform.record_webhook_delivery("wh_1", &d, false).unwrap();
        }
        let written = platform.prune_webhook_deliveries("wh_1", 1).unwrap();
        assert_eq!(written.records, 2);
        let left: Vec<u64> = platform
            .webhook_deliveries("wh_1")
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(left, vec![3, 4]);
    }
}
