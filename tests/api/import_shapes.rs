//! `permetrix import sqlite` on a file of both shapes at once, and the refusals: what
//! is in the way is named, and nothing is written.
use serde_json::json;

use crate::helpers::*;

const ACME: &str = "acme.localhost";
const GLOBEX: &str = "globex.localhost";
const SINGLE: [&str; 4] = ["--tenant", "acme", "--vendor", "techvendor"];

#[actix_web::test]
async fn both_shapes_in_one_file_import_every_tenant_with_keys_bound_to_their_host() {
    let m = Move::new(both_shapes_db);
    let run = m.import(&SINGLE, None);
    succeeded(&run);
    assert!(run.line("globex (vendor techvendor)").contains("created"));
    assert!(run.line("  techvendor ").contains("created"));
    let acme_admin = run.admin_key("acme");
    let server = m.server();
    let app = server.app();

    let globex = app
        .call(
            "GET",
            GLOBEX,
            "/licenses/status",
            Some(GLOBEX_OLD_KEY),
            None,
        )
        .await
        .expect(200);
    assert_eq!(status_of(&globex, OLD_MBD)["borrowed"], json!(1));
    let acme = app
        .call("GET", ACME, "/licenses/status", Some(OLD_KEY), None)
        .await
        .expect(200);
    assert_eq!(status_of(&acme, OLD_ECU)["borrowed"], json!(2));
    // Without --signing-secret, signatures are off: the old key borrows unsigned.
    app.borrow_with(ACME, OLD_KEY, OLD_ECU, "dev7")
        .await
        .expect(200);

    // Each old key on the other tenant's host: refused.
    for (host, key) in [(ACME, GLOBEX_OLD_KEY), (GLOBEX, OLD_KEY)] {
        let r = app.call("GET", host, "/borrows", Some(key), None).await;
        assert_eq!(r.status.as_u16(), 403, "{host}: {}", r.body);
    }
    // A borrow id returns on its own tenant's host only.
    let wrong_host = app.return_seat(ACME, HELD_GLOBEX).await;
    assert_eq!(wrong_host.status.as_u16(), 404);
    app.return_ok(GLOBEX, HELD_GLOBEX).await;
    // The vendor the file describes has its name; its tenants are listed.
    let tenants = app
        .operator("GET", "/api/admin/tenants", None)
        .await
        .expect(200);
    let text = tenants.to_string();
    assert!(
        text.contains("Globex Motors") && text.contains("\"acme\""),
        "{text}"
    );
    app.call("GET", ACME, "/api/keys", Some(&acme_admin), None)
        .await
        .expect(200);

    // The multi-tenant shape alone: no --tenant needed, and none accepted.
    let multi = Move::new(multi_tenant_db);
    succeeded(&multi.import(&[], None));
    let refused = multi.import(&SINGLE, None);
    assert!(!refused.status.success());
    assert!(
        refused.report.contains("--tenant acme names the tenant"),
        "{}",
        refused.report
    );
}

#[actix_web::test]
async fn refusals_name_what_is_in_the_way_and_write_nothing() {
    let m = Move::new(single_tenant_db);
    // A tenant acme exists already, with other data.
    let server = m.server();
    let app = server.app();
    let existing = bootstrap(&app, "vector", "acme", &BUS).await;

    // The data directory is the running server's: refused.
    let busy = m.import(&SINGLE, None);
    assert!(!busy.status.success());
    let said = busy.log.join("\n");
    assert!(
        said.contains("is in use by a running server; stop it"),
        "{said}"
    );
    drop(app);
    server.signal(Signal::SIGTERM);
    let (stopped, _) = server.wait_exit();
    assert!(stopped.success());

    // The tenant id is taken with other data: refused, naming it.
    let taken = m.import(&SINGLE, None);
    assert!(!taken.status.success());
    assert!(
        taken
            .report
            .contains("tenant acme already exists with different data"),
        "{}",
        taken.report
    );
    assert!(taken.report.contains("REFUSED — nothing was written"));

    let server = m.server();
    let app = server.app();
    let keys = app
        .call("GET", ACME, "/api/keys", Some(&existing.admin_key), None)
        .await
        .expect(200);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    let old = app.call("GET", ACME, "/borrows", Some(OLD_KEY), None).await;
    assert_eq!(old.status.as_u16(), 401);
    let vendor = app
        .vendor(&existing.vendor_key, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(vendor.expect(200)["customers"].as_array().unwrap().len(), 1);
    let techvendor = app
        .operator("GET", "/api/admin/vendors", None)
        .await
        .expect(200);
    assert!(
        !techvendor.to_string().contains("techvendor"),
        "{techvendor}"
    );
}
