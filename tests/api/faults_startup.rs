//! Start-up on a damaged, foreign or incomplete data directory fails with a message that
//! says what is wrong and what to do, instead of serving wrong (older, empty) data; so
//! does a server key (`PERMETRIX_SERVER_KEY`) that is malformed or disagrees with the
//! store's key file.
use std::fs;
use std::path::Path;

use crate::helpers::*;

const TOKEN: &str = "startup-fault-operator-token";

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Overwrites `len` bytes of `file` at `at` with a pattern.
fn scribble(file: &Path, at: usize, len: usize) {
    let mut bytes = fs::read(file).unwrap();
    assert!(
        at + len <= bytes.len(),
        "{} is only {} bytes",
        file.display(),
        bytes.len()
    );
    for (i, b) in bytes[at..at + len].iter_mut().enumerate() {
        *b = 0x5a ^ i as u8;
    }
    fs::write(file, bytes).unwrap();
}

#[actix_web::test]
async fn damaged_foreign_or_incomplete_data_directories_are_refused_with_a_clear_message() {
    // A store with a vendor, a tenant and a borrow, stopped cleanly.
    let base = tempfile::tempdir().unwrap();
    let proc = TestApp::builder()
        .data_dir(base.path())
        .token(TOKEN)
        .process();
    let app = proc.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    app.borrow_ok(&acme, ECU.id, "dev").await;
    proc.signal(Signal::SIGTERM);
    let (status, _) = proc.wait_exit();
    assert!(status.success());
    let db_len = fs::metadata(base.path().join("db")).unwrap().len() as usize;

    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "database overwritten with garbage",
            Box::new(move |d| scribble(&d.join("db"), 0, db_len)),
            "no readable permetrix store",
        ),
        (
            "database truncated to half",
            Box::new(move |d| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("db"))
                    .unwrap();
                f.set_len(db_len as u64 / 2).unwrap();
            }),
            "lost writes that were durable",
        ),
        (
            "bytes damaged in the middle of the database",
            Box::new(move |d| scribble(&d.join("db"), db_len / 2, 16)),
            "lost writes that were durable",
        ),
        (
            "damaged sled configuration",
            Box::new(|d| fs::write(d.join("conf"), b"not a sled config").unwrap()),
            "corrupt",
        ),
        (
            "server key missing",
            Box::new(|d| fs::remove_file(d.join("server.key")).unwrap()),
            "server.key is missing",
        ),
        (
            "server key damaged",
            Box::new(|d| fs::write(d.join("server.key"), "garbage").unwrap()),
            "is not a permetrix server key",
        ),
    ];
    for (what, damage, expected) in &cases {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        damage(copy.path());
        match TestApp::builder()
            .data_dir(copy.path())
            .token(TOKEN)
            .try_process()
        {
            Ok(p) => {
                p.kill9();
                panic!("{what}: the server started");
            }
            Err(failure) => {
                assert!(!failure.status.success(), "{what}");
                assert!(
                    failure.stderr.contains(expected),
                    "{what}: expected {expected:?} in:\n{}",
                    failure.stderr
                );
            }
        }
    }

    // A directory that is not a store at all.
    let foreign = tempfile::tempdir().unwrap();
    fs::write(foreign.path().join("notes.txt"), "my files").unwrap();
    let failure = TestApp::builder()
        .data_dir(foreign.path())
        .token(TOKEN)
        .try_process()
        .err()
        .expect("refused");
    assert!(
        failure.stderr.contains("holds no permetrix store"),
        "{}",
        failure.stderr
    );
    assert_eq!(
        fs::read_to_string(foreign.path().join("notes.txt")).unwrap(),
        "my files"
    );

    // The control: an undamaged copy starts and serves what was stored.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(base.path(), copy.path());
    let proc = TestApp::builder()
        .data_dir(copy.path())
        .token(TOKEN)
        .process();
    let borrows = proc
        .app()
        .call("GET", &acme.host, "/borrows", Some(&acme.admin_key), None)
        .await
        .expect(200);
    assert_eq!(borrows.as_array().unwrap().len(), 1);
    proc.kill9();
}

#[actix_web::test]
async fn a_deployment_server_key_must_be_well_formed_and_agree_with_the_key_file() {
    let refusal = |dir: &Path, key: &str| {
        TestApp::builder()
            .data_dir(dir)
            .token(TOKEN)
            .env("PERMETRIX_SERVER_KEY", key)
            .try_process()
            .err()
            .unwrap_or_else(|| panic!("started with PERMETRIX_SERVER_KEY={key:?}"))
            .stderr
    };
    let fresh = tempfile::tempdir().unwrap();
    let stderr = refusal(fresh.path(), "not-a-key");
    assert!(
        stderr.contains("PERMETRIX_SERVER_KEY is not a server key"),
        "{stderr}"
    );

    // A deployment key alone: nothing is written beside the store, and the key keeps
    // the credentials working across a restart.
    let deployment = "5a".repeat(32);
    let start = || {
        TestApp::builder()
            .data_dir(fresh.path())
            .token(TOKEN)
            .env("PERMETRIX_SERVER_KEY", &deployment)
            .process()
    };
    let proc = start();
    let acme = bootstrap(&proc.app(), "vector", "acme", &ECU).await;
    proc.signal(Signal::SIGTERM);
    assert!(proc.wait_exit().0.success());
    assert!(!fresh.path().join("server.key").exists());
    let proc = start();
    proc.app().borrow_ok(&acme, ECU.id, "dev").await;
    proc.kill9();

    // With a key file, the deployment key must be the same key.
    let stored = tempfile::tempdir().unwrap();
    let proc = TestApp::builder()
        .data_dir(stored.path())
        .token(TOKEN)
        .process();
    let globex = bootstrap(&proc.app(), "vector", "globex", &ECU).await;
    proc.signal(Signal::SIGTERM);
    assert!(proc.wait_exit().0.success());
    let stderr = refusal(stored.path(), &deployment);
    assert!(stderr.contains("disagrees with"), "{stderr}");
    let file = fs::read_to_string(stored.path().join("server.key")).unwrap();
    let proc = TestApp::builder()
        .data_dir(stored.path())
        .token(TOKEN)
        .env("PERMETRIX_SERVER_KEY", file.trim())
        .process();
    proc.app().borrow_ok(&globex, ECU.id, "dev").await;
    proc.kill9();
}
