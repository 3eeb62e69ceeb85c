//! The expected value of every fixture. Values are fixed and distinct (no field is
//! zero or empty where that could hide a swapped field); each optional field is set
//! in some fixture, and each enum appears at its first and its last variant.
use permetrix_storage::records::*;
use permetrix_storage::{BorrowId, Money, Timestamp};

use super::{Fixture, fixture};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn borrow_id() -> BorrowId {
    BorrowId::parse("6f1d2c3b-4a59-4e68-b7c6-d5e4f3a2b1c0").expect("a valid borrow id")
}

fn sealed(byte: u8) -> SealedSecret {
    SealedSecret {
        nonce: vec![byte; 12],
        ciphertext: (0..48).map(|i| byte ^ i).collect(),
    }
}

fn digest(byte: u8) -> [u8; 32] {
    std::array::from_fn(|i| byte.wrapping_add(i as u8))
}

/// Every fixture, in file name order.
pub(super) fn all() -> Vec<Fixture> {
    let mut all = accounts();
    all.extend(tenant_state());
    all.extend(history());
    all.push(journal());
    all.extend(super::webhook_values::all());
    all.sort_by_key(|f| f.name);
    all
}

/// Platform records.
fn accounts() -> Vec<Fixture> {
    let vendor = VendorRecord {
        vendor_id: "vector".into(),
        vendor_name: "Vector Informatik".into(),
        contact_email: Some("licensing@vector.example".into()),
        api_key_digest: digest(1),
        signing_secret: sealed(2),
        previous_signing_secret: Some((sealed(3), at(1_700_000_100_000))),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: at(1_700_000_000_000),
        lifecycle: Lifecycle::Deleted,
    };
    let tenant = TenantRecord {
        tenant_id: "acme".into(),
        vendor_id: "vector".into(),
        company_name: "ACME Automotive".into(),
        domain: Some("acme.example".into()),
        crm_id: Some("CRM-42".into()),
        created_at: at(1_700_000_200_000),
        lifecycle: Lifecycle::Deleted,
        custom_hosts: Vec::new(),
    };
    let key = ApiKeyRecord {
        key_id: "k7f3a".into(),
        tenant_id: "acme".into(),
        name: "ci runners".into(),
        scope: Scope::Admin,
        digest: digest(4),
        created_at: at(1_700_000_300_000),
        revoked_at: Some(at(1_700_000_400_000)),
        expires_at: Some(at(1_700_000_500_000)),
    };
    // As version 1 stored it: every user had an argon2id hash.
    let user = UserRecord {
        user_id: "u0a1b2c3".into(),
        tenant_id: "acme".into(),
        username: "ann".into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$dXNlcg$cHc".into()),
        role: UserRole::Admin,
        created_at: at(1_700_000_900_000),
    };
    let tenant_user = SessionRecord {
        subject: SessionSubject::TenantUser {
            tenant_id: "acme".into(),
            username: "ann".into(),
            user_id: "u0a1b2c3".into(),
        },
        host: "acme.permetrix.fly.dev".into(),
        created_at: at(1_700_000_600_000),
        expires_at: at(1_700_043_800_000),
    };
    vec![
        fixture("vendor_v1", vendor.clone()),
        fixture(
            "vendor_v1_minimal",
            VendorRecord {
                contact_email: None,
                previous_signing_secret: None,
                password_hash: None,
                lifecycle: Lifecycle::Active,
                ..vendor
            },
        ),
        fixture("tenant_v1", tenant.clone()),
        fixture(
            "tenant_v1_minimal",
            TenantRecord {
                domain: None,
                crm_id: None,
                lifecycle: Lifecycle::Active,
                ..tenant.clone()
            },
        ),
        fixture(
            "tenant_v2",
            TenantRecord {
                lifecycle: Lifecycle::Active,
                custom_hosts: vec!["licenses.acme.example".into(), "lm.acme.example".into()],
                ..tenant.clone()
            },
        ),
        fixture(
            "tenant_v2_minimal",
            TenantRecord {
                domain: None,
                crm_id: None,
                ..tenant
            },
        ),
        fixture(
            "custom_host_v1",
            CustomHostRecord {
                host: "licenses.acme.example".into(),
                tenant_id: "acme".into(),
            },
        ),
        fixture("api_key_v1", key.clone()),
        fixture(
            "api_key_v1_minimal",
            ApiKeyRecord {
                scope: Scope::Borrow,
                revoked_at: None,
                expires_at: None,
                ..key
            },
        ),
        fixture(
            "package_index_v1",
            PackageIndexRecord {
                package_id: "pkg-3e9c".into(),
                tenant_id: "acme".into(),
                vendor_id: "vector".into(),
            },
        ),
        fixture(
            "admin_token_v1",
            AdminTokenRecord {
                hash: "$argon2id$v=19$m=19456,t=2,p=1$b3A$dG9rZW4".into(),
                set_at: at(1_700_000_700_000),
            },
        ),
        fixture(
            "format_v1",
            FormatRecord {
                magic: "permetrix".into(),
                layout: 1,
                created_at: at(1_700_000_800_000),
            },
        ),
        fixture("user_v1", user.clone()),
        fixture(
            "user_v2",
            UserRecord {
                password_hash: Some(
                    "$pbkdf2-sha256$29000$..................../w$oqCfOxmhYxDRf9M/Kc30wl7iVXn.Kn18YxpeSihhOJo"
                        .into(),
                ),
                role: UserRole::Viewer,
                ..user.clone()
            },
        ),
        fixture(
            "user_v2_unset",
            UserRecord {
                password_hash: None,
                ..user
            },
        ),
        fixture(
            "legacy_key_v1",
            LegacyKeyRecord {
                tenant_id: "acme".into(),
                key_id: "key_0123456789abcdef".into(),
                environment: Some("live".into()),
            },
        ),
        fixture(
            "legacy_key_v1_minimal",
            LegacyKeyRecord {
                tenant_id: "acme".into(),
                key_id: "key_fedcba9876543210".into(),
                environment: None,
            },
        ),
        fixture(
            "oauth_client_v1",
            OAuthClientRecord {
                client_id: "vector.0123456789abcdef".into(),
                vendor_id: "vector".into(),
                name: "CRM sync".into(),
                scope: "customers:read provision".into(),
                secret_digest: digest(0x51),
                created_at: at(1_700_000_500_000),
                revoked_at: Some(at(1_700_000_600_000)),
            },
        ),
        fixture(
            "oauth_client_v1_minimal",
            OAuthClientRecord {
                client_id: "vector.fedcba9876543210".into(),
                vendor_id: "vector".into(),
                name: "pipeline".into(),
                scope: "customers:read customers:write provision usage:read".into(),
                secret_digest: digest(0x62),
                created_at: at(1_700_000_700_000),
                revoked_at: None,
            },
        ),
        fixture("session_v1", tenant_user.clone()),
        fixture(
            "session_v1_vendor",
            SessionRecord {
                subject: SessionSubject::Vendor {
                    vendor_id: "vector".into(),
                },
                host: "vendor.permetrix.fly.dev".into(),
                ..tenant_user
            },
        ),
        fixture(
            "key_usage_v1",
            KeyUsageRecord {
                last_used_at: at(1_700_001_000_000),
            },
        ),
        fixture(
            "offline_keys_v1",
            OfflineKeySetRecord {
                vendor_id: "vector".into(),
                keys: vec![
                    OfflineKeyRecord {
                        kid: "vector.5d1c7a90e4b3f268".into(),
                        public_key: digest(8),
                        private_key: None,
                        created_at: at(1_700_001_100_000),
                        retired_at: Some(at(1_700_001_200_000)),
                        published_until: Some(at(1_700_605_000_000)),
                    },
                    OfflineKeyRecord {
                        kid: "vector.0b9e3f41c2a7d658".into(),
                        public_key: digest(9),
                        private_key: Some(sealed(10)),
                        created_at: at(1_700_001_200_000),
                        retired_at: None,
                        published_until: None,
                    },
                ],
            },
        ),
    ]
}

