//! The PostgreSQL store end to end, with real brokers (`permetrix serve --store
//! postgres://…`): a v2 nonce stays spent across a handoff to another broker, and a
//! single-machine sled deployment moves in with `permetrix backup` / `permetrix
//! restore --store postgres://…`, keeping its credentials; the old license server's file
//! is imported while a broker serves. Skipped, saying why, where PostgreSQL is not
//! available.
use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "cluster-stores-operator-token";

#[actix_web::test]
async fn a_signed_borrow_is_refused_as_a_replay_by_the_broker_that_takes_its_tenant_over() {
    let test = "cluster_stores::a_signed_borrow_is_refused_as_a_replay";
    let Some(store) = TestStore::postgres(test) else {
        return;
    };
    let builder = TestApp::builder().store(&store).token(TOKEN);
    let a = builder.process();
    let b = builder.process();
    let t = bootstrap(&a.app(), "vector", "acme", &ECU).await;
    a.app()
        .tenant_put(&t, "/config/security", json!({"signature_policy": "v2"}))
        .await
        .expect(200);
    let body = serde_json::to_vec(&borrow_body(ECU.name, "dev1")).unwrap();
    let signed = |nonce: &str| v2_borrow_headers(&t, "vector", &body, nonce);
    let first = signed("5c1d2e3f4a5b");
    signed_borrow(&a.app(), &t.host, &t.admin_key, &first, &body)
        .await
        .expect(200);
    // a owns acme; b, without peer forwarding, sends the client elsewhere.
    let r = signed_borrow(&b.app(), &t.host, &t.admin_key, &first, &body).await;
    assert_eq!((r.status.as_u16(), r.code()), (503, "tenant_elsewhere"));

    // The handoff: a leaves on SIGTERM and releases acme; b acquires it with the nonce
    // that a wrote with its borrow.
    a.signal(Signal::SIGTERM);
    assert!(a.wait_exit().0.success());
    let r = signed_borrow(&b.app(), &t.host, &t.admin_key, &first, &body).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (401, "replayed_nonce"),
        "{}",
        r.body
    );
    signed_borrow(
        &b.app(),
        &t.host,
        &t.admin_key,
        &signed("6d7e8f9a0b1c"),
        &body,
    )
    .await
    .expect(200);
    assert_eq!(b.app().status_of(&t, ECU.id).await["borrowed"], 2);
}

#[actix_web::test]
async fn a_sled_backup_restores_into_postgres_and_brokers_serve_it_with_its_credentials() {
    let test = "cluster_stores::a_sled_backup_restores_into_postgres";
    let Some(store) = TestStore::postgres(test) else {
        return;
    };
    let url = store.url().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("sled");
    let file = work.path().join("permetrix.backup");
    let sled = TestApp::builder().data_dir(&dir).token(TOKEN).process();
    let t = bootstrap(&sled.app(), "vector", "acme", &ECU).await;
    let held = sled.app().borrow_ok(&t, ECU.id, "alice").await;
    sled.app().borrow_ok(&t, ECU.id, "bob").await;
    sled.signal(Signal::SIGTERM);
    assert!(sled.wait_exit().0.success());

    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    cli_ok(&args(&[
        "backup",
        "--data-dir",
        &path(&dir),
        "--out",
        &path(&file),
    ]));
    let restore = args(&["restore", "--from", &path(&file), "--store", &url]);
    let said = cli_ok(&restore);
    assert!(said.contains("PERMETRIX_SERVER_KEY"), "{said}");
    // A restore never overwrites a store.
    let refused = cli_err(&restore);
    assert!(
        refused.contains("already holds permetrix data"),
        "{refused}"
    );

    // The brokers take the sled store's key file as the deployment key.
    let key = std::fs::read_to_string(dir.join("server.key")).unwrap();
    let broker = TestApp::builder()
        .store(&store)
        .token(TOKEN)
        .env("PERMETRIX_SERVER_KEY", key.trim())
        .process();
    let app = broker.app();
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(s["borrowed"], 2, "{s}");
    app.return_ok(&t.host, held["id"].as_str().unwrap()).await;
    app.borrow_ok(&t, ECU.id, "carol").await;
    // The vendor's key and signing secret work too.
    let more = add_tenant(&app, &t.vendor_key, &t.signing_secret, "globex", &ECU).await;
    app.borrow_ok(&more, ECU.id, "dave").await;

    // And a backup of the PostgreSQL store restores into sled again.
    let back = work.path().join("from-postgres.backup");
    let said = cli_ok(&args(&["backup", "--store", &url, "--out", &path(&back)]));
    assert!(said.contains("the PostgreSQL store"), "{said}");
    let again = work.path().join("sled-again");
    cli_ok(&args(&[
        "restore",
        "--from",
        &path(&back),
        "--data-dir",
        &path(&again),
    ]));
    broker.kill9();
    let sled = TestApp::builder()
        .data_dir(&again)
        .token(TOKEN)
        .env("PERMETRIX_SERVER_KEY", key.trim())
        .process();
    let s = sled.app().status_of(&more, ECU.id).await;
    assert_eq!(s["borrowed"], 1, "{s}");
    sled.kill9();
}

#[actix_web::test]
async fn an_import_into_postgres_runs_beside_a_broker_which_then_serves_the_tenant() {
    let test = "cluster_stores::an_import_into_postgres_runs_beside_a_broker";
    let Some(store) = TestStore::postgres(test) else {
        return;
    };
    let url = store.url().unwrap();
    let broker = TestApp::builder().store(&store).token(TOKEN).process();
    let m = Move::new(single_tenant_db);
    let args = ["--tenant", "acme", "--vendor", "techvendor", "--store", url];
    // Without the deployment key nothing is written: the brokers could not read it.
    let refused = m.import(&args, Some(OLD_SIGNING_SECRET));
    assert!(!refused.status.success());
    assert!(
        refused
            .log
            .join("\n")
            .contains("PERMETRIX_SERVER_KEY is not set"),
        "{:?}",
        refused.log
    );
    let key = [("PERMETRIX_SERVER_KEY", TEST_SERVER_KEY)];
    let run = import_with_env(&m.file(), &m.data(), &args, Some(OLD_SIGNING_SECRET), &key);
    assert!(run.status.success(), "{}\n{:?}", run.report, run.log);
    let admin = run.admin_key("acme");
    // The running broker serves the tenant the import wrote, with its held seats.
    let status = broker
        .app()
        .call(
            "GET",
            "acme.localhost",
            "/licenses/status",
            Some(&admin),
            None,
        )
        .await
        .expect(200);
    let ecu = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tool"] == OLD_ECU)
        .unwrap();
    assert_eq!(ecu["borrowed"], HELD_ECU.len(), "{status}");
    // A second run finds everything in place and writes nothing.
    let again = import_with_env(&m.file(), &m.data(), &args, Some(OLD_SIGNING_SECRET), &key);
    assert!(again.status.success(), "{}", again.report);
    assert!(!again.report.contains("pmx_t_acme_"), "{}", again.report);
    broker.kill9();
}
