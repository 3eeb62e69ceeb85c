use permetrix_storage::records::{Scope, UserRole};
use permetrix_storage::{Money, Timestamp};

use super::*;
use crate::ops::import::anomalies::{Anomaly, Outcome};
use crate::ops::import::fixtures::{self, ECU, HELD};

const NOW: Timestamp = Timestamp::from_secs(1_765_000_000);

fn read_single() -> (Rows, Vec<Anomaly>) {
    let mut anomalies = Anomalies::default();
    let rows = read(&fixtures::single_tenant(), NOW, &mut anomalies);
    (rows, anomalies.0)
}

fn about<'a>(anomalies: &'a [Anomaly], table: &str, row: &str) -> Vec<&'a Anomaly> {
    anomalies
        .iter()
        .filter(|a| a.table == table && a.row == row)
        .collect()
}

fn has(anomalies: &[Anomaly], table: &str, row: &str, outcome: Outcome, text: &str) -> bool {
    about(anomalies, table, row)
        .iter()
        .any(|a| a.outcome == outcome && a.detail.contains(text))
}

#[test]
fn pools_take_the_vendor_columns_and_keep_only_lowering_restrictions() {
    let (rows, anomalies) = read_single();
    let ecu = &rows.licenses[0];
    assert_eq!(
        (
            ecu.limits.total,
            ecu.limits.commit_qty,
            ecu.limits.max_overage
        ),
        (25, 5, 20)
    );
    assert_eq!(ecu.customer_total, Some(18));
    assert_eq!(ecu.customer_max_spend, Some(Money::from_cents(250_000)));
    assert_eq!(ecu.overage_price, Money::from_cents(50_000));
    assert_eq!(ecu.borrowed, Some(7));
    assert!(about(&anomalies, "licenses", ECU).is_empty());
    assert_eq!(rows.counts.get("licenses"), Some(&2));
}

#[test]
fn inconsistent_limits_keep_the_total_and_the_commit() {
    let mut file = fixtures::single_tenant();
    file.get_mut("licenses").unwrap().rows = vec![fixtures::row![
        "T", 10, 0, 4, 2, 0.0, 0.0, NULL, NULL, NULL, 12, 3, NULL, NULL
    ]];
    let mut anomalies = Anomalies::default();
    let rows = read(&file, NOW, &mut anomalies);
    let t = &rows.licenses[0];
    assert_eq!(
        (t.limits.total, t.limits.commit_qty, t.limits.max_overage),
        (10, 4, 6)
    );
    assert_eq!(t.customer_total, None);
    let a = &anomalies.0;
    assert!(has(
        a,
        "licenses",
        "T",
        Outcome::Adjusted,
        "imported as total 10, commit 4, overage 6"
    ));
    assert!(has(
        a,
        "licenses",
        "T",
        Outcome::Noted,
        "customer_total 12 is above"
    ));
    assert!(has(
        a,
        "licenses",
        "T",
        Outcome::Noted,
        "customer_commit_qty 3 has no counterpart"
    ));
}

use crate::ops::import::fixtures::NULL;

#[test]
fn negative_counts_refuse_the_row() {
    let mut file = fixtures::single_tenant();
    file.get_mut("licenses").unwrap().rows = vec![fixtures::row![
        "T", 10, 0, -4, 2, 0.0, 0.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    ]];
    let mut anomalies = Anomalies::default();
    let rows = read(&file, NOW, &mut anomalies);
    assert!(rows.licenses.is_empty());
    assert!(has(
        &anomalies.0,
        "licenses",
        "T",
        Outcome::Skipped,
        "commit_qty is negative (-4)"
    ));
}

#[test]
fn borrows_need_a_random_uuid_and_a_readable_time() {
    let (rows, anomalies) = read_single();
    // The unknown tool is the plan's to find: the row itself is fine.
    assert_eq!(rows.borrows.len(), 4);
    assert_eq!(rows.borrows[0].id.to_string(), HELD[0]);
    assert!(rows.borrows[2].is_overage);
    assert!(has(
        &anomalies,
        "borrows",
        "not-a-uuid",
        Outcome::Skipped,
        "is not a UUID"
    ));
    assert!(has(
        &anomalies,
        "borrows",
        "0d5b6a7f-8e9d-4cac-bb0a-b9c8d7e6f5a4",
        Outcome::Skipped,
        "borrowed_at 'last tuesday' is not an ISO 8601 time"
    ));
    // A naive time is UTC, and said.
    assert!(has(
        &anomalies,
        "borrows",
        HELD[1],
        Outcome::Noted,
        "has no offset; read as UTC"
    ));
    assert_eq!(
        rows.borrows[1].borrowed_at,
        Timestamp::from_secs(1_762_510_562)
    );
    // Version 1 (time-based) UUIDs are guessable: refused.
    let mut file = fixtures::single_tenant();
    file.get_mut("borrows").unwrap().rows = vec![fixtures::row![
        "6f1d2c3b-4a59-1e68-b7c6-d5e4f3a2b1c0",
        ECU,
        "u",
        "2025-11-07T10:15:02Z",
        0
    ]];
    let mut more = Anomalies::default();
    assert!(read(&file, NOW, &mut more).borrows.is_empty());
    assert!(more.0[0].detail.contains("not a random (version 4) UUID"));
}

