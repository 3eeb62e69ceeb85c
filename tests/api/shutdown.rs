//! Graceful shutdown of the real binary: SIGTERM stops accepting connections, the
//! request in flight is finished and answered, idle keep-alive connections do not hold
//! the shutdown up, storage is flushed, the exit code is 0, and a restart sees
//! everything that was acknowledged.
use std::net::TcpStream;
use std::time::Instant;

use crate::helpers::*;

const TOKEN: &str = "shutdown-test-operator-token";

#[actix_web::test]
async fn sigterm_drains_the_request_in_flight_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder().data_dir(dir.path()).token(TOKEN);
    let proc = server.process();
    let app = proc.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let first = app.borrow_ok(&acme, ECU.id, "first").await;

    // A borrow is in flight when SIGTERM arrives: it waits behind a stall that SIGTERM
    // itself ends, so it can only complete during the shutdown.
    inject(&app, &acme, "stall?until=sigterm").await.expect(200);
    let in_flight = actix_rt::spawn(app.borrow_task(&acme, borrow_body(ECU.id, "in-flight")));
    wait_until("the borrow waits in the mailbox", || async {
        app.actors().await["tenants"][0]["mailbox_depth"] == 1
    })
    .await;
    // `app` keeps idle keep-alive connections open from here on.

    let sent = Instant::now();
    proc.signal(Signal::SIGTERM);
    proc.wait_for_log("starting graceful shutdown");
    proc.wait_for_log("accept thread stopped");
    // actix-server logs that line just before it drops the listening socket, so a
    // connect right after it can still reach the kernel's backlog: poll (bounded) until
    // connections are refused.
    wait_until("new connections are refused after SIGTERM", || async {
        TcpStream::connect(proc.addr).is_err()
    })
    .await;

    let answered = in_flight.await.unwrap();
    let second = answered.expect(200);
    let (status, logs) = proc.wait_exit();
    let took = sent.elapsed();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        logs.join("\n")
    );
    assert!(
        logs.iter().any(|l| l.contains("shutdown complete")),
        "{logs:?}"
    );
    // The shutdown timeout is 30 s: finishing well within it means nothing (idle
    // keep-alive connections included) was left to time out.
    assert!(took.as_secs() < 20, "shutdown took {took:?}");
    println!("SIGTERM to exit 0: {took:?}, one request drained");

    let proc = server.process();
    let mut ids = proc.app().borrow_ids(&acme).await;
    ids.sort();
    let mut expected = vec![
        first["id"].as_str().unwrap().to_owned(),
        second["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    proc.kill9();
}
