use permetrix_storage::BorrowId;

use super::*;
use crate::ops::import::fixtures::single_tenant_draft as draft;

fn kinds(m: &[TenantMutation]) -> Vec<&'static str> {
    m.iter()
        .map(|m| match m {
            TenantMutation::PutPackage(_) => "package",
            TenantMutation::PutRestriction(_) => "restriction",
            TenantMutation::PutSettings(_) => "settings",
            TenantMutation::DeleteLease(_) => "delete lease",
            TenantMutation::PutLease(_) => "lease",
            TenantMutation::AppendCharge(_) => "charge",
            TenantMutation::PutSpend(_) => "spend",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_new_tenant_gets_all_its_state_and_a_resumed_one_the_rest() {
    let d = draft();
    let all = mutations(&d, &Verdict::New);
    assert_eq!(
        kinds(&all),
        [
            "package",
            "package",
            "restriction",
            "settings",
            "lease",
            "lease",
            "lease",
            "charge",
            "charge",
            "spend",
            "spend"
        ]
    );
    let stale = BorrowId::random();
    let rest = mutations(
        &d,
        &Verdict::Resume {
            stale_leases: vec![stale],
            charges_done: 1,
        },
    );
    assert!(matches!(rest[4], TenantMutation::DeleteLease(id) if id == stale));
    let charges: Vec<u64> = rest
        .iter()
        .filter_map(|m| match m {
            TenantMutation::AppendCharge(c) => Some(c.seq),
            _ => None,
        })
        .collect();
    assert_eq!(charges, [2]);
}
