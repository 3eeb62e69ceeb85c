//! Endpoints: what the vendor API registers, lists, disables and deletes, and the cache
//! of them the worker and the actors' hooks read (with each vendor's set of wanted
//! event types, kept in step with its active endpoints).
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use permetrix_actors::domain::{EventMask, WebhookEventKind};
use permetrix_storage::records::{Lifecycle, WebhookEndpointRecord};
use permetrix_storage::{StorageError, Timestamp, VendorId};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::address::WebhookUrl;
use super::{Inner, Signal, Webhooks};
use crate::auth::secrets::random_hex;

/// Endpoints one vendor may have.
pub const MAX_ENDPOINTS_PER_VENDOR: usize = 16;

/// An endpoint as the worker uses it: its URL parsed, its secret unsealed.
pub struct Endpoint {
    /// Endpoint id.
    pub id: String,
    /// Its vendor.
    pub vendor: VendorId,
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// The event types it receives.
    pub events: EventMask,
    /// The signing key.
    pub(super) secret: SecretSlice<u8>,
    /// It receives events from then on.
    pub created_at: Timestamp,
    /// Whether deliveries are on (not disabled).
    pub active: bool,
}

impl Webhooks {
    /// Reads every live vendor's endpoints into the cache.
    pub(super) fn load_endpoints(&self) -> Result<(), StorageError> {
        for vendor in self.inner.platform.vendors()? {
            let Ok(vendor_id) = VendorId::parse(&vendor.vendor_id) else {
                continue;
            };
            if vendor.lifecycle != Lifecycle::Active {
                continue;
            }
            for record in self.inner.platform.webhooks(&vendor_id)? {
                self.inner.cache(&record);
            }
            self.inner.refresh_wanted(&vendor_id);
        }
        Ok(())
    }

    /// A vendor's endpoints, in id order.
    pub fn list(&self, vendor: &VendorId) -> Result<Vec<WebhookEndpointRecord>, StorageError> {
        self.inner.platform.webhooks(vendor)
    }

    /// Registers an endpoint receiving `events` at `url` (checked by the caller) and
    /// returns it with its secret, which is shown this once and stored sealed.
    pub async fn create(
        &self,
        vendor: &VendorId,
        url: &WebhookUrl,
        events: &[WebhookEventKind],
    ) -> Result<(WebhookEndpointRecord, SecretString), StorageError> {
        let secret = format!("whsec_{}", random_hex::<32>());
        let record = WebhookEndpointRecord {
            id: format!("wh_{}", random_hex::<16>()),
            vendor_id: vendor.to_string(),
            url: url.as_str().to_owned(),
            events: events.iter().map(|k| k.as_str().to_owned()).collect(),
            secret: self.inner.secrets.seal(secret.as_bytes()),
            created_at: self.inner.clock.now(),
            disabled: None,
        };
        self.inner.platform.add_webhook(&record)?.wait().await?;
        self.inner.cache(&record);
        self.inner.refresh_wanted(vendor);
        self.inner.signal(Signal::Endpoint(record.id.clone()));
        Ok((record, SecretString::from(secret)))
    }

    /// Deletes an endpoint with its progress and deliveries; `false` if the vendor has
    /// no such endpoint.
    pub async fn delete(&self, vendor: &VendorId, id: &str) -> Result<bool, StorageError> {
        let Some(written) = self.inner.platform.delete_webhook(vendor, id)? else {
            return Ok(false);
        };
        written.wait().await?;
        self.inner.endpoints.remove(id);
        self.inner.refresh_wanted(vendor);
        self.inner.signal(Signal::Endpoint(id.to_owned()));
        Ok(true)
    }