/// A tenant's current state.
fn tenant_state() -> Vec<Fixture> {
    let package = PackageRecord {
        package_id: "pkg-3e9c".into(),
        vendor_id: "vector".into(),
        product_id: "ecu-dev-suite".into(),
        product_name: "ECU Development Suite".into(),
        total: 20,
        commit_qty: 5,
        max_overage: 15,
        commit_price: Money::from_cents(1_250_000),
        overage_price: Money::from_cents(50_000),
        crm_opportunity_id: Some("OPP-7".into()),
        valid_from: Some(at(1_700_000_000_000)),
        valid_until: Some(at(1_731_536_000_000)),
        status: PackageStatus::Revoked,
        created_at: at(1_700_000_010_000),
        max_offline_hours: 0,
        max_offline_seats: 0,
    };
    let lease = LeaseRecord {
        id: borrow_id(),
        product_id: "ecu-dev-suite".into(),
        user: "dev1".into(),
        borrowed_at: at(1_700_000_020_000),
        lease_expires_at: at(1_700_003_620_000),
        lease_seconds: 3_600,
        is_overage: true,
        offline: false,
    };
    let settings = SettingsRecord {
        signature_policy: SignaturePolicy::V2,
        default_lease_seconds: 3_600,
        anonymous_status: true,
    };
    let restriction = RestrictionRecord {
        product_id: "ecu-dev-suite".into(),
        total: Some(18),
        max_overage: Some(9),
        max_spend: Some(Money::from_cents(400_000)),
        max_per_user: Some(2),
    };
    vec![
        fixture("package_v1", package.clone()),
        fixture(
            "package_v1_minimal",
            PackageRecord {
                crm_opportunity_id: None,
                valid_from: None,
                valid_until: None,
                status: PackageStatus::Active,
                ..package.clone()
            },
        ),
        fixture(
            "package_v2",
            PackageRecord {
                max_offline_hours: 168,
                max_offline_seats: 3,
                ..package.clone()
            },
        ),
        fixture(
            "package_v2_minimal",
            PackageRecord {
                crm_opportunity_id: None,
                valid_from: None,
                valid_until: None,
                status: PackageStatus::Active,
                ..package
            },
        ),
        fixture("lease_v1", lease.clone()),
        fixture(
            "lease_v2",
            LeaseRecord {
                lease_expires_at: at(1_700_172_820_000),
                lease_seconds: 172_800,
                offline: true,
                ..lease.clone()
            },
        ),
        fixture(
            "lease_v2_online",
            LeaseRecord {
                is_overage: false,
                ..lease
            },
        ),
        fixture("settings_v1", settings.clone()),
        fixture(
            "settings_v1_off",
            SettingsRecord {
                signature_policy: SignaturePolicy::Off,
                anonymous_status: false,
                ..settings
            },
        ),
        fixture("restriction_v1", restriction.clone()),
        fixture(
            "restriction_v1_minimal",
            RestrictionRecord {
                product_id: restriction.product_id,
                ..RestrictionRecord::default()
            },
        ),
        fixture(
            "spend_v1",
            SpendRecord {
                product_id: "ecu-dev-suite".into(),
                month: 202_405,
                overage_cost: Money::from_cents(150_000),
                overage_count: 3,
            },
        ),
    ]
}

