//! `permetrix import sqlite`: the old license server's file moves in, and what its
//! clients and users had keeps working against the real server on the imported store.
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

const ACME: &str = "acme.localhost";
const SINGLE: [&str; 4] = ["--tenant", "acme", "--vendor", "techvendor"];

async fn users(app: &TestApp, admin: &str) -> Value {
    app.call("GET", ACME, "/api/users", Some(admin), None)
        .await
        .expect(200)
}

fn password_state<'a>(users: &'a Value, name: &str) -> &'a str {
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .and_then(|u| u["password"].as_str())
        .unwrap_or_else(|| panic!("no user {name} in {users}"))
}

#[actix_web::test]
async fn a_single_tenant_file_moves_in_with_its_keys_passwords_seats_and_charges() {
    let m = Move::new(single_tenant_db);

    // A dry run reports what it would do and writes nothing, not even the directory.
    let dry = m.import(
        &[&SINGLE[..], &["--dry-run"]].concat(),
        Some(OLD_SIGNING_SECRET),
    );
    succeeded(&dry);
    assert!(
        dry.line("acme (vendor techvendor)")
            .contains("would be created")
    );
    assert!(
        !m.data().exists(),
        "a dry run created {}",
        m.data().display()
    );

    let first = m.import(&SINGLE, Some(OLD_SIGNING_SECRET));
    succeeded(&first);
    let admin = first.admin_key("acme");
    assert!(
        first.line("borrows").ends_with("8         5             3"),
        "{}",
        first.report
    );
    // A second run finds the same tenant and changes nothing: no second admin key.
    let second = m.import(&SINGLE, Some(OLD_SIGNING_SECRET));
    succeeded(&second);
    assert!(
        second
            .line("acme (vendor techvendor)")
            .contains("unchanged")
    );
    assert!(!second.report.contains("pmx_t_"), "{}", second.report);

    let server = m.server();
    let app = server.app();

    // Status counts are the file's rows (not its counters), for anyone (anonymous
    // status is on, as the old server had it).
    let status = app
        .call("GET", ACME, "/licenses/status", None, None)
        .await
        .expect(200);
    let ecu = status_of(&status, OLD_ECU);
    assert_eq!((&ecu["total"], &ecu["borrowed"]), (&json!(20), &json!(2)));
    let can = status_of(&status, OLD_CAN);
    assert_eq!(
        (&can["total"], &can["borrowed"], &can["available"]),
        (&json!(2), &json!(3), &json!(0))
    );
    assert_eq!(status.as_array().unwrap().len(), 2, "{status}");

    // The old keys work unchanged on their tenant's host; the revoked one does not.
    app.call("GET", ACME, "/borrows", Some(OLD_KEY), None)
        .await
        .expect(200);
    let revoked = app
        .call("GET", ACME, "/borrows", Some(OLD_REVOKED_KEY), None)
        .await;
    assert_eq!(revoked.status.as_u16(), 401, "{}", revoked.body);
    let old_admin = app
        .call("GET", ACME, "/api/keys", Some(OLD_ADMIN_KEY), None)
        .await;
    let keys = old_admin.expect(200);
    let imported: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["imported"] == true)
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        imported,
        [
            "key_00000000000000a1",
            "key_00000000000000a2",
            "key_00000000000000a3"
        ]
    );
    assert_eq!(keys["keys"].as_array().unwrap().len(), 4, "{keys}");

    // A seat held before the move is returned after it by its old id, without a key.
    let returned = app
        .call(
            "POST",
            ACME,
            "/licenses/return",
            None,
            Some(json!({"id": HELD_CAN[0]})),
        )
        .await
        .expect(200);
    assert_eq!(returned, json!({"status": "ok", "tool": OLD_CAN}));

    // The charges are the ledger, which verifies; this month's carry into the budget.
    let check = app
        .call("GET", ACME, "/overage-charges/verify", Some(OLD_KEY), None)
        .await
        .expect(200);
    assert_eq!(
        (&check["valid"], &check["charges"]),
        (&json!(true), &json!(3))
    );
    let budget = app
        .call("GET", ACME, "/config/budget", Some(&admin), None)
        .await
        .expect(200);
    let line = &budget["tools"].as_array().unwrap()[0];
    assert_eq!(line["tool"], OLD_CAN);
    let line = budget["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tool"] == OLD_ECU)
        .unwrap();
    assert_eq!(line["month_to_date_overage_cost"], json!(512.35));
    assert_eq!(line["customer_max_spend"], json!(2500.0));
    assert_eq!(line["remaining_spend"], json!(1987.65));

    // The old password logs in, and is then kept as argon2id.
    assert_eq!(
        password_state(&users(&app, &admin).await, "ann"),
        "imported"
    );
    let ann = portal(&app, ACME, "Ann", ANN_PASSWORD).await;
    ann.get(&app, "/licenses/status").await.expect(200);
    assert_eq!(password_state(&users(&app, &admin).await, "ann"), "set");
    let again = login(&app, ACME, "ann", ANN_PASSWORD).await;
    assert_eq!(again.status.as_u16(), 200, "{}", again.body);
    let wrong = login(&app, ACME, "ann", "Passwort 1").await;
    assert_eq!(wrong.status.as_u16(), 401);

    // A user whose password was never set cannot log in until an admin sets one.
    assert_eq!(password_state(&users(&app, &admin).await, "bob"), "not_set");
    let pending = login(&app, ACME, "bob", "whatever-it-is").await;
    assert_eq!(pending.status.as_u16(), 401);
    app.call(
        "PUT",
        ACME,
        "/api/users/bob/password",
        Some(&admin),
        Some(json!({"password": "bobs-new-password"})),
    )
    .await
    .expect(200);
    portal(&app, ACME, "bob", "bobs-new-password").await;

    // An old key never works on another tenant's host.
    let other = bootstrap(&app, "vector", "initech", &BUS).await;
    let elsewhere = app
        .call("GET", &other.host, "/borrows", Some(OLD_KEY), None)
        .await;
    assert_eq!(elsewhere.status.as_u16(), 403, "{}", elsewhere.body);

    // Rotating an imported key is one call: a pmx_t_ key with its name and scope, and
    // the old key stops working.
    let rotated = app
        .call(
            "POST",
            ACME,
            "/api/keys/key_00000000000000a1/rotate",
            Some(&admin),
            None,
        )
        .await
        .expect(201);
    assert_eq!(
        (&rotated["replaced_key_id"], &rotated["scope"]),
        (&json!("key_00000000000000a1"), &json!("borrow"))
    );
    let new_key = rotated["api_key"].as_str().unwrap();
    assert!(new_key.starts_with("pmx_t_acme_"));
    app.call("GET", ACME, "/borrows", Some(new_key), None)
        .await
        .expect(200);
    let old = app.call("GET", ACME, "/borrows", Some(OLD_KEY), None).await;
    assert_eq!(old.status.as_u16(), 401);
}