    /// Resumes deliveries to a disabled endpoint (from the oldest event it has not had
    /// that is still stored). `None` if the vendor has no such endpoint.
    pub async fn enable(
        &self,
        vendor: &VendorId,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StorageError> {
        self.inner.set_disabled(vendor, id, None).await
    }

    /// Stops every delivery to a deleted vendor's endpoints (they stay stored, for
    /// audit, like the vendor).
    pub fn forget_vendor(&self, vendor: &VendorId) {
        let ids: Vec<String> = self
            .inner
            .endpoints
            .iter()
            .filter(|e| e.vendor == *vendor)
            .map(|e| e.key().clone())
            .collect();
        for id in &ids {
            self.inner.endpoints.remove(id);
        }
        self.inner.refresh_wanted(vendor);
        for id in ids {
            self.inner.signal(Signal::Endpoint(id));
        }
    }

    /// Asks the worker to send one delivery again now.
    pub fn resend(&self, endpoint: &str, delivery: &str) {
        self.inner.signal(Signal::Resend {
            endpoint: endpoint.to_owned(),
            delivery: delivery.to_owned(),
        });
    }
}

impl Inner {
    /// Puts an endpoint as stored into the cache (a stored URL or secret that no longer
    /// reads is logged and the endpoint left out).
    fn cache(&self, record: &WebhookEndpointRecord) {
        let url = match WebhookUrl::parse(&record.url) {
            Ok(url) => url,
            Err(e) => {
                tracing::error!(endpoint = %record.id, error = %e, "a stored webhook URL does not parse; the endpoint is skipped");
                return;
            }
        };
        let secret = match self.secrets.unseal(&record.secret) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(endpoint = %record.id, error = format!("{e:#}"), "cannot unseal a webhook secret; the endpoint is skipped");
                return;
            }
        };
        let Ok(vendor) = VendorId::parse(&record.vendor_id) else {
            return;
        };
        let events = EventMask::of(
            record
                .events
                .iter()
                .filter_map(|e| WebhookEventKind::parse(e)),
        );
        let endpoint = Endpoint {
            id: record.id.clone(),
            vendor,
            url,
            events,
            secret: SecretSlice::from(secret.expose_secret().to_vec()),
            created_at: record.created_at,
            active: record.disabled.is_none(),
        };
        self.endpoints.insert(record.id.clone(), Arc::new(endpoint));
    }

    /// The set of types `vendor`'s actors store events of.
    pub(super) fn wanted_by(&self, vendor: &VendorId) -> Arc<AtomicU8> {
        Arc::clone(
            self.wanted
                .entry(vendor.clone())
                .or_insert_with(|| Arc::new(AtomicU8::new(0)))
                .value(),
        )
    }

    /// Recomputes what `vendor` receives from its active endpoints.
    fn refresh_wanted(&self, vendor: &VendorId) {
        let mask = self
            .endpoints
            .iter()
            .filter(|e| e.vendor == *vendor && e.active)
            .fold(EventMask::NONE, |m, e| m.union(e.events));
        self.wanted_by(vendor).store(mask.bits(), Ordering::Release);
    }

    /// The active endpoints of `vendor`.
    pub(super) fn active_endpoints(&self, vendor: &VendorId) -> Vec<Arc<Endpoint>> {
        self.endpoints
            .iter()
            .filter(|e| e.vendor == *vendor && e.active)
            .map(|e| Arc::clone(e.value()))
            .collect()
    }

    /// Stops (`Some`: since when, and why) or resumes deliveries to an endpoint.
    pub(super) async fn set_disabled(
        &self,
        vendor: &VendorId,
        id: &str,
        disabled: Option<(Timestamp, String)>,
    ) -> Result<Option<WebhookEndpointRecord>, StorageError> {
        let Some(written) = self.platform.set_webhook_disabled(vendor, id, disabled)? else {
            return Ok(None);
        };
        written.wait().await?;
        let record = self.platform.webhook(vendor, id)?;
        if let Some(record) = &record {
            self.cache(record);
        }
        self.refresh_wanted(vendor);
        self.signal(Signal::Endpoint(id.to_owned()));
        Ok(record)
    }
}
