//! Where the tests reach inside the server: building it in this process, the actors'
//! messages, account and security calls without HTTP. The only file of the suite that
//! names the server crate's modules or the actors' messages, so that a move of either is
//! fixed here once.
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web::Data;
use permetrix::api::accounts::{self, NewTenant};
use permetrix::auth::session;
use permetrix::server::state::AppState;
use permetrix::server::{Application, ClockSource, OwnershipLayer, StoreKind};
use permetrix_actors::domain::{BorrowRequest, TenantEvent};
use permetrix_actors::messages::{Borrow, DueReport, ExpireDue};
use permetrix_actors::{
    MailboxStats, ManualClock, Reply as TenantReply, TenantCx, TenantError, TenantMessage,
};
use permetrix_storage::records::{KeyUsageRecord, PackageRecord, SessionRecord};
use permetrix_storage::{TenantId, VendorId};
use tokio::sync::broadcast;

pub use permetrix::auth::client::CookieSecurity;
pub use permetrix::http::host;
pub use permetrix::server::ServeConfig;
pub use permetrix_client::{offline_token, signing};

use super::app::{TestApp, TestAppBuilder};
use super::placement::{Placed, Placement};
use super::poll::wait_until;
use super::stores::{TEST_SERVER_KEY, TestStore};

/// What a server in this process owns besides its address.
pub struct InProcess {
    handle: ServerHandle,
    state: Data<AppState>,
    pub(super) clock: Option<ManualClock>,
    pub(super) dir: tempfile::TempDir,
    /// What `--demo` printed at start-up, if it seeded demo data.
    demo_banner: Option<String>,
}

impl InProcess {
    /// Builds the app from the test configuration (port 0, a fresh directory, few
    /// threads, no signal handlers) as the builder says, and runs it on this runtime.
    pub(super) async fn start(builder: TestAppBuilder) -> (SocketAddr, InProcess) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::new(dir.path());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.workers = 1;
        config.arbiters = 2;
        config.handle_signals = false;
        // Passivation only where a test asks for it: the background sweep looks at the
        // clock, and a manual clock's jumps would make it stop actors at random.
        config.idle_passivate = None;
        config.admin_token = Some(builder.token);
        if let Some(clock) = &builder.clock {
            config.clock = Some(ClockSource(Arc::new(clock.clone())));
        }
        if let TestStore::Postgres { url } = &builder.store {
            config.store = StoreKind::parse(url).unwrap();
            config.server_key = Some(TEST_SERVER_KEY.to_owned().into());
        }
        for tweak in builder.tweaks {
            tweak(&mut config);
        }
        let app = Application::build(config).await.expect("server builds");
        let (addr, handle, state) = (app.addr(), app.handle(), app.state());
        let demo_banner = app.startup.demo.as_ref().map(|d| d.banner(addr));
        actix_rt::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        let server = InProcess {
            handle,
            state,
            clock: builder.clock,
            dir,
            demo_banner,
        };
        (addr, server)
    }

    pub(super) async fn stop(&self) {
        // Not graceful: the test client keeps idle keep-alive connections open.
        self.handle.stop(false).await;
    }
}

impl TestAppBuilder {
    /// In process: the tenants `placement` places are owned by other brokers.
    pub fn placement(self, placement: &Arc<Placement>) -> Self {
        let placement = Arc::clone(placement);
        self.config(move |c| {
            c.ownership = Some(OwnershipLayer(Arc::new(move |own| {
                Arc::new(Placed {
                    own,
                    placement: Arc::clone(&placement),
                })
            })));
        })
    }
}

/// Restores the backup `from` into the new directory `dir` (`permetrix restore`).
pub fn restore_backup(from: &std::path::Path, dir: &std::path::Path) {
    permetrix::ops::backup::restore(from, Some(dir), &StoreKind::Sled).unwrap();
}

/// Two brokers' stores from one: backs `seed` up, stops it, and restores the backup into
/// `a` and `b` under the returned directory (which removes them when dropped).
pub async fn two_copies(
    seed: TestApp,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dirs = tempfile::tempdir().unwrap();
    let backup = dirs.path().join("seed.backup");
    seed.backup_into(&backup);
    seed.stop().await;
    let (a, b) = (dirs.path().join("a"), dirs.path().join("b"));
    restore_backup(&backup, &a);
    restore_backup(&backup, &b);
    (dirs, a, b)
}

/// Blocks its tenant's actor until released, so that messages queue up behind it.
struct Hold {
    release: mpsc::Receiver<()>,
    entered: mpsc::Sender<()>,
}

impl TenantMessage for Hold {
    type Reply = ();
    const KIND: &'static str = "hold";
    fn handle(self, _: &mut TenantCx<'_>) -> TenantReply<()> {
        let _ = self.entered.send(());
        let _ = self.release.recv();
        TenantReply::ready(Ok(()))
    }
}

/// A tenant actor blocked by [`TestApp::hold_actor`] (and its arbiter thread with it).
pub struct HeldActor {
    release: mpsc::Sender<()>,
    holder: actix_rt::task::JoinHandle<Result<(), TenantError>>,
}

impl HeldActor {
    /// Lets the actor go on, and waits until it has.
    pub async fn release(self) {
        self.release.send(()).unwrap();
        self.holder.await.unwrap().unwrap();
    }
}

