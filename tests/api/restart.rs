//! Acknowledged borrows survive SIGKILL of the real binary.

use crate::helpers::*;

#[actix_web::test]
async fn acknowledged_borrows_survive_sigkill_and_can_be_returned() {
    let dir = tempfile::tempdir().unwrap();
    let token = "restart-test-operator-token";
    let server = TestApp::builder().data_dir(dir.path()).token(token);
    let first = server.process();
    let app = first.app();
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(app.borrow_id(&t, ECU.id, &format!("u{i}")).await);
    }
    app.return_ok(&t.host, &ids[0]).await;
    first.kill9();

    let second = server.process();
    let app = second.app();
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(
        (s["borrowed"].as_u64(), s["overage"].as_u64()),
        (Some(7), Some(2))
    );
    assert_eq!(s["current_overage_cost"].as_f64(), Some(1500.0));
    let mut listed = app.borrow_ids(&t).await;
    listed.sort();
    let mut expected = ids[1..].to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    // The returned one stays returned; the others can be returned now.
    let r = app.return_seat(&t.host, &ids[0]).await;
    assert_eq!(r.status.as_u16(), 404);
    for id in &ids[1..] {
        app.return_ok(&t.host, id).await;
    }
    second.kill9();
}
