//! Storage faults on the real binary: every write fails while its file-size limit is 0
//! (what a full disk looks like to sled: writes fail, reads work), set and cleared from
//! outside with prlimit(2), which works as root as well (unlike a read-only directory).
//!
//! While the fault lasts, writes answer 503 `storage_unavailable` and are not
//! acknowledged, nothing is served from memory that is ahead of the disk, and the
//! process stays up. Once the limit is lifted the store is reopened from disk, the
//! server serves again, and memory and disk agree: the refused writes are in neither.
use rustix::process::{Pid, Resource, Rlimit, prlimit};

use crate::helpers::*;

const TOKEN: &str = "storage-fault-operator-token";

fn file_size_limit(proc: &ServerProcess, limit: Option<u64>) {
    let pid = Pid::from_raw(proc.pid() as i32).unwrap();
    prlimit(
        Some(pid),
        Resource::Fsize,
        Rlimit {
            current: limit,
            maximum: None,
        },
    )
    .expect("prlimit on the child");
}

/// Polls `/ready` (bounded) until it answers `status`.
async fn until_ready_is(app: &TestApp, status: u16) {
    wait_until(&format!("/ready answers {status}"), || async {
        let r = app.call("GET", "localhost", "/ready", None, None).await;
        if r.status.as_u16() == status {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
    .await;
}

#[actix_web::test]
async fn failed_writes_are_refused_not_acknowledged_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    scenario(TestApp::builder().data_dir(dir.path()).token(TOKEN), true).await;
}

/// The same with the log in a regular file, which the fault makes unwritable too: a log
/// line that cannot be written must not take a thread down with it.
#[actix_web::test]
async fn the_server_recovers_when_its_log_file_cannot_be_written_either() {
    let dir = tempfile::tempdir().unwrap();
    let log = tempfile::tempdir().unwrap();
    let server = TestApp::builder()
        .data_dir(dir.path())
        .token(TOKEN)
        .log_file(&log.path().join("server.log"));
    scenario(server, false).await;
}

/// `logged`: whether log lines written during the fault reach the log.
async fn scenario(server: TestAppBuilder, logged: bool) {
    let proc = server.process();
    let app = proc.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let kept = app.borrow_id(&acme, ECU.id, "kept").await;

    // The disk is "full".
    file_size_limit(&proc, Some(0));
    for user in ["w1", "w2", "w3"] {
        let r = app.borrow(&acme, ECU.id, user).await;
        assert_eq!(
            r.status.as_u16(),
            503,
            "a write during the fault: {}",
            r.body
        );
        assert_eq!(r.code(), "storage_unavailable", "{}", r.body);
        assert!(r.headers.contains_key("retry-after"));
    }
    let r = app.return_seat(&acme.host, &kept).await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.body);
    // Readiness says so; liveness does not (a restart would not help).
    until_ready_is(&app, 503).await;
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);
    if logged {
        proc.wait_for_log("storage failed");
    }

    // The fault clears: the store is reopened from disk and the server serves again.
    file_size_limit(&proc, None);
    until_ready_is(&app, 200).await;
    proc.wait_for_log("storage reopened from disk");
    assert_eq!(
        app.borrow_ids(&acme).await,
        vec![kept.clone()],
        "memory holds exactly what is on disk"
    );
    let after = app.borrow_ok(&acme, ECU.id, "after").await;
    app.return_ok(&acme.host, &kept).await;

    // And the disk agrees after a crash.
    proc.kill9();
    let proc = server.process();
    let app = proc.app();
    assert_eq!(
        app.borrow_ids(&acme).await,
        vec![after["id"].as_str().unwrap()]
    );
    proc.kill9();
}
