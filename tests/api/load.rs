//! `permetrix load` against the real server: setup through the public APIs, closed and
//! open loop, the `/health` baseline, and pools left exactly as they were. Counts are
//! checked; timings never are.
use std::path::Path;

use serde_json::Value;

use crate::helpers::*;

const TOKEN: &str = "load-test-operator-token";

fn load(server: &ServerProcess, dir: &Path, args: &[&str]) -> Value {
    let json = dir.join(format!("summary-{}.json", args.join("_").replace('/', "")));
    let out = permetrix()
        .arg("load")
        .arg("--server")
        .arg(server.addr.to_string())
        .arg("--credentials")
        .arg(dir.join("creds.json"))
        .arg("--json")
        .arg(&json)
        .args([
            "--quiet",
            "--warmup",
            "0",
            "--duration",
            "600",
            "--requests",
            "40",
        ])
        .args(args)
        .env("PERMETRIX_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("load tool runs");
    assert!(
        out.status.success(),
        "load {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("achieved"), "report printed: {text}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// Exactly the 40 requests asked for, all answered 200, none left unsent.
fn assert_clean_run(s: &Value) {
    assert_eq!(s["requests"], 40, "{s}");
    assert_eq!(s["ok"], 40, "errors: {}", s["errors"]);
    assert_eq!(s["errors"], serde_json::json!({}));
    assert_eq!(s["unsent"], 0);
}

/// Borrows and returns add up; with more requests than connections, every connection
/// borrowed first and some returned.
fn assert_cycles(s: &Value) {
    let (b, r) = (s["borrow"]["count"].as_u64(), s["ret"]["count"].as_u64());
    assert_eq!(b.unwrap() + r.unwrap(), 40, "{s}");
    assert!(r.unwrap() >= 1 && b.unwrap() >= r.unwrap(), "{s}");
}

/// Every pool of every load tenant is back to zero borrowed.
async fn assert_pools_empty(app: &TestApp, creds: &Value, tenants: usize) {
    for t in creds["tenants"].as_array().unwrap().iter().take(tenants) {
        let host = format!("{}.localhost", t["id"].as_str().unwrap());
        let all = app
            .call("GET", &host, "/licenses/status", t["key"].as_str(), None)
            .await
            .expect(200);
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 2, "two tools per tenant");
        for s in all {
            assert_eq!(s["borrowed"], 0, "{host}: {s}");
        }
    }
}

#[actix_web::test]
async fn setup_then_closed_open_and_baseline_runs_leave_pools_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder().token(TOKEN).process();
    let app = server.app();

    // Closed loop on a fresh server: --setup creates vendor, tenants and tools.
    let closed = load(
        &server,
        dir.path(),
        &[
            "--setup",
            "--tenants",
            "3",
            "--tools",
            "2",
            "--connections",
            "4",
        ],
    );
    assert_clean_run(&closed);
    assert_eq!(closed["workload"], "borrow_return");
    assert_eq!(closed["loop_kind"], "closed");
    assert_cycles(&closed);
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("creds.json")).unwrap())
            .unwrap();
    assert_eq!(creds["tenants"].as_array().unwrap().len(), 3);
    assert_pools_empty(&app, &creds, 3).await;

    // Open loop, signed, reusing the credentials file (no --setup): the tool switches
    // the tenants to v1 signatures, and every signed borrow verifies.
    let open = load(
        &server,
        dir.path(),
        &[
            "--signed",
            "--rate",
            "200",
            "--tenants",
            "3",
            "--tools",
            "2",
            "--connections",
            "4",
        ],
    );
    assert_clean_run(&open);
    assert_eq!(open["loop_kind"], "open");
    assert_eq!(open["signed"], true);
    assert_eq!(open["offered_rate"], 200.0);
    assert_cycles(&open);
    assert_eq!(open["send_lag"]["count"], 40);
    let policy = app
        .call(
            "GET",
            "load-0.localhost",
            "/config/security",
            creds["tenants"][0]["key"].as_str(),
            None,
        )
        .await
        .expect(200);
    assert_eq!(policy["signature_policy"], "v1");
    assert_pools_empty(&app, &creds, 3).await;

    // The baseline drives /health the same way and needs no tenants.
    let base = load(&server, dir.path(), &["--baseline", "--connections", "4"]);
    assert_clean_run(&base);
    assert_eq!(base["workload"], "health");
    assert!(base["borrow"].is_null());
    server.kill9();
}

#[test]
fn a_run_without_credentials_says_to_run_setup() {
    let dir = tempfile::tempdir().unwrap();
    let out = permetrix()
        .args([
            "load",
            "--quiet",
            "--server",
            "127.0.0.1:9",
            "--credentials",
        ])
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run with --setup first"), "{err}");
}
