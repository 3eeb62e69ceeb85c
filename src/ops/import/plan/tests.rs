use permetrix_actors::domain::{LedgerHead, verify_chain};
use permetrix_storage::records::{PackageStatus, SignaturePolicy};
use permetrix_storage::{Money, TenantId, Timestamp, VendorId};

use super::*;
use crate::ops::import::anomalies::{Anomaly, Outcome};
use crate::ops::import::fixtures::{self, CAN, ECU, HELD};
use crate::ops::import::rows;

const NOW: Timestamp = Timestamp::from_secs(1_765_000_000);

fn digest(hex: &str) -> [u8; 32] {
    let mut d = [0; 32];
    d[0] = hex.as_bytes()[0];
    d
}

fn settings(tenant: Option<&str>, vendor: Option<&str>, signing: bool) -> Settings {
    Settings {
        now: NOW,
        single_tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        vendor: vendor.map(|v| VendorId::parse(v).unwrap()),
        signing_secret: signing,
    }
}

fn plan(file: &crate::ops::import::cells::RawFile, s: &Settings) -> (Drafts, Vec<Anomaly>) {
    let mut anomalies = Anomalies::default();
    let rows = rows::read(file, NOW, &mut anomalies);
    let drafts = draft(&rows, s, &digest, &mut anomalies);
    (drafts, anomalies.0)
}

fn has(anomalies: &[Anomaly], table: &str, row: &str, outcome: Outcome, text: &str) -> bool {
    anomalies.iter().any(|a| {
        a.table == table && a.row == row && a.outcome == outcome && a.detail.contains(text)
    })
}

