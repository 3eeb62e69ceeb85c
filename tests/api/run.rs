//! `permetrix run` end to end: the real binary wraps a command against a real server
//! process. The jobs signal progress through files (handshakes), never through sleeps
//! in the test.
use std::path::Path;
use std::process::ExitStatus;

use crate::helpers::*;

/// `permetrix run` wrapping `sh -c JOB` for a seat of `bus` at `t`, its stderr kept.
fn start_wrapper(server: &ServerProcess, t: &Tenant, extra: &[&str], job: &str) -> Process {
    let port = server.addr.port();
    Process::spawn(
        permetrix()
            .arg("run")
            .args(["--server", &format!("http://{}:{port}", t.host)])
            .args(["--connect", &server.addr.to_string()])
            .args(["--tool", "bus", "--user", "ci-agent"])
            .args(extra)
            .args(["--", "sh", "-c", job])
            .env("PERMETRIX_API_KEY", &t.admin_key)
            .env_remove("PERMETRIX_SIGNING_SECRET")
            .env_remove("PERMETRIX_VENDOR_ID"),
    )
}

/// Waits (bounded) for the wrapper to exit; returns its status and its stderr.
fn finish(wrapper: Process) -> (ExitStatus, String) {
    let (status, lines) = wrapper.wait_exit();
    (status, lines.join("\n"))
}

async fn exists(path: &Path) -> bool {
    path.exists()
}

async fn setup() -> (ServerProcess, TestApp, Tenant, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder()
        .token("run-test-operator-token")
        .process();
    let app = server.app();
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    (server, app, t, dir)
}

#[actix_web::test]
async fn the_seat_is_held_while_the_job_runs_and_its_exit_code_passes_through() {
    let (server, app, t, dir) = setup().await;
    let started = dir.path().join("started");
    let go = dir.path().join("go");
    let job = format!(
        "echo running > {s}; while [ ! -f {g} ]; do sleep 0.05; done; exit 3",
        s = started.display(),
        g = go.display()
    );
    let wrapper = start_wrapper(&server, &t, &["--lease", "30"], &job);
    wait_until("the job started", || exists(&started)).await;
    let s = app.status_of(&t, "bus").await;
    assert_eq!(s["borrowed"], 1, "the seat is held while the job runs");
    let borrows = app
        .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert_eq!(borrows[0]["user"], "ci-agent");
    std::fs::write(&go, "").unwrap();
    let (status, stderr) = finish(wrapper);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("seat returned"), "{stderr}");
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 0);
    server.kill9();
}

#[actix_web::test]
async fn no_seat_exits_75_with_the_reason_and_a_queued_job_runs_when_one_frees() {
    let (server, app, t, dir) = setup().await;
    let held = app.borrow_ok(&t, "bus", "holder").await;

    let marker = dir.path().join("never");
    let job = format!("touch {}", marker.display());
    let (status, stderr) = finish(start_wrapper(&server, &t, &[], &job));
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("no_seats"), "{stderr}");
    assert!(!marker.exists(), "the command must not run without a seat");

    // Queued: progress on stderr, then the freed seat goes to the wrapper.
    let ran = dir.path().join("ran");
    let job = format!("touch {}", ran.display());
    let queued = start_wrapper(
        &server,
        &t,
        &["--wait", "120", "--progress-seconds", "1"],
        &job,
    );
    queued.wait_for_log("position 1 of 1");
    assert!(!ran.exists());
    app.return_ok(&t.host, &held["id"]).await;
    let (status, stderr) = finish(queued);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(ran.exists());
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 0);
    server.kill9();
}

#[actix_web::test]
async fn an_interrupted_wrapper_forwards_the_signal_and_returns_the_seat() {
    let (server, app, t, dir) = setup().await;

    // SIGTERM: the job traps it and exits 42; the wrapper exits 42.
    let started = dir.path().join("term-started");
    let job = format!(
        "trap 'exit 42' TERM; echo up > {}; while :; do sleep 0.05; done",
        started.display()
    );
    let wrapper = start_wrapper(&server, &t, &[], &job);
    wait_until("the job started", || exists(&started)).await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1);
    wrapper.signal(Signal::SIGTERM);
    let (status, stderr) = finish(wrapper);
    assert_eq!(status.code(), Some(42), "{stderr}");
    assert!(stderr.contains("forwarding SIGTERM"), "{stderr}");
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 0);

    // SIGINT: the job dies of it; the wrapper exits 128 + 2.
    let started = dir.path().join("int-started");
    let job = format!("echo up > {}; exec sleep 300", started.display());
    let wrapper = start_wrapper(&server, &t, &[], &job);
    wait_until("the job started", || exists(&started)).await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1);
    wrapper.signal(Signal::SIGINT);
    let (status, stderr) = finish(wrapper);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 0);
    server.kill9();
}

#[actix_web::test]
async fn a_wrapper_interrupted_while_queued_leaves_the_queue() {
    let (server, app, t, _dir) = setup().await;
    app.borrow_ok(&t, "bus", "holder").await;
    let queued = start_wrapper(
        &server,
        &t,
        &["--wait", "120", "--progress-seconds", "1"],
        "true",
    );
    queued.wait_for_log("position 1 of 1");
    queued.signal(Signal::SIGINT);
    let (status, stderr) = finish(queued);
    assert_eq!(status.code(), Some(130), "{stderr}");
    wait_until("the waiter is gone", || async {
        app.status_of(&t, "bus").await["waiting"] == 0
    })
    .await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1);
    server.kill9();
}

#[test]
fn missing_configuration_is_a_usage_error_that_says_what_to_set() {
    let out = permetrix()
        .args([
            "run",
            "--server",
            "http://acme.localhost:1",
            "--tool",
            "bus",
            "--",
            "true",
        ])
        .env_remove("PERMETRIX_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERMETRIX_API_KEY"));
    let out = permetrix()
        .args([
            "run",
            "--server",
            "acme.localhost",
            "--tool",
            "bus",
            "--",
            "true",
        ])
        .env("PERMETRIX_API_KEY", "pmx_t_x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));
}