/// The idle keep-alive a server runs with unless told otherwise.
pub fn default_keep_alive() -> Duration {
    ServeConfig::new(std::path::Path::new("unused")).keep_alive
}

/// Things only a server in this process can be asked.
impl TestApp {
    fn state(&self) -> &AppState {
        &self.in_process().state
    }

    /// Moves the manual clock and lets the tenant's actor handle what is due (the
    /// message its timer sends).
    pub async fn advance(&self, tenant: &str, secs: u64) -> DueReport {
        self.clock().advance(Duration::from_secs(secs));
        self.state()
            .registry
            .send(&TenantId::parse(tenant).unwrap(), ExpireDue)
            .await
            .unwrap()
    }

    /// Stops the tenant's actor, leaving it as a restart does: idle, its state (leases
    /// included) only in storage until a request activates it again.
    pub fn make_idle(&self, tenant: &str) {
        self.state()
            .registry
            .deactivate(&TenantId::parse(tenant).unwrap());
    }

    /// The tenant's live events, straight from its actor.
    pub async fn subscribe_directly(&self, tenant: &TenantId) -> broadcast::Receiver<TenantEvent> {
        self.state().registry.subscribe(tenant).await.unwrap()
    }

    /// The mailboxes of the running tenant actors.
    pub fn mailboxes(&self) -> Vec<MailboxStats> {
        self.state().registry.mailboxes()
    }

    /// Tenants whose actor runs in this server.
    pub fn active_tenants(&self) -> usize {
        self.state().registry.active_count()
    }

    /// Passivates the idle tenant actors now (the sweep the server runs periodically);
    /// how many stopped.
    pub async fn passivate_idle(&self) -> usize {
        self.state().registry.passivate_idle().await
    }

    /// Writes a backup of this server's live store to `out` (`permetrix backup`).
    pub fn backup_into(&self, out: &std::path::Path) {
        permetrix::ops::backup::backup(self.data_dir(), &StoreKind::Sled, out).unwrap();
    }

    /// Blocks `tenant`'s actor from inside until [`HeldActor::release`]; returns once the
    /// actor has picked the block up.
    pub async fn hold_actor(&self, tenant: &TenantId) -> HeldActor {
        let (release, gate) = mpsc::channel();
        let (entered_tx, entered) = mpsc::channel();
        let registry = self.state().registry.clone();
        let tenant = tenant.clone();
        let hold = Hold {
            release: gate,
            entered: entered_tx,
        };
        let holder = actix_rt::spawn(async move { registry.send(&tenant, hold).await });
        wait_until("the actor picks up Hold", || async {
            entered.try_recv().is_ok()
        })
        .await;
        HeldActor { release, holder }
    }

    /// Creates a tenant of `vendor` without HTTP (for seeding many quickly).
    pub async fn create_tenant_directly(&self, vendor: &VendorId, tenant: &TenantId, name: &str) {
        let new = NewTenant {
            tenant_id: tenant.clone(),
            company_name: name.to_owned(),
            domain: None,
            crm_id: None,
            custom_hosts: Vec::new(),
        };
        accounts::create_tenant(self.state(), vendor, new)
            .await
            .unwrap();
    }

    /// Provisions `package` to `tenant` without HTTP.
    pub async fn provision_directly(
        &self,
        vendor: &VendorId,
        tenant: &TenantId,
        package: PackageRecord,
    ) {
        accounts::provision(self.state(), vendor, tenant, package)
            .await
            .unwrap();
    }

    /// Borrows a seat of `tool` for `user` at `tenant`'s actor, without HTTP.
    pub async fn borrow_directly(&self, tenant: &TenantId, tool: &str, user: &str) {
        let request = BorrowRequest::parse(tool, user, None).unwrap();
        self.state()
            .registry
            .send(tenant, Borrow::now(request))
            .await
            .unwrap();
    }

    /// When a key was last used, as last written to the store.
    pub fn stored_key_usage(&self, tenant: &TenantId, key_id: &str) -> Option<KeyUsageRecord> {
        self.state().platform.key_usage(tenant, key_id).unwrap()
    }

    /// Writes the key uses recorded in memory (the periodic flush); how many.
    pub async fn flush_key_usage(&self) -> usize {
        let state = self.state();
        state
            .security
            .key_usage
            .flush(&state.platform)
            .await
            .unwrap()
    }

    /// Key uses recorded in memory and not written yet.
    pub fn pending_key_usage(&self) -> usize {
        self.state().security.key_usage.pending()
    }

    /// Deletes expired portal sessions (the periodic purge); how many.
    pub async fn purge_expired_sessions(&self) -> usize {
        session::purge_expired(self.state()).await.unwrap()
    }

    /// Makes the webhook worker look at the (manual) clock again: retries that became
    /// due when the test moved it are attempted.
    pub fn kick_webhooks(&self) {
        self.state().webhooks.kick();
    }

    /// The start-up text of demo data seeded by this server (credentials included).
    pub fn demo_banner(&self) -> Option<&str> {
        self.in_process().demo_banner.as_deref()
    }

    /// Password hashes (logins, new users) waiting for a hashing slot.
    pub fn password_work_waiting(&self) -> usize {
        self.state().security.password_work_waiting()
    }

    /// The portal sessions in the store.
    pub fn stored_sessions(&self) -> Vec<(String, SessionRecord)> {
        self.state().platform.sessions().unwrap()
    }
}
