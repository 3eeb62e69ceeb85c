use permetrix_storage::records::{Lifecycle, Scope, SealedSecret, VendorRecord};
use permetrix_storage::{Timestamp, VendorId};

use super::*;
use crate::ops::import::fixtures::single_tenant_draft as draft;

/// The store after a complete import of `d` (as a later run reads it).
fn imported(d: &Draft) -> Existing {
    Existing {
        tenant: Some(d.tenant.clone()),
        state: TenantRecords {
            packages: d.packages.clone(),
            leases: d.leases.clone(),
            settings: Some(d.settings.clone()),
            restrictions: d.restrictions.clone(),
            ..TenantRecords::default()
        },
        charges: d.charges.clone(),
        keys: d.keys.iter().map(|k| k.key.clone()).collect(),
        key_lookups: vec![None; d.keys.len()],
        users: d.users.clone(),
        package_index: vec![None; d.packages.len()],
    }
}

fn fresh(d: &Draft) -> Existing {
    Existing {
        key_lookups: vec![None; d.keys.len()],
        package_index: vec![None; d.packages.len()],
        ..Existing::default()
    }
}

#[test]
fn a_tenant_not_in_the_store_is_new() {
    let d = draft();
    assert_eq!(tenant(&d, &fresh(&d)), Verdict::New);
}

#[test]
fn the_same_tenant_again_is_unchanged_even_after_use() {
    let d = draft();
    let mut e = imported(&d);
    assert_eq!(tenant(&d, &e), Verdict::Unchanged);
    // What the import chose or use changed since does not count: lease expiry, a key
    // created in permetrix, a password upgraded at login, the times it supplied.
    e.state.leases[0].lease_expires_at = Timestamp::from_secs(1);
    e.keys.push(ApiKeyRecord {
        key_id: "admin1".into(),
        scope: Scope::Admin,
        ..e.keys[0].clone()
    });
    e.users[0].password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    e.users[0].user_id = "other".into();
    e.state.packages[0].created_at = Timestamp::from_secs(5);
    assert_eq!(tenant(&d, &e), Verdict::Unchanged);
}

#[test]
fn different_data_under_the_same_id_is_a_refusal_naming_it() {
    let d = draft();
    type Change = fn(&mut Existing);
    let changes: [(&str, Change); 6] = [
        ("tenant", |e| {
            e.tenant.as_mut().unwrap().vendor_id = "vector".into();
        }),
        ("pools", |e| e.state.packages[0].total += 1),
        ("held seats", |e| drop(e.state.leases.pop())),
        ("ledger", |e| e.charges[0].hash = [9; 32]),
        ("API key key_0000000000000001", |e| {
            e.keys[0].revoked_at = Some(Timestamp::from_secs(1));
        }),
        ("settings", |e| e.state.settings = None),
    ];
    for (what, change) in changes {
        let mut e = imported(&d);
        change(&mut e);
        match tenant(&d, &e) {
            Verdict::Conflict(why) => {
                assert!(
                    why.contains("tenant acme already exists with different data"),
                    "{why}"
                );
                assert!(why.contains(what), "{what}: {why}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn ids_taken_by_another_tenant_are_refused() {
    let d = draft();
    let mut e = fresh(&d);
    e.key_lookups[0] = Some(LegacyKeyRecord {
        tenant_id: "globex".into(),
        key_id: "key_x".into(),
        environment: None,
    });
    let Verdict::Conflict(why) = tenant(&d, &e) else {
        panic!("not refused")
    };
    assert!(why.contains("same key as key_x of tenant globex"), "{why}");
}

#[test]
fn a_run_that_stopped_halfway_is_finished() {
    let d = draft();
    let mut e = fresh(&d);
    // The state landed, the tenant record did not; one lease is no longer in the file.
    e.state.packages = d.packages.clone();
    e.state.settings = Some(d.settings.clone());
    e.state.leases = d.leases.clone();
    let mut gone = d.leases[0].clone();
    gone.id = permetrix_storage::BorrowId::random();
    e.state.leases.push(gone.clone());
    e.charges = d.charges[..1].to_vec();
    assert_eq!(
        tenant(&d, &e),
        Verdict::Resume {
            stale_leases: vec![gone.id],
            charges_done: 1
        }
    );
    // A ledger that is not where this file's starts cannot be finished.
    e.charges[0].hash = [1; 32];
    assert!(matches!(tenant(&d, &e), Verdict::Conflict(_)));
}

fn stored_vendor(name: &str) -> VendorRecord {
    VendorRecord {
        vendor_id: "techvendor".into(),
        vendor_name: name.into(),
        contact_email: None,
        api_key_digest: [0; 32],
        signing_secret: SealedSecret {
            nonce: vec![],
            ciphertext: vec![],
        },
        previous_signing_secret: None,
        password_hash: None,
        created_at: Timestamp::from_secs(1),
        lifecycle: Lifecycle::Active,
    }
}

#[test]
fn vendors_are_used_when_they_match_and_refused_when_not() {
    let d = VendorDraft {
        id: VendorId::parse("techvendor").unwrap(),
        name: "Tech".into(),
        contact_email: None,
        created_at: None,
        described: true,
    };
    assert_eq!(vendor(&d, None, None), VendorVerdict::New);
    let same = stored_vendor("Tech");
    assert_eq!(vendor(&d, Some(&same), Some(true)), VendorVerdict::Existing);
    let other = stored_vendor("Other");
    assert!(matches!(
        vendor(&d, Some(&other), None),
        VendorVerdict::Conflict(_)
    ));
    let VendorVerdict::Conflict(why) = vendor(&d, Some(&same), Some(false)) else {
        panic!("not refused")
    };
    assert!(why.contains("another signing secret"), "{why}");
    // Only its id is known (a single-tenant file): any live vendor of that id will do.
    let bare = VendorDraft {
        described: false,
        ..d
    };
    assert_eq!(vendor(&bare, Some(&other), None), VendorVerdict::Existing);
}