/// Append-only history, idempotency keys and requests for more seats.
fn history() -> Vec<Fixture> {
    let borrowed = IdempotencyRecord {
        key: "retry-8d2f".into(),
        operation: IdempotentOperation::Borrow,
        fingerprint: digest(5),
        created_at: at(1_700_000_030_000),
        outcome: IdempotentOutcome::Borrowed {
            id: borrow_id(),
            tool: "ECU Development Suite".into(),
            user: "dev1".into(),
            borrowed_at: at(1_700_000_030_000),
            lease_expires_at: at(1_700_003_630_000),
            is_overage: true,
        },
    };
    let usage = UsageRecord {
        seq: 41,
        at: at(1_700_000_040_000),
        product_id: "ecu-dev-suite".into(),
        kind: UsageKind::Expire,
        borrow_id: borrow_id(),
        user: "dev1".into(),
        is_overage: true,
        amount: Money::from_cents(50_000),
        in_use: 6,
    };
    let request = MoreRequestRecord {
        id: "acme.5c1e".into(),
        product_id: "ecu-dev-suite".into(),
        product_name: "ECU Development Suite".into(),
        package_id: "pkg-3e9c".into(),
        vendor_id: "vector".into(),
        requested_total: Some(30),
        requested_overage: Some(20),
        message: Some("release crunch".into()),
        limits_before: (20, 5, 15),
        created_at: at(1_700_000_050_000),
        status: RequestStatus::Rejected,
        decided_at: Some(at(1_700_000_060_000)),
        decision_note: Some("not this quarter".into()),
        applied: Some((30, 10, 20)),
    };
    vec![
        fixture(
            "charge_v1",
            ChargeRecord {
                seq: 7,
                id: "ch-7a".into(),
                product_id: "ecu-dev-suite".into(),
                product_name: "ECU Development Suite".into(),
                borrow_id: borrow_id(),
                user: "dev1".into(),
                charged_at: at(1_700_000_070_000),
                amount: Money::from_cents(50_000),
                prev_hash: digest(6),
                hash: digest(7),
            },
        ),
        fixture("idempotency_v1", borrowed.clone()),
        fixture(
            "idempotency_v1_returned",
            IdempotencyRecord {
                operation: IdempotentOperation::Return,
                outcome: IdempotentOutcome::Returned {
                    id: borrow_id(),
                    tool: "ECU Development Suite".into(),
                },
                ..borrowed
            },
        ),
        fixture(
            "nonce_v1",
            NonceRecord {
                vendor_id: "vector".into(),
                nonce: "3f1c9a0e5b7d".into(),
                expires_at: at(1_700_000_080_000),
            },
        ),
        fixture("usage_v1", usage.clone()),
        fixture(
            "usage_v1_borrow",
            UsageRecord {
                kind: UsageKind::Borrow,
                is_overage: false,
                amount: Money::ZERO,
                ..usage
            },
        ),
        fixture("more_request_v1", request.clone()),
        fixture(
            "more_request_v1_minimal",
            MoreRequestRecord {
                requested_total: None,
                requested_overage: None,
                message: None,
                status: RequestStatus::Pending,
                decided_at: None,
                decision_note: None,
                applied: None,
                ..request
            },
        ),
    ]
}

/// The sled store's journal entry: a put and a remove.
fn journal() -> Fixture {
    fixture(
        "journal_entry_v1",
        JournalEntryRecord {
            tenant: "acme".into(),
            seq: 42,
            writes: vec![
                (b"acme\0L1".to_vec(), Some(vec![1, 2, 3, 250])),
                (b"acme\0L2".to_vec(), None),
            ],
        },
    )
}
