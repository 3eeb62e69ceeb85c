//! The tamper-evident overage ledger: both sides can check the chain, recompute every
//! hash from an export, and detect a stored charge that was changed behind the
//! broker's back (the store is rewritten through the storage crate's test support,
//! never through a production path).
use permetrix_storage::{Money, SledConfig, SledStore, Store, TenantId, test_support};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

crate::on_both_stores!(both_sides_verify_the_chain_and_exports_recompute_from_the_recipe);

const PAYG: Tool = Tool {
    name: "Model-Based Design Studio",
    id: "mbd-studio",
    commit: 0,
    overage: 10,
    price: 600.0,
};

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The chain hash of an exported charge, computed from the README's recipe alone.
fn recompute(tenant: &str, c: &Value) -> String {
    let text = |k: &str| c[k].as_str().unwrap().as_bytes().to_vec();
    let borrow_id = hex::decode(c["borrow_id"].as_str().unwrap().replace('-', "")).unwrap();
    let prev_hash = hex::decode(c["prev_hash"].as_str().unwrap()).unwrap();
    let mut h = Sha256::new();
    field(&mut h, b"permetrix-ledger-v1");
    field(&mut h, tenant.as_bytes());
    field(&mut h, &c["seq"].as_u64().unwrap().to_be_bytes());
    field(&mut h, &text("id"));
    field(&mut h, &text("product_id"));
    field(&mut h, &text("tool"));
    field(&mut h, &borrow_id);
    field(&mut h, &text("user"));
    field(&mut h, &c["charged_at_ms"].as_i64().unwrap().to_be_bytes());
    field(&mut h, &c["amount_cents"].as_i64().unwrap().to_be_bytes());
    field(&mut h, &prev_hash);
    let out: [u8; 32] = h.finalize().into();
    hex::encode(out)
}

/// Checks an export the way a vendor's own tooling would: every hash recomputes and
/// links to its predecessor. Returns the first seq that does not.
fn first_bad(tenant: &str, charges: &[Value]) -> Option<u64> {
    let mut prev = "0".repeat(64);
    for c in charges {
        if c["prev_hash"] != prev.as_str() || c["hash"] != recompute(tenant, c).as_str() {
            return c["seq"].as_u64();
        }
        prev = c["hash"].as_str().unwrap().to_owned();
    }
    None
}

async fn vendor_export(app: &TestApp, t: &Tenant) -> Vec<Value> {
    let path = format!("/api/vendor/customers/{}/overage-charges", t.id);
    let export = app
        .vendor(&t.vendor_key, "GET", &path, None)
        .await
        .expect(200);
    export["charges"].as_array().unwrap().clone()
}

async fn verify(app: &TestApp, t: &Tenant, query: &str) -> Value {
    app.tenant_get(t, &format!("/overage-charges/verify{query}"))
        .await
        .expect(200)
}

async fn vendor_verify(app: &TestApp, t: &Tenant) -> Value {
    let path = format!("/api/vendor/customers/{}/overage-charges/verify", t.id);
    app.vendor(&t.vendor_key, "GET", &path, None)
        .await
        .expect(200)
}

