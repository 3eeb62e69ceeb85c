//! Metrics without a server: exact borrow counts, seat levels, removal, the guard.
use std::collections::BTreeMap;
use std::time::Duration;

use permetrix_actors::domain::{BorrowRequest, ProvisionRequest, TenantState};
use permetrix_storage::records::PackageRecord;
use permetrix_storage::test_records::{package, with_overage};
use permetrix_storage::{Money, TenantId, Timestamp};

use super::Metrics;

/// `name{labels}` → value, from the text exposition.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn state_with_pool(id: &str, commit: u32, overage: u32) -> TenantState {
    let mut state = TenantState::new(tenant(id));
    let package = PackageRecord {
        package_id: "p1".into(),
        ..with_overage(
            package("ecu", commit, Timestamp::now()),
            overage,
            Money::ZERO,
        )
    };
    state.provision(ProvisionRequest { package }).unwrap();
    state
}

#[test]
fn every_attempt_ends_in_exactly_one_outcome() {
    let m = Metrics::new(100).unwrap();
    let hooks = m.actor_hooks();
    let acme = tenant("acme");
    let _series = hooks.for_tenant(&acme);
    for overage in [false, false, true] {
        m.borrow_attempt(&acme, Some("ECU")).finish(Ok(overage));
    }
    m.borrow_attempt(&acme, Some("ECU")).finish(Err("no_seats"));
    m.borrow_attempt(&acme, None).finish(Err("unknown_tool"));
    drop(m.borrow_attempt(&acme, Some("ECU"))); // the client went away
    let v = parse(&m.render().unwrap());
    let at = |s: &str| {
        v.get(s)
            .copied()
            .unwrap_or_else(|| panic!("no {s} in {v:#?}"))
    };
    assert_eq!(
        at(r#"license_borrow_attempts_total{tenant="acme",tool="ECU"}"#),
        5.0
    );
    assert_eq!(
        at(r#"license_borrow_success_total{tenant="acme",tool="ECU"}"#),
        3.0
    );
    assert_eq!(
        at(r#"license_overage_checkouts_total{tenant="acme",tool="ECU"}"#),
        1.0
    );
    assert_eq!(
        at(r#"license_borrow_failure_total{tenant="acme",tool="ECU",reason="no_seats"}"#),
        1.0
    );
    assert_eq!(
        at(r#"license_borrow_failure_total{tenant="acme",tool="ECU",reason="cancelled"}"#),
        1.0
    );
    assert_eq!(
        at(r#"license_borrow_failure_total{tenant="acme",tool="_unknown",reason="unknown_tool"}"#),
        1.0
    );
    assert_eq!(
        at(r#"license_borrow_duration_seconds_count{tenant="acme"}"#),
        6.0
    );
}

#[test]
fn seat_gauges_follow_the_published_levels_and_removed_tenants_vanish() {
    let m = Metrics::new(100).unwrap();
    let hooks = m.actor_hooks();
    let acme = tenant("acme");
    let series = hooks.for_tenant(&acme);
    let mut state = state_with_pool("acme", 1, 2);
    let now = Timestamp::now();
    for user in ["a", "b"] {
        let req = BorrowRequest::parse("ECU", user, None).unwrap();
        state.borrow(&req, now).unwrap();
    }
    series.levels(&state);
    series.message_handled("borrow", Duration::from_micros(30));
    series.restarted();
    series.rejected();
    let v = parse(&m.render().unwrap());
    assert_eq!(v[r#"licenses_borrowed{tenant="acme",tool="ECU"}"#], 2.0);
    assert_eq!(v[r#"licenses_total{tenant="acme",tool="ECU"}"#], 3.0);
    assert_eq!(v[r#"licenses_overage{tenant="acme",tool="ECU"}"#], 1.0);
    assert_eq!(
        v[r#"permetrix_tenant_message_duration_seconds_count{tenant="acme",message="borrow"}"#],
        1.0
    );
    assert_eq!(
        v[r#"permetrix_tenant_actor_restarts_total{tenant="acme"}"#],
        1.0
    );
    assert_eq!(
        v[r#"permetrix_tenant_mailbox_rejections_total{tenant="acme"}"#],
        1.0
    );

    hooks.tenant_removed(&acme);
    let text = m.render().unwrap();
    assert!(!text.contains("acme"), "{text}");
}

#[test]
fn beyond_the_limit_idle_tenants_are_summed_into_other() {
    let m = Metrics::new(2).unwrap();
    let hooks = m.actor_hooks();
    let ids = ["t1", "t2", "t3", "t4", "t5"];
    let mut handles = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let t = tenant(id);
        handles.push(hooks.for_tenant(&t));
        for _ in 0..=i {
            m.borrow_attempt(&t, Some("ECU")).finish(Ok(false));
        }
        let state = state_with_pool(id, 5, 0);
        handles[i].levels(&state);
        // Activity order: t5 is the most recent, then t4.
        m.tenants.get(&t).unwrap().set_last_active(100 + i as u64);
    }
    let v = parse(&m.render().unwrap());
    let attempts: BTreeMap<&str, f64> = v
        .iter()
        .filter(|(k, _)| k.starts_with("license_borrow_attempts_total{"))
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    assert_eq!(
        attempts,
        BTreeMap::from([
            (
                r#"license_borrow_attempts_total{tenant="_other",tool="ECU"}"#,
                6.0
            ),
            (
                r#"license_borrow_attempts_total{tenant="t4",tool="ECU"}"#,
                4.0
            ),
            (
                r#"license_borrow_attempts_total{tenant="t5",tool="ECU"}"#,
                5.0
            ),
        ])
    );
    // Gauges of the aggregated tenants add up too; histograms keep their totals.
    assert_eq!(v[r#"licenses_total{tenant="_other",tool="ECU"}"#], 15.0);
    assert_eq!(
        v[r#"license_borrow_duration_seconds_count{tenant="_other"}"#],
        6.0
    );
}

#[test]
fn a_quarantined_tenant_is_a_gauge_and_a_count_and_keeps_its_own_label() {
    let m = Metrics::new(1).unwrap();
    let hooks = m.actor_hooks();
    let (sick, busy) = (tenant("sick"), tenant("busy"));
    let sick_series = hooks.for_tenant(&sick);
    hooks.for_tenant(&busy);
    sick_series.quarantine_changed(true);
    // `busy` was active last; the quarantined tenant still keeps its name.
    m.tenants.get(&sick).unwrap().set_last_active(1);
    m.tenants.get(&busy).unwrap().set_last_active(1_000);
    let v = parse(&m.render().unwrap());
    assert_eq!(v[r#"permetrix_tenant_quarantined{tenant="sick"}"#], 1.0);
    assert_eq!(
        v[r#"permetrix_tenant_quarantines_total{tenant="sick"}"#],
        1.0
    );
    assert_eq!(v[r#"permetrix_tenant_quarantined{tenant="_other"}"#], 0.0);

    sick_series.quarantine_changed(false);
    let v = parse(&m.render().unwrap());
    assert_eq!(v[r#"permetrix_tenant_quarantined{tenant="busy"}"#], 0.0);
    assert_eq!(
        v[r#"permetrix_tenant_quarantines_total{tenant="_other"}"#],
        1.0
    );
}
