//! Offline checkout from the client side, with the real binary and the real clock:
//! `permetrix run --offline` holds its seat while the broker is gone, `permetrix token
//! verify` checks the stored token without the broker, and a few lines of Python with
//! a standard JWT library (PyJWT) verify a token as a vendor's licence check would.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

const TOKEN: &str = "offline-run-operator-token";

/// `permetrix run --offline 2` wrapping `sh -c JOB` for a seat of [`CAD`] at `t`.
fn start_offline_run(server: &ServerProcess, t: &Tenant, token_file: &Path, job: &str) -> Process {
    let extra = ["--offline", "2", "--token-file"].map(OsStr::new);
    permetrix_run(
        server.addr,
        t,
        CAD.id,
        &[&extra[..], &[token_file.as_os_str()]].concat(),
        job,
    )
}

/// `permetrix token verify TOKEN --jwks SOURCE [extra]`: exit code, stdout, stderr.
fn verify_cli(token: &str, jwks: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = permetrix()
        .args(["token", "verify", token, "--jwks", jwks])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn exists(path: &Path) -> bool {
    path.exists()
}

#[actix_web::test]
async fn run_offline_holds_the_seat_with_no_server_reachable_during_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TestApp::builder().data_dir(&data).token(TOKEN).process();
    let app = server.app();
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    provision_offline(&app, &t, 24, 1).await;

    // The job sees its token, then waits for the test's go while the broker is killed.
    let token_file = dir.path().join("state/offline.jwt");
    let (seen, started, go) = (
        dir.path().join("seen"),
        dir.path().join("started"),
        dir.path().join("go"),
    );
    let job = format!(
        "cp \"$PERMETRIX_OFFLINE_TOKEN_FILE\" {seen}; touch {started}; \
         while [ ! -f {go} ]; do sleep 0.05; done; exit 7",
        seen = seen.display(),
        started = started.display(),
        go = go.display()
    );
    let wrapper = start_offline_run(&server, &t, &token_file, &job);
    wait_until("the job started", || exists(&started)).await;
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 1);
    // The vendor's key set as its licence check would have it (the key is made at the
    // vendor's first offline checkout).
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, app.jwks("?vendor=vector").await.to_string()).unwrap();
    server.kill9();
    std::fs::write(&go, "").unwrap();
    let (status, lines) = wrapper.wait_exit();
    let stderr = lines.join("\n");
    assert_eq!(status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("running without heartbeats"), "{stderr}");
    assert!(stderr.contains("could not reach the broker"), "{stderr}");

    // The token stays (its seat does), and verifies without the broker.
    let stored = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), stored);
    let at_file = format!("@{}", token_file.display());
    let jwks_path = jwks_file.to_str().unwrap();
    let (code, out, err) = verify_cli(&at_file, jwks_path, &["--vendor", "vector"]);
    assert_eq!(code, Some(0), "{err}");
    let claims: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&claims["sub"], &claims["tool"]),
        (&"ci-agent".into(), &CAD.name.into())
    );
    // Altered, or checked against another vendor: exit 1 with the reason.
    let altered = format!("{}x", stored.trim());
    let (code, _, err) = verify_cli(&altered, jwks_path, &[]);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = verify_cli(&at_file, jwks_path, &["--vendor", "elektra"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("elektra"), "{err}");

    // The broker restarts: the checkout is still held, and its single offline slot
    // taken; a run while the broker answers returns its seat and deletes its token.
    let server = TestApp::builder().data_dir(&data).token(TOKEN).process();
    let app = server.app();
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 1);
    let refused = app.borrow_json(&t, offline_body("ann", 1)).await;
    assert_eq!(refused.code(), "offline_limit_reached");
    app.return_ok(&t.host, &claims["borrow_id"]).await;
    let second = dir.path().join("second.jwt");
    let (status, lines) = start_offline_run(
        &server,
        &t,
        &second,
        "test -s \"$PERMETRIX_OFFLINE_TOKEN_FILE\"",
    )
    .wait_exit();
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));
    assert!(lines.join("\n").contains("seat returned early"));
    assert!(!second.exists(), "the token of a returned seat is deleted");
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 0);
    server.kill9();
}

/// The check a vendor's licence code might make, in Python with PyJWT: the key named
/// by the token's `kid` from the JWKS, EdDSA only, the issuer and the times checked.
/// The same lines are in docs/operations.md ("Offline checkout").
const PYTHON_CHECK: &str = r#"
import json, sys, jwt
token = open(sys.argv[1]).read().strip()
jwks = json.load(open(sys.argv[2]))
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=sys.argv[3],
                    options={"require": ["exp", "iat", "sub"]})
print(json.dumps(claims))
"#;

/// A Python 3 that has PyJWT with its cryptography backend, if this machine has one.
fn python_with_pyjwt() -> Option<PathBuf> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|python| {
            Command::new(python)
                .args(["-c", "import jwt, cryptography"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[actix_web::test]
async fn a_token_verifies_with_a_few_lines_of_python_and_pyjwt() {
    let Some(python) = python_with_pyjwt() else {
        let why = "no python3 with PyJWT and cryptography (apt-get install python3-jwt, \
                   or pip install pyjwt cryptography)";
        // CI installs it and sets this, so that the check cannot be skipped there.
        assert!(
            std::env::var("PERMETRIX_REQUIRE_PYJWT").as_deref() != Ok("1"),
            "PERMETRIX_REQUIRE_PYJWT=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    };
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    provision_offline(&app, &t, 24, 1).await;
    let b = app.checkout(&t, "ann", 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, jwks_file) = (dir.path().join("token.jwt"), dir.path().join("jwks.json"));
    std::fs::write(&jwks_file, app.jwks("?vendor=vector").await.to_string()).unwrap();

    let check = |token: &str| {
        std::fs::write(&token_file, token).unwrap();
        Command::new(&python)
            .args(["-c", PYTHON_CHECK])
            .args([&token_file, &jwks_file])
            .arg("https://vendor.localhost")
            .output()
            .unwrap()
    };
    let out = check(offline_token_of(&b));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["borrow_id"], b["id"]);
    assert_eq!(
        (&claims["sub"], &claims["tenant"]),
        (&"ann".into(), &"acme".into())
    );
    assert_eq!(claims["fingerprint"], "laptop-7f3a");
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        millis(&b["lease_expires_at"]) / 1000
    );
    // A character inside the signature changed: PyJWT refuses it too.
    let token = offline_token_of(&b);
    let at = token.len() - 10;
    let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
    assert!(!check(&forged).status.success());
}