#[test]
fn charges_round_to_cents_and_refuse_negative_amounts() {
    let (rows, anomalies) = read_single();
    assert_eq!(rows.charges.len(), 2);
    let c1 = rows.charges.iter().find(|c| c.id == "c1").unwrap();
    assert_eq!(c1.amount, Money::from_cents(1235));
    assert_eq!(c1.exact, 12.345);
    assert_eq!(c1.borrow_id.to_string(), pools::NO_BORROW);
    assert!(has(
        &anomalies,
        "overage_charges",
        "c1",
        Outcome::Adjusted,
        "12.345 is not a whole number of cents; imported as 12.35"
    ));
    assert!(has(
        &anomalies,
        "overage_charges",
        "c1",
        Outcome::Adjusted,
        "borrow_id 'bogus' is not a UUID"
    ));
    assert!(has(
        &anomalies,
        "overage_charges",
        "c3",
        Outcome::Skipped,
        "amount -5 is negative"
    ));
}

#[test]
fn keys_keep_their_hash_status_and_a_mapped_scope() {
    let (rows, anomalies) = read_single();
    assert_eq!(rows.keys.len(), 3);
    let farm = &rows.keys[0];
    assert_eq!(
        (farm.scope, farm.revoked, farm.environment.as_deref()),
        (Scope::Borrow, false, Some("live"))
    );
    assert_eq!(farm.last_used_at, Some(Timestamp::from_secs(1_762_509_600)));
    let old = &rows.keys[1];
    assert!(old.revoked);
    assert!(has(
        &anomalies,
        "api_keys",
        &old.id,
        Outcome::Noted,
        "narrower than permetrix's borrow scope"
    ));
    let ops = &rows.keys[2];
    assert_eq!(ops.scope, Scope::Admin);
    assert_eq!(ops.sha256_hex, "c".repeat(64));
    assert!(ops.expires_at.is_some());
    assert!(has(
        &anomalies,
        "api_keys",
        &ops.id,
        Outcome::Noted,
        "fly not known; mapped to admin"
    ));
    assert!(has(
        &anomalies,
        "api_keys",
        "key_0000000000000004",
        Outcome::Skipped,
        "is not a hex SHA-256"
    ));
}

#[test]
fn scopes_map_to_admin_only_when_the_old_key_was_one() {
    assert_eq!(map_scopes("borrow,return,status"), (Scope::Borrow, vec![]));
    assert_eq!(map_scopes("Admin"), (Scope::Admin, vec![]));
    assert_eq!(map_scopes("borrow, *"), (Scope::Admin, vec![]));
    assert_eq!(
        map_scopes("read,borrow"),
        (Scope::Borrow, vec!["read".to_owned()])
    );
    assert_eq!(map_scopes(""), (Scope::Borrow, vec![]));
}

#[test]
fn users_keep_a_passlib_hash_and_otherwise_need_a_password() {
    let (rows, anomalies) = read_single();
    let names: Vec<&str> = rows.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["ann", "bob", "carl"]);
    assert!(matches!(
        rows.users[0].password,
        PasswordSource::Imported(_)
    ));
    assert_eq!(rows.users[0].role, UserRole::Admin);
    assert_eq!(rows.users[1].password, PasswordSource::NotSet);
    assert_eq!(rows.users[1].role, UserRole::Viewer);
    assert_eq!(rows.users[2].password, PasswordSource::NotSet);
    assert!(has(
        &anomalies,
        "users",
        "bob",
        Outcome::Noted,
        "password 'pending'"
    ));
    assert!(has(
        &anomalies,
        "users",
        "carl",
        Outcome::Adjusted,
        "not a passlib pbkdf2_sha256 hash"
    ));
    assert!(has(
        &anomalies,
        "users",
        "vendy",
        Outcome::Skipped,
        "a vendor portal user"
    ));
    assert!(has(
        &anomalies,
        "users",
        "no spaces allowed",
        Outcome::Skipped,
        "is not 1-64 of"
    ));
}