/// v1 signature of a borrow, as the old client libraries compute it.
fn v1_signature(secret: &str, tool: &str, user: &str, timestamp: &str, key: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{tool}|{user}|{timestamp}|{key}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[actix_web::test]
async fn an_existing_client_keeps_working_with_its_old_key_and_signing_secret() {
    let m = Move::new(single_tenant_db);
    succeeded(&m.import(&SINGLE, Some(OLD_SIGNING_SECRET)));
    let server = m.server();

    // Plain HTTP/1.1 on one kept-alive connection, as the old clients speak it.
    let mut conn = RawConn::open(server.addr);
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature = v1_signature(
        OLD_SIGNING_SECRET,
        OLD_ECU,
        "build-agent-7",
        &timestamp,
        OLD_KEY,
    );
    let bearer = format!("Bearer {OLD_KEY}");
    let body = format!(r#"{{"tool":"{OLD_ECU}","user":"build-agent-7"}}"#);
    let json = ("Content-Type", "application/json");
    conn.send(
        "POST",
        "/licenses/borrow",
        ACME,
        &[
            ("Authorization", &bearer),
            json,
            ("X-Signature", &signature),
            ("X-Timestamp", &timestamp),
            ("X-Vendor-ID", "techvendor"),
        ],
        &body,
    );
    let (status, _, borrowed) = conn.answer();
    assert_eq!(status, 200, "{borrowed}");
    assert_eq!(
        (&borrowed["tool"], &borrowed["user"]),
        (&json!(OLD_ECU), &json!("build-agent-7"))
    );
    let id = borrowed["id"].as_str().unwrap().to_owned();

    // The tenant requires v1 signatures, as the old server did.
    conn.send(
        "POST",
        "/licenses/borrow",
        ACME,
        &[("Authorization", &bearer), json],
        &body,
    );
    let (status, _, unsigned) = conn.answer();
    assert_eq!(
        (status, &unsigned["error"]),
        (401, &json!("missing_signature"))
    );

    // Status without a key, a bare array; the return without one.
    conn.send("GET", "/licenses/status", ACME, &[], "");
    let (status, _, all) = conn.answer();
    assert_eq!(status, 200);
    assert_eq!(status_of(&all, OLD_ECU)["borrowed"], json!(3));
    conn.send(
        "POST",
        "/licenses/return",
        ACME,
        &[json],
        &format!(r#"{{"id":"{id}"}}"#),
    );
    let (status, _, returned) = conn.answer();
    assert_eq!((status, &returned["status"]), (200, &json!("ok")));
}
