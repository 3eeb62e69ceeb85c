//! `permetrix run` end to end: the real binary wraps a command against a real server
//! process. The jobs signal progress through files (handshakes), never through sleeps
//! in the test.
use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitStatus;

use crate::helpers::*;

/// `permetrix run` wrapping `sh -c JOB` for a seat of `bus` at `t`, its stderr kept.
fn start_wrapper(server: &ServerProcess, t: &Tenant, extra: &[&str], job: &str) -> Process {
    let extra: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    permetrix_run(server.addr, t, "bus", &extra, job)
}

/// Waits (bounded) for the wrapper to exit; returns its status and its stderr.
fn finish(wrapper: Process) -> (ExitStatus, String) {
    let (status, lines) = wrapper.wait_exit();
    (status, lines.join("\n"))
}

/// Waits for the wrapper to exit with `code`, having returned its seat.
async fn exits_having_returned(app: &TestApp, t: &Tenant, wrapper: Process, code: i32) {
    let (status, stderr) = finish(wrapper);
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(stderr.contains("seat returned"), "{stderr}");
    assert_eq!(app.status_of(t, "bus").await["borrowed"], 0);
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
    exits_having_returned(&app, &t, wrapper, 3).await;
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

/// The lease of the borrow the wrapper holds, as listed.
async fn lease_end(app: &TestApp, t: &Tenant) -> String {
    let borrows = app
        .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
        .await
        .expect(200);
    borrows[0]["lease_expires_at"].as_str().unwrap().to_owned()
}

/// A job that outlives its lease keeps the seat: the wrapper heartbeats every third of
/// the lease. The server's clock is manual, so the test says when the lease would have
/// run out; the wrapper's first heartbeat comes in real time, a third of the shortest
/// lease (10 s) after the borrow.
#[actix_web::test]
async fn heartbeats_keep_the_seat_of_a_job_that_outlives_its_lease() {
    let start = permetrix_storage::Timestamp::from_secs(1_795_749_205);
    let app = TestApp::builder().manual_clock(start).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let dir = tempfile::tempdir().unwrap();
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let job = format!(
        "echo running > {s}; while [ ! -f {g} ]; do sleep 0.05; done",
        s = started.display(),
        g = go.display()
    );
    let wrapper = permetrix_run(
        app.addr,
        &t,
        "bus",
        &["--lease", "30"].map(OsStr::new),
        &job,
    );
    wait_until("the job started", || exists(&started)).await;
    let borrowed = lease_end(&app, &t).await;

    // 20 of the 30 s pass on the server; the wrapper's heartbeat moves the lease to 30 s
    // after that.
    app.advance("acme", 20).await;
    let renewed = wait_until("a heartbeat renewed the lease", || async {
        let now = lease_end(&app, &t).await;
        if now == borrowed { Err(now) } else { Ok(now) }
    })
    .await;
    assert!(renewed > borrowed, "{renewed} after {borrowed}");

    // Past the lease it was borrowed with: the seat is still the job's.
    let due = app.advance("acme", 20).await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1, "{due:?}");
    std::fs::write(&go, "").unwrap();
    exits_having_returned(&app, &t, wrapper, 0).await;
}

/// With `PERMETRIX_VENDOR_ID` and `PERMETRIX_SIGNING_SECRET` the wrapper signs its
/// borrow, which a tenant that requires v2 signatures accepts; unsigned, it is refused
/// with the reason and the job never runs.
#[actix_web::test]
async fn the_wrapper_signs_its_borrow_where_the_tenant_requires_it() {
    let (server, app, t, dir) = setup().await;
    app.tenant_put(
        &t,
        "/config/security",
        serde_json::json!({"signature_policy": "v2"}),
    )
    .await
    .expect(200);
    let marker = dir.path().join("ran");
    let job = format!("touch {}", marker.display());

    let (status, stderr) = finish(start_wrapper(&server, &t, &[], &job));
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("signature"), "{stderr}");
    assert!(!marker.exists(), "the job ran without a seat");

    let url = format!("http://{}:{}", t.host, server.addr.port());
    let mut signed = permetrix_run_command(&url, server.addr, &t, "bus", &[], &job);
    signed
        .env("PERMETRIX_VENDOR_ID", "vector")
        .env("PERMETRIX_SIGNING_SECRET", &t.signing_secret);
    exits_having_returned(&app, &t, Process::spawn(&mut signed), 0).await;
    assert!(marker.exists(), "the signed job ran");
    server.kill9();
}

/// Over https, as a build agent reaches a broker behind a TLS end with a private CA:
/// trusting that CA (`--ca-cert`) the wrapper holds its seat through TLS; trusting only
/// the public roots it refuses the server's certificate and the job never runs; a CA
/// file that holds no certificate is a usage error naming the file.
#[actix_web::test]
async fn the_wrapper_speaks_https_trusting_the_ca_it_is_given() {
    let (server, app, t, dir) = setup().await;
    let proxy = TlsProxy::start(&t.host, server.addr);
    let url = format!("https://{}:{}", t.host, proxy.addr.port());
    let (ca, not_ca) = (dir.path().join("ca.pem"), dir.path().join("not-a-ca.pem"));
    std::fs::write(&ca, &proxy.ca_pem).unwrap();
    std::fs::write(&not_ca, "not a certificate\n").unwrap();
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let job = format!(
        "echo running > {s}; while [ ! -f {g} ]; do sleep 0.05; done",
        s = started.display(),
        g = go.display()
    );
    let run = |extra: &[&OsStr]| {
        Process::spawn(&mut permetrix_run_command(
            &url, proxy.addr, &t, "bus", extra, &job,
        ))
    };

    let trusted = run(&[OsStr::new("--ca-cert"), ca.as_os_str()]);
    wait_until("the job started", || exists(&started)).await;
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1);
    std::fs::write(&go, "").unwrap();
    exits_having_returned(&app, &t, trusted, 0).await;
    std::fs::remove_file(&started).unwrap();

    let (status, stderr) = finish(run(&[]));
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(!started.exists(), "the job ran without a seat");

    let (status, stderr) = finish(run(&[OsStr::new("--ca-cert"), not_ca.as_os_str()]));
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("not-a-ca.pem"), "{stderr}");
    assert!(stderr.contains("no certificate"), "{stderr}");
    server.kill9();
}
