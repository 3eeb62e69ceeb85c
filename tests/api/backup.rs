//! Backups: `permetrix backup` takes a consistent snapshot of a live server's store
//! (while a client keeps borrowing and returning), `permetrix restore` brings it back
//! into a new directory, and a server started there serves exactly the snapshot, with
//! working credentials (server.key travels with it). Damaged backups and non-empty
//! targets are refused; a stopped store is backed up directly.
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use permetrix_actors::domain::{LedgerHead, verify_chain};
use permetrix_storage::{SledConfig, SledStore, Store, TenantId};

use crate::helpers::*;

const TOKEN: &str = "backup-test-operator-token";

/// `permetrix backup` of the store in `dir` into the file `out`.
fn backup_args(dir: &Path, out: &Path) -> Vec<String> {
    let (dir, out) = (dir.to_str().unwrap(), out.to_str().unwrap());
    ["backup", "--data-dir", dir, "--out", out]
        .map(str::to_owned)
        .to_vec()
}

/// `permetrix restore` of the backup `from` into the directory `dir`.
fn restore_args(from: &Path, dir: &Path) -> Vec<String> {
    let (from, dir) = (from.to_str().unwrap(), dir.to_str().unwrap());
    ["restore", "--from", from, "--data-dir", dir]
        .map(str::to_owned)
        .to_vec()
}

/// One acknowledged operation of the background client.
struct Op {
    borrow: bool,
    id: String,
    sent: Instant,
    acked: Instant,
}

/// Leases of acme in a stopped store, after checking its ledger and charges.
fn stored_leases(dir: &Path) -> HashSet<String> {
    let store = SledStore::open(SledConfig::new(dir)).unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let leases = store.load_tenant(&acme).unwrap().leases;
    let charges = store.charges(&acme, 0, usize::MAX).unwrap();
    verify_chain(&acme, LedgerHead::default(), &charges).expect("the restored ledger verifies");
    let charged: HashSet<String> = charges.iter().map(|c| c.borrow_id.to_string()).collect();
    for l in leases.iter().filter(|l| l.is_overage) {
        assert!(
            charged.contains(&l.id.to_string()),
            "overage lease {} without its charge",
            l.id
        );
    }
    store.shutdown().unwrap();
    leases.iter().map(|l| l.id.to_string()).collect()
}

#[actix_web::test]
async fn a_live_backup_restores_into_a_server_that_serves_exactly_the_snapshot() {
    let work = tempfile::tempdir().unwrap();
    let live = work.path().join("live");
    let file = work.path().join("permetrix.backup");
    let proc = TestApp::builder().data_dir(&live).token(TOKEN).process();
    let app = proc.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let mut held = Vec::new();
    for i in 0..7 {
        held.push(app.borrow_id(&acme, ECU.id, &format!("u{i}")).await);
    }
    app.return_ok(&acme.host, held.remove(0)).await;

    // A client borrows and returns (overage seats, with charges) throughout the backup.
    let ops = Rc::new(RefCell::new(Vec::<Op>::new()));
    let stop = Rc::new(RefCell::new(false));
    let writer = {
        let (ops, stop) = (Rc::clone(&ops), Rc::clone(&stop));
        let client = app.detached();
        let (host, key) = (acme.host.clone(), acme.admin_key.clone());
        actix_rt::spawn(async move {
            while !*stop.borrow() {
                let sent = Instant::now();
                let b = client
                    .borrow_with(&host, &key, ECU.id, "busy")
                    .await
                    .expect(200);
                let id = b["id"].as_str().unwrap().to_owned();
                ops.borrow_mut().push(Op {
                    borrow: true,
                    id: id.clone(),
                    sent,
                    acked: Instant::now(),
                });
                let sent = Instant::now();
                client.return_ok(&host, &id).await;
                ops.borrow_mut().push(Op {
                    borrow: false,
                    id,
                    sent,
                    acked: Instant::now(),
                });
            }
        })
    };
    let started = Instant::now();
    let args = backup_args(&live, &file);
    let out = actix_rt::task::spawn_blocking(move || cli_ok(&args))
        .await
        .unwrap();
    let ended = Instant::now();
    *stop.borrow_mut() = true;
    writer.await.unwrap();
    assert!(out.contains("of the running server"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup holds server.key: owner only");
    let busy_ops = ops.borrow().len();
    assert!(busy_ops > 0);

    // Written after the backup: must not come back.
    let after = app.borrow_ok(&acme, ECU.id, "after").await;
    proc.kill9();

    // Restore; never over an existing store; never from a damaged file.
    let restored = work.path().join("restored");
    let out = cli_ok(&restore_args(&file, &restored));
    assert!(out.contains("1 file(s)"), "{out}");
    let err = cli_err(&restore_args(&file, &live));
    assert!(err.contains("not empty"), "{err}");
    let mut bytes = std::fs::read(&file).unwrap();
    let damaged = work.path().join("damaged.backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&damaged, &bytes).unwrap();
    let target = work.path().join("never");
    let err = cli_err(&restore_args(&damaged, &target));
    assert!(err.contains("corrupt"), "{err}");
    assert!(!target.join("db").exists());
    std::fs::write(&damaged, &bytes[..middle]).unwrap();
    let err = cli_err(&restore_args(&damaged, &target));
    assert!(err.contains("cut short"), "{err}");

    // The snapshot is a moment between the backup's start and end: everything
    // acknowledged before it started, nothing begun after it ended, and whole writes
    // only (each overage lease with its charge, an intact ledger: `stored_leases`).
    let leases = stored_leases(&restored);
    for id in &held {
        assert!(
            leases.contains(id),
            "borrow {id} acknowledged before the backup is missing"
        );
    }
    assert!(!leases.contains(after["id"].as_str().unwrap()));
    for op in ops.borrow().iter() {
        let returned_before_start = ops
            .borrow()
            .iter()
            .any(|r| !r.borrow && r.id == op.id && r.acked < started);
        if op.borrow && op.acked < started && !returned_before_start {
            let return_sent = ops
                .borrow()
                .iter()
                .find(|r| !r.borrow && r.id == op.id)
                .map(|r| r.sent);
            if return_sent.is_none_or(|s| s > ended) {
                assert!(
                    leases.contains(&op.id),
                    "{} acknowledged before the backup",
                    op.id
                );
            }
        }
        if (op.borrow && op.sent > ended) || (!op.borrow && op.acked < started) {
            assert!(
                !leases.contains(&op.id),
                "{} is not of the snapshot's moment",
                op.id
            );
        }
    }

    // A server on the restored directory serves the snapshot with the old credentials.
    let proc = TestApp::builder()
        .data_dir(&restored)
        .token(TOKEN)
        .process();
    let app = proc.app();
    let listed: HashSet<String> = app.borrow_ids(&acme).await.into_iter().collect();
    assert_eq!(listed, leases);
    customers(&app, &acme.vendor_key).await;
    app.borrow_ok(&acme, ECU.id, "restored").await;
    proc.kill9();

    // The killed server left its socket file behind; the stopped store is backed up
    // directly.
    let offline = work.path().join("offline.backup");
    let out = cli_ok(&backup_args(&restored, &offline));
    assert!(out.contains("of the stopped store"), "{out}");
    let again = work.path().join("again");
    cli_ok(&restore_args(&offline, &again));
    assert_eq!(stored_leases(&again).len(), leases.len() + 1);
    println!("live backup taken while {busy_ops} operations were acknowledged around it");
}