async fn both_sides_verify_the_chain_and_exports_recompute_from_the_recipe(store: TestStore) {
    let app = TestApp::builder().store(&store).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &PAYG).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.borrow_id(&t, PAYG.id, &format!("dev{i}")).await);
    }
    app.return_ok(&t.host, &ids[0]).await;

    let tenant_check = verify(&app, &t, "").await;
    assert_eq!(
        (
            &tenant_check["valid"],
            &tenant_check["charges"],
            &tenant_check["head_seq"],
            &tenant_check["booked_seq"]
        ),
        (&json!(true), &json!(5), &json!(5), &json!(5))
    );
    let vendor_check = vendor_verify(&app, &t).await;
    assert_eq!(vendor_check, tenant_check);

    // The vendor's export carries every hashed field: its own tooling recomputes the chain.
    let charges = vendor_export(&app, &t).await;
    assert_eq!(charges.len(), 5);
    assert_eq!(first_bad("acme", &charges), None);
    assert_eq!(charges[4]["hash"], tenant_check["head_hash"]);
    assert_eq!(charges[0]["borrow_id"], ids[0].as_str());
    // The tenant's list shows the same charges.
    let own = app.tenant_get(&t, "/overage-charges").await.expect(200);
    assert_eq!(own["charges"].as_array().unwrap(), &charges);

    // CSV carries the same hashes.
    let path = format!("/api/vendor/customers/{}/overage-charges?format=csv", t.id);
    let res = app.vendor_bytes(&t.vendor_key, &path).await;
    let mut reader = csv::Reader::from_reader(res.as_ref());
    let headers = reader.headers().unwrap().clone();
    let hash_col = headers.iter().position(|h| h == "hash").unwrap();
    let hashes: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[hash_col].to_owned())
        .collect();
    let json_hashes: Vec<String> = charges
        .iter()
        .map(|c| c["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hashes, json_hashes);

    // An anchor (a head saved earlier) that still matches verifies; one that does not, fails.
    let head = tenant_check["head_hash"].as_str().unwrap();
    let ok = verify(&app, &t, &format!("?anchor_seq=5&anchor_hash={head}")).await;
    assert_eq!(ok["valid"], true);
    let wrong = verify(&app, &t, &format!("?anchor_seq=3&anchor_hash={head}")).await;
    assert_eq!(
        (&wrong["valid"], &wrong["first_invalid_seq"]),
        (&json!(false), &json!(3))
    );
    let r = app
        .tenant_get(&t, "/overage-charges/verify?anchor_seq=3")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));

    // Another vendor cannot read this customer's ledger.
    let other = bootstrap(&app, "dspace", "initech", &PAYG).await;
    let r = app
        .vendor(
            &other.vendor_key,
            "GET",
            "/api/vendor/customers/acme/overage-charges",
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tenant"));
    let r = app
        .vendor(
            &other.vendor_key,
            "GET",
            "/api/vendor/customers/acme/overage-charges/verify",
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    app.stop().await;
}

/// Opens the stopped server's store and rewrites charges through the storage crate.
fn tamper(dir: &std::path::Path, f: impl FnOnce(&SledStore, &TenantId)) {
    let store = SledStore::open(SledConfig::new(dir)).unwrap();
    f(&store, &TenantId::parse("acme").unwrap());
    store.shutdown().unwrap();
}

#[actix_web::test]
async fn a_modified_stored_charge_is_detected_by_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let token = "ledger-test-operator-token";
    let server = TestApp::builder().data_dir(dir.path()).token(token);
    let first = server.process();
    let app = first.app();
    let t = bootstrap(&app, "vector", "acme", &PAYG).await;
    for i in 0..4 {
        app.borrow_ok(&t, PAYG.id, &format!("dev{i}")).await;
    }
    let before = verify(&app, &t, "").await;
    assert_eq!(before["valid"], true);
    let saved_head = before["head_hash"].as_str().unwrap().to_owned();
    first.kill9();

    // Someone with access to the data directory lowers charge 2.
    tamper(dir.path(), |store, acme| {
        assert!(
            test_support::rewrite_charge(store, acme, 2, |c| c.amount = Money::from_cents(1))
                .unwrap()
        );
    });
    let second = server.process();
    let app = second.app();
    let check = verify(&app, &t, "").await;
    assert_eq!(
        (
            &check["valid"],
            &check["first_invalid_seq"],
            &check["charges"]
        ),
        (&json!(false), &json!(2), &json!(1))
    );
    assert!(
        check["problem"]
            .as_str()
            .unwrap()
            .contains("does not match its hash"),
        "{check}"
    );
    assert_eq!(vendor_verify(&app, &t).await, check);
    let export = vendor_export(&app, &t).await;
    assert_eq!(export[1]["amount_cents"], 1);
    assert_eq!(
        first_bad("acme", &export),
        Some(2),
        "the vendor's own check finds it too"
    );
    second.kill9();

    // A careful forger re-hashes the chain from charge 2 on: the chain alone is consistent
    // again, but it no longer ends at the head either side saved.
    tamper(dir.path(), |store, acme| {
        let mut prev = store.charges(acme, 0, 1).unwrap()[0].hash;
        for seq in 2..=4 {
            test_support::rewrite_charge(store, acme, seq, |c| {
                c.prev_hash = prev;
                c.hash = permetrix_actors::domain::chain_hash(acme, c);
                prev = c.hash;
            })
            .unwrap();
        }
    });
    let third = server.process();
    let app = third.app();
    assert_eq!(
        verify(&app, &t, "").await["valid"],
        true,
        "no anchor, nothing to compare with"
    );
    let anchored = verify(&app, &t, &format!("?anchor_seq=4&anchor_hash={saved_head}")).await;
    assert_eq!(
        (&anchored["valid"], &anchored["first_invalid_seq"]),
        (&json!(false), &json!(4))
    );
    assert!(anchored["problem"].as_str().unwrap().contains("anchor"));
    assert_ne!(
        vendor_export(&app, &t).await[3]["hash"],
        saved_head.as_str()
    );
    third.kill9();
}

/// A CSV cell back to the text it holds: the export puts one `'` in front of a cell
/// that starts with `'`, `=`, `+`, `-` or `@` (so that a spreadsheet runs nothing), and
/// a reader removes it (docs/decisions.md, "The overage ledger is a hash chain").
fn uncell(cell: &str) -> String {
    cell.strip_prefix('\'').unwrap_or(cell).to_owned()
}

#[actix_web::test]
async fn the_csv_export_alone_verifies_whatever_the_names_start_with() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &PAYG).await;
    let users = ["=sum(a1)", "'=x", "+1", "@cmd", "-2", "''twice", "plain"];
    for user in users {
        app.borrow_ok(&t, PAYG.id, user).await;
    }
    let res = app
        .vendor_bytes(
            &t.vendor_key,
            &format!("/api/vendor/customers/{}/overage-charges?format=csv", t.id),
        )
        .await;
    let mut reader = csv::Reader::from_reader(res.as_ref());
    let headers = reader.headers().unwrap().clone();
    let charges: Vec<Value> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let cell = |name: &str| &r[headers.iter().position(|h| h == name).unwrap()];
            // No cell a spreadsheet would run as a formula.
            for c in r.iter() {
                assert!(!c.starts_with(['=', '+', '-', '@']), "{c:?}");
            }
            json!({
                "seq": cell("seq").parse::<u64>().unwrap(),
                "id": uncell(cell("id")),
                "product_id": uncell(cell("product_id")),
                "tool": uncell(cell("tool")),
                "borrow_id": cell("borrow_id"),
                "user": uncell(cell("user")),
                "charged_at_ms": cell("charged_at_ms").parse::<i64>().unwrap(),
                "amount_cents": cell("amount_cents").parse::<i64>().unwrap(),
                "prev_hash": cell("prev_hash"),
                "hash": cell("hash"),
            })
        })
        .collect();
    let names: Vec<&str> = charges
        .iter()
        .map(|c| c["user"].as_str().unwrap())
        .collect();
    assert_eq!(names, users);
    assert_eq!(first_bad("acme", &charges), None);
    app.stop().await;
}
