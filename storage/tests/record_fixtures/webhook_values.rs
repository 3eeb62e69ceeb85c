//! The expected values of the webhook records' fixtures (outbox, endpoints, cursors,
//! deliveries); the rules of `values` hold here too.
use permetrix_storage::Timestamp;
use permetrix_storage::records::*;

use super::{Fixture, fixture};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub(super) fn all() -> Vec<Fixture> {
    let endpoint = WebhookEndpointRecord {
        id: "wh_5e0c1d2b3a495867f8e9d0c1b2a39485".into(),
        vendor_id: "vector".into(),
        url: "https://billing.vector.example/hooks/permetrix".into(),
        events: vec!["overage.charged".into(), "borrow.denied".into()],
        secret: SealedSecret {
            nonce: vec![7; 24],
            ciphertext: (0..48).map(|i| 7 ^ i).collect(),
        },
        created_at: at(1_700_000_040_000),
        disabled: Some((at(1_700_086_440_000), "failing for 24 hours".into())),
    };
    let delivery = WebhookDeliveryRecord {
        id: "acme.42".into(),
        tenant_id: "acme".into(),
        seq: 42,
        event_id: "evt_0c1d2b3a495867f8e9d0c1b2a394855e".into(),
        kind: "overage.charged".into(),
        body: r#"{"id":"evt_0c1d","type":"overage.charged"}"#.into(),
        status: DeliveryStatus::Failed,
        attempts: 31,
        first_attempt_at: at(1_700_000_050_000),
        last_attempt_at: at(1_700_086_450_000),
        next_attempt_at: Some(at(1_700_090_050_000)),
        response_status: Some(503),
        error: Some("timed out after 10 s".into()),
        delivered_at: Some(at(1_700_000_060_000)),
    };
    vec![
        fixture(
            "outbox_v1",
            OutboxRecord {
                seq: 42,
                id: "evt_0c1d2b3a495867f8e9d0c1b2a394855e".into(),
                kind: "overage.charged".into(),
                created_at: at(1_700_000_045_000),
                data: r#"{"tool":"ECU Development Suite","amount":500.0}"#.into(),
            },
        ),
        fixture("webhook_endpoint_v1", endpoint.clone()),
        fixture(
            "webhook_endpoint_v1_minimal",
            WebhookEndpointRecord {
                disabled: None,
                ..endpoint
            },
        ),
        fixture(
            "webhook_cursor_v1",
            WebhookCursorRecord { delivered_seq: 41 },
        ),
        fixture("webhook_delivery_v1", delivery.clone()),
        fixture(
            "webhook_delivery_v1_minimal",
            WebhookDeliveryRecord {
                status: DeliveryStatus::Pending,
                next_attempt_at: None,
                response_status: None,
                error: None,
                delivered_at: None,
                ..delivery
            },
        ),
    ]
}