#[test]
fn a_single_tenant_file_becomes_one_tenant_of_the_named_vendor() {
    let (drafts, anomalies) = plan(
        &fixtures::single_tenant(),
        &settings(Some("acme"), Some("techvendor"), true),
    );
    assert!(drafts.refusals.is_empty(), "{:?}", drafts.refusals);
    let [d] = drafts.tenants.as_slice() else {
        panic!("one tenant")
    };
    assert_eq!(
        (d.tenant.tenant_id.as_str(), d.tenant.vendor_id.as_str()),
        ("acme", "techvendor")
    );
    let names: Vec<(&str, &str, &str)> = d
        .packages
        .iter()
        .map(|p| {
            (
                p.product_id.as_str(),
                p.product_name.as_str(),
                p.vendor_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ecu-development-suite", ECU, "techvendor"),
            ("can-bus-analyzer-pro", CAN, "techvendor")
        ]
    );
    assert_eq!(d.restrictions.len(), 1);
    assert_eq!(d.restrictions[0].total, Some(18));
    assert_eq!(d.settings.signature_policy, SignaturePolicy::V1);
    assert!(d.settings.anonymous_status);
    assert_eq!(
        drafts
            .vendors
            .keys()
            .map(VendorId::as_str)
            .collect::<Vec<_>>(),
        ["techvendor"]
    );
    assert!(!drafts.vendors.values().next().unwrap().described);
    // Keys carry the keyed digest of their SHA-256; users their hash or none.
    assert_eq!(d.keys.len(), 3);
    assert_eq!(d.keys[0].key.digest, digest(&"a".repeat(64)));
    assert!(d.keys[1].key.revoked_at.is_some());
    assert_eq!(
        d.users.iter().filter(|u| u.password_hash.is_none()).count(),
        2
    );
    // Every row not imported says so with its table and id.
    assert!(has(
        &anomalies,
        "borrows",
        "9c4a5f6e-7d8c-4b9b-aaf9-a8b7c6d5e4f3",
        Outcome::Skipped,
        "tool 'Unknown Tool' is unknown"
    ));
}

#[test]
fn held_seats_stay_held_for_a_lease_and_the_rows_win_over_the_counters() {
    let (drafts, anomalies) = plan(
        &fixtures::single_tenant(),
        &settings(Some("acme"), Some("techvendor"), false),
    );
    let d = &drafts.tenants[0];
    assert_eq!(d.settings.signature_policy, SignaturePolicy::Off);
    let ids: Vec<String> = d.leases.iter().map(|l| l.id.to_string()).collect();
    assert_eq!(ids, HELD);
    assert!(
        d.leases
            .iter()
            .all(|l| l.lease_expires_at == Timestamp::from_secs(1_765_003_600))
    );
    assert_eq!(d.leases[1].product_id, "can-bus-analyzer-pro");
    assert!(has(
        &anomalies,
        "licenses",
        ECU,
        Outcome::Adjusted,
        "borrowed says 7, the borrows table holds 1 seat(s)"
    ));
    assert!(has(
        &anomalies,
        "licenses",
        CAN,
        Outcome::Adjusted,
        "borrowed says 3, the borrows table holds 2"
    ));
    assert!(has(
        &anomalies,
        "licenses",
        CAN,
        Outcome::Noted,
        "2 seats are held, above its total of 1"
    ));
}

#[test]
fn charges_form_a_verifiable_ledger_in_time_order_with_monthly_spend() {
    let (drafts, anomalies) = plan(
        &fixtures::single_tenant(),
        &settings(Some("acme"), Some("techvendor"), false),
    );
    let d = &drafts.tenants[0];
    let ids: Vec<&str> = d.charges.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert_eq!(
        verify_chain(&d.id, LedgerHead::default(), &d.charges).map(|h| h.seq),
        Ok(2)
    );
    assert_eq!(d.charged(), Money::from_cents(51_235));
    assert!((d.rounding - 0.005).abs() < 1e-9, "{}", d.rounding);
    let spend: Vec<(u32, i64, u64)> = d
        .spend
        .iter()
        .map(|s| (s.month, s.overage_cost.cents(), s.overage_count))
        .collect();
    assert_eq!(spend, [(202_510, 1235, 1), (202_511, 50_000, 1)]);
    assert!(has(
        &anomalies,
        "overage_charges",
        "c3",
        Outcome::Skipped,
        "negative"
    ));
    // The same file makes the same ledger: a second run can recognise the first's.
    let (again, _) = plan(
        &fixtures::single_tenant(),
        &settings(Some("acme"), Some("techvendor"), false),
    );
    assert_eq!(again.tenants[0].charges, d.charges);
}

#[test]
fn single_tenant_rows_need_a_tenant_and_vendor_named() {
    let (drafts, _) = plan(&fixtures::single_tenant(), &settings(None, None, false));
    assert!(drafts.tenants.is_empty());
    assert!(
        drafts.refusals[0].contains("--tenant ID --vendor ID"),
        "{:?}",
        drafts.refusals
    );
    let (drafts, _) = plan(
        &fixtures::multi_tenant(),
        &settings(Some("acme"), Some("techvendor"), false),
    );
    assert!(drafts.refusals[0].contains("also a tenant of the file's tenants table"));
}

#[test]
fn a_multi_tenant_file_keeps_its_packages_vendors_and_tenants() {
    let (drafts, anomalies) = plan(&fixtures::multi_tenant(), &settings(None, None, false));
    // globex lost its only pool (a negative commit) and the file has two vendors.
    assert!(
        drafts
            .refusals
            .iter()
            .any(|r| r.contains("tenant globex: no package names its vendor"))
    );
    let (drafts, anomalies2) = plan(
        &fixtures::multi_tenant(),
        &settings(None, Some("othervendor"), false),
    );
    assert!(drafts.refusals.is_empty(), "{:?}", drafts.refusals);
    let ids: Vec<&str> = drafts.tenants.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["acme", "globex"]);
    let acme = &drafts.tenants[0];
    assert_eq!(acme.tenant.vendor_id, "techvendor");
    assert_eq!(acme.tenant.company_name, "ACME Automotive");
    let packages: Vec<(&str, &str, &str)> = acme
        .packages
        .iter()
        .map(|p| {
            (
                p.package_id.as_str(),
                p.product_id.as_str(),
                p.vendor_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        packages,
        [
            ("pkg-acme-ecu", "ecu-suite", "techvendor"),
            ("pkg-acme-can", "can-bus-analyzer-pro", "othervendor"),
            ("pkg-acme-ecu2", "ecu-other", "techvendor"),
        ]
    );
    assert_eq!(acme.vendors.len(), 2);
    assert_eq!(acme.leases.len(), 1);
    let globex = &drafts.tenants[1];
    assert_eq!(globex.tenant.vendor_id, "othervendor");
    assert!(globex.packages.is_empty());
    for a in [&anomalies, &anomalies2] {
        assert!(has(
            a,
            "tenants",
            "Bad_Id",
            Outcome::Skipped,
            "not a valid tenant id"
        ));
        assert!(has(
            a,
            "tenants",
            "globex",
            Outcome::Adjusted,
            "packages suspended"
        ));
        assert!(has(
            a,
            "borrows",
            HELD[1],
            Outcome::Skipped,
            "tenant 'initech' is not in the tenants table"
        ));
        assert!(has(
            a,
            "licenses",
            "l4",
            Outcome::Skipped,
            "commit_qty is negative"
        ));
        assert!(has(
            a,
            "license_packages",
            "pkg-orphan",
            Outcome::Skipped,
            "no licenses row"
        ));
        assert!(has(
            a,
            "vendors",
            "techvendor",
            Outcome::Noted,
            "old API key is not carried over"
        ));
    }
    let described: Vec<bool> = drafts.vendors.values().map(|v| v.described).collect();
    assert_eq!(described, [true, true]);
}

#[test]
fn a_suspended_tenant_gets_suspended_pools() {
    let mut file = fixtures::multi_tenant();
    let licenses = file.get_mut("licenses").unwrap();
    licenses.rows[3][6] = crate::ops::import::cells::Cell::Int(1);
    let (drafts, _) = plan(&file, &settings(None, None, false));
    let globex = drafts
        .tenants
        .iter()
        .find(|d| d.id.as_str() == "globex")
        .unwrap();
    assert_eq!(globex.packages[0].status, PackageStatus::Suspended);
    assert_eq!(globex.tenant.vendor_id, "techvendor");
}
