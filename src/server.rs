//! Building and running the server: configuration ([`ServeConfig`]), start-up
//! ([`Application::build`]), and the application state ([`state::AppState`]) that
//! composes the other rooms. Also the process-wide setup that `permetrix serve` does
//! before that: logging ([`telemetry`]) and the panic hook ([`panic_hook`]).
pub mod panic_hook;
pub mod refresh;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use permetrix_actors::{
    Clock, DEFAULT_TENANT_CONCURRENCY, Registry, RegistryConfig, RestartIntensity, SystemClock,
};
use permetrix_storage::records::Lifecycle;
use permetrix_storage::{Durability, Platform, Store, TenantId};
use secrecy::SecretString;

use crate::api::{self, accounts::FANOUT_DEADLINE};
use crate::auth::security::SecurityState;
use crate::auth::session::{self, SessionConfig};
use crate::auth::streams::{StreamLimits, StreamRegistry};
use crate::auth::{AuthContext, MetricsToken, OperatorToken, TokenSetup, key_usage};
use crate::http::custom_hosts::{self, CustomHosts};
use crate::http::headers;
use crate::http::host::{BaseDomains, host_context};
use crate::http::input;
use crate::http::limits::{self, Limits};
use crate::http::request_log::request_log;
use crate::http::retry_hold;
use crate::http::routing::{self, Routing, forward::PeerClient};
use crate::metrics::supervision::SupervisionStats;
use crate::metrics::{DEFAULT_MAX_TENANTS, Metrics};
use crate::ops::backup::ControlSocket;
use crate::ops::demo::{self, DemoCredentials};
pub use crate::store_choice::StoreKind;
use crate::webhooks::{WebhookSettings, Webhooks};
use shutdown::Shutdown;
use state::{AppState, SigningKeyCache};
pub use store::OwnershipLayer;

/// The idle keep-alive that existing clients rely on (API.md: "use ≥ 75 s"): they never
/// retry a POST on a connection the server closed.
pub const MIN_CLIENT_KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Idle keep-alive by default: well beyond [`MIN_CLIENT_KEEP_ALIVE`].
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(120);

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Listen address (port 0 = any free port).
    pub bind: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Base domains.
    pub base_domains: Vec<String>,
    /// Custom hosts one tenant may have.
    pub max_custom_hosts: usize,
    /// Durability mode.
    pub durability: Durability,
    /// Operator token from the environment.
    pub admin_token: Option<String>,
    /// Seed demo data into an empty store.
    pub demo: bool,
    /// HTTP worker threads.
    pub workers: usize,
    /// Arbiter threads for tenant actors.
    pub arbiters: usize,
    /// Per-tenant mailbox capacity.
    pub mailbox_capacity: usize,
    /// Requests of one tenant in progress at once (see `RegistryConfig::tenant_concurrency`).
    pub tenant_concurrency: usize,
    /// `Retry-After` of a 503 for a full mailbox; a connection that retries sooner has
    /// its retry held until then (`retry_hold`).
    pub overload_retry_after: Duration,
    /// sled cache in bytes.
    pub cache_bytes: u64,
    /// Whether the server installs SIGTERM/SIGINT handlers (off in in-process tests).
    pub handle_signals: bool,
    /// Size, time and rate limits.
    pub limits: Limits,
    /// Portal sessions: lifetime, `Secure` cookies, client address header.
    pub sessions: SessionConfig,
    /// Tenants that keep their own `tenant` label in metrics before the least
    /// recently active are aggregated into `tenant="_other"`.
    pub metrics_max_tenants: usize,
    /// How long fan-out queries wait for each tenant.
    pub fanout_deadline: Duration,
    /// Open connections per HTTP worker beyond which no more are accepted (they wait in
    /// the listen backlog): bounds the memory a connection flood can take.
    pub max_connections: usize,
    /// How long an idle keep-alive connection stays open. Existing clients never retry
    /// a POST on a closed connection and expect at least [`MIN_CLIENT_KEEP_ALIVE`].
    pub keep_alive: Duration,
    /// Restarts of a tenant's actor within a period that quarantine the tenant.
    pub restart_intensity: RestartIntensity,
    /// Where the actors read the time (`None`: the system clock). Embedders and
    /// in-process tests may pass a manual clock to drive lease expiry.
    pub clock: Option<ClockSource>,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// The store: the embedded one in `data_dir`, or a database shared by brokers.
    pub store: StoreKind,
    /// How long a broker's lease lasts without renewal (shared store).
    pub lease_ttl: Duration,
    /// Where other brokers reach this one (`None`: the bound address).
    pub advertise: Option<String>,
    /// Off Fly: forward a request for a tenant owned by another broker to it.
    pub peer_forwarding: bool,
    /// This machine's Fly id (`FLY_MACHINE_ID`): set, a request for a tenant owned by
    /// another broker is answered with `fly-replay`.
    pub fly_machine_id: Option<String>,
    /// An idle tenant actor stops after this long (`None`: never).
    pub idle_passivate: Option<Duration>,
    /// The deployment key (`PERMETRIX_SERVER_KEY`), see `ServerSecrets::load`.
    pub server_key: Option<SecretString>,
    /// Wraps the store's ownership (see [`OwnershipLayer`]).
    pub ownership: Option<OwnershipLayer>,
    /// Open event streams per credential and per tenant.
    pub streams: StreamLimits,
    /// A bearer token that reads `/metrics` (and nothing else) on the public port.
    pub metrics_token: Option<String>,
    /// A second listener serving `/metrics` without credentials (private network).
    pub metrics_bind: Option<SocketAddr>,
}

/// A clock handed to the server (see [`ServeConfig::clock`]).
#[derive(Clone)]
pub struct ClockSource(pub Arc<dyn Clock>);

impl std::fmt::Debug for ClockSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClockSource(now = {:?})", self.0.now())
    }
}

impl ServeConfig {
    /// Defaults for a given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: data_dir.into(),
            base_domains: vec!["localhost".into(), "permetrix.fly.dev".into()],
            max_custom_hosts: custom_hosts::DEFAULT_MAX_PER_TENANT,
            durability: Durability::Strict,
            admin_token: None,
            demo: false,
            workers: cores,
            arbiters: cores,
            mailbox_capacity: 1024,
            tenant_concurrency: DEFAULT_TENANT_CONCURRENCY,
            overload_retry_after: Duration::from_secs(1),
            cache_bytes: 64 * 1024 * 1024,
            handle_signals: true,
            limits: Limits::default(),
            sessions: SessionConfig::default(),
            metrics_max_tenants: DEFAULT_MAX_TENANTS,
            fanout_deadline: FANOUT_DEADLINE,
            max_connections: 25_000,
            keep_alive: DEFAULT_KEEP_ALIVE,
            restart_intensity: RestartIntensity::DEFAULT,
            clock: None,
            webhooks: WebhookSettings::default(),
            store: StoreKind::Sled,
            lease_ttl: DEFAULT_LEASE_TTL,
            advertise: None,
            peer_forwarding: false,
            fly_machine_id: None,
            idle_passivate: Some(DEFAULT_IDLE_PASSIVATE),
            server_key: None,
            ownership: None,
            streams: StreamLimits::default(),
            metrics_token: None,
            metrics_bind: None,
        }
    }

    /// Where other brokers reach this one: `--advertise`, else the bound address.
    pub fn advertised(&self, bound: SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| bound.to_string())
    }
}

/// A broker's lease time when `--lease-ttl` is not given.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// How long an actor stays idle before it is passivated when `--idle-passivate` is not
/// given.
pub const DEFAULT_IDLE_PASSIVATE: Duration = Duration::from_secs(300);

/// What start-up produced that an operator must see once.
#[derive(Default)]
pub struct Startup {
    /// A newly generated operator token.
    pub generated_admin_token: Option<SecretString>,
    /// Demo credentials, if demo data was seeded now.
    pub demo: Option<DemoCredentials>,
    /// Whether demo data already existed.
    pub demo_already_present: bool,
}

/// A built server, bound and ready to run.
pub struct Application {
    addr: SocketAddr,
    server: Server,
    /// The credential-free `/metrics` listener (`--metrics-bind`), stopped with `server`.
    metrics_server: Option<ServerHandle>,
    state: web::Data<AppState>,
    store: Arc<dyn Store>,
    /// Serves live backups; stopped before the store closes.
    control: Option<ControlSocket>,
    /// One-time start-up output.
    pub startup: Startup,
}

impl Application {
    /// Opens the store (recovery completes here, before anything is served), starts the
    /// actors, seeds demo data if asked, and binds the listener. Must run inside an
    /// actix `System`.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Application> {
        let metrics =
            Arc::new(Metrics::new(config.metrics_max_tenants).context("setting up metrics")?);
        // Write errors (a full disk, a file-size limit) must reach the store as errors.
        crate::ops::storage_faults::survive_file_size_limit()
            .context("installing the SIGXFSZ handler")?;
        // Bound first: other brokers learn this address when the store registers us. Nothing
        // is accepted before the server runs.
        let listener = TcpListener::bind(config.bind).with_context(|| {
            format!(
                "binding {}; is another server using it? pass --bind",
                config.bind
            )
        })?;
        let addr = listener.local_addr()?;
        let opening = Instant::now();
        // Crash recovery (sled replaying its log) happens inside `open`: nothing is
        // served before it has finished.
        let store::Opened {
            store,
            ownership,
            shared,
            secrets,
            postgres,
        } = store::open(&config, &config.advertised(addr), metrics.flush_observer())?;
        tracing::info!(
            elapsed_ms = opening.elapsed().as_millis() as u64,
            store = ?config.store,
            "store opened and recovered"
        );
        let platform = Platform::new(Arc::clone(&store));
        let supervision = web::Data::new(SupervisionStats::new(metrics.actor_hooks()));
        let clock: Arc<dyn Clock> = match &config.clock {
            Some(ClockSource(c)) => Arc::clone(c),
            None => Arc::new(SystemClock),
        };
        let webhooks = Webhooks::load(
            config.webhooks.clone(),
            platform.clone(),
            Arc::clone(&secrets),
            Arc::clone(&clock),
            metrics.webhooks(),
        )
        .context("loading webhook endpoints")?;
        let registry = Registry::start(
            Arc::clone(&store),
            ownership,
            clock,
            supervision.clone().into_inner(),
            RegistryConfig {
                arbiters: config.arbiters,
                mailbox_capacity: config.mailbox_capacity,
                tenant_concurrency: config.tenant_concurrency,
                retry_after: config.overload_retry_after,
                restart_intensity: config.restart_intensity,
                outbox: webhooks.hooks(),
                idle_passivate: config.idle_passivate,
                shared_store: shared,
            },
        );
        registry.spawn_upkeep();
        metrics.watch_mailboxes(registry.clone());
        let custom_hosts = CustomHosts::new(config.max_custom_hosts);
        custom_hosts
            .reload(&platform)
            .context("reading the tenants' custom hosts")?;
        let (operator, setup) = OperatorToken::init(
            &platform,
            config.admin_token.clone().map(SecretString::from),
        )
        .await?;
        let state = web::Data::new(AppState {
            registry,
            platform,
            secrets,
            operator,
            bases: BaseDomains::new(config.base_domains.clone()),
            custom_hosts,
            signing_keys: SigningKeyCache::default(),
            offline_keys: Default::default(),
            fanout_deadline: config.fanout_deadline,
            security: SecurityState::new(config.sessions.clone(), config.limits.clone()),
            metrics,
            shutdown: Shutdown::default(),
            webhooks,
            routing: Routing {
                fly_machine_id: config.fly_machine_id.clone(),
                peer_forwarding: config.peer_forwarding,
                name: config.advertised(addr),
            },
            streams: StreamRegistry::new(config.streams),
            metrics_token: config.metrics_token.as_deref().and_then(MetricsToken::new),
        });

        let mut startup = Startup::default();
        if let TokenSetup::Generated(token) = setup {
            startup.generated_admin_token = Some(token);
        }
        if config.demo {
            match demo::seed_if_empty(&state).await? {
                Some(creds) => startup.demo = Some(creds),
                None => startup.demo_already_present = true,
            }
        }

        // A shared store is backed up from the database itself (`permetrix backup --store`).
        let control = if shared {
            None
        } else {
            match ControlSocket::start(&config.data_dir, Arc::clone(&store)) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "live backups are unavailable");
                    None
                }
            }
        };
        #[cfg(feature = "fault-injection")]
        let faults = web::Data::new(crate::ops::fault_injection::Faults::default());

        let app_state = state.clone();
        // The same state, as the extractors of `auth` find it.
        let auth_state: web::Data<dyn AuthContext> =
            web::Data::from(state.clone().into_inner() as Arc<dyn AuthContext>);
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(app_state.clone())
                .app_data(auth_state.clone())
                .app_data(supervision.clone());
            #[cfg(feature = "fault-injection")]
            let app = app
                .app_data(faults.clone())
                .configure(crate::ops::fault_injection::mount);
            app.app_data(input::json_config())
                .app_data(input::payload_config())
                .app_data(input::path_config())
                .app_data(input::query_config())
                .app_data(PeerClient::default())
                .wrap(from_fn(routing::route::<AppState, _>))
                .wrap(from_fn(retry_hold::hold_early_retries::<AppState>))
                .wrap(from_fn(host_context::<AppState>))
                .wrap(from_fn(limits::enforce::<AppState>))
                .wrap(from_fn(request_log::<AppState>))
                .wrap(from_fn(headers::nosniff))
                .configure(api::configure)
                .default_service(web::to(api::not_found))
        })
        .on_connect(retry_hold::on_connect)
        .workers(config.workers.max(1))
        .max_connections(config.max_connections.max(1))
        .keep_alive(config.keep_alive)
        // A client that closes its side while its borrow waits in the queue has gone:
        // end the request so that its waiter is dropped (half-closing HTTP/1 clients
        // that still expect an answer are not known among license clients).
        .h1_allow_half_closed(false)
        .client_request_timeout(config.limits.request_timeout)
        .client_disconnect_timeout(config.limits.disconnect_timeout)
        .shutdown_timeout(30)
        .listen(listener)
        .context("starting the HTTP server")?;
        if !config.handle_signals {
            server = server.disable_signals();
        }
        let server = server.run();
        tracing::info!(
            durability = ?config.durability,
            data_dir = %config.data_dir.display(),
            "listening on {addr}"
        );
        state.webhooks.start(Arc::clone(&store));
        let metrics_server = match config.metrics_bind {
            Some(bind) => {
                let (bound, metrics) =
                    api::operator::metrics::serve_privately(bind, state.clone())?;
                let handle = metrics.handle();
                actix_rt::spawn(metrics);
                tracing::info!("serving /metrics without credentials on {bound}");
                Some(handle)
            }
            None => None,
        };
        spawn_security_upkeep(state.clone());
        if let Some(postgres) = postgres {
            refresh::spawn(state.clone(), postgres);
        }
        warm_fanout_cache(&state);
        if config.handle_signals {
            let state = state.clone();
            shutdown::notify_on_signals(move || state.shutdown.begin());
        }
        Ok(Application {
            addr,
            server,
            metrics_server,
            state,
            store,
            control,
            startup,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Handle to stop the server (tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Shared state (tests and tools).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped (SIGTERM/SIGINT or the handle), then drains in-flight
    /// requests, stops the actors, releases every tenant this broker owns once their
    /// last writes are durable, and flushes storage.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("HTTP server failed")?;
        if let Some(metrics) = self.metrics_server {
            metrics.stop(true).await;
        }
        tracing::info!("HTTP server stopped; flushing storage");
        if let Err(e) = self
            .state
            .security
            .key_usage
            .flush(&self.state.platform)
            .await
        {
            tracing::warn!(error = %e, "writing API key usage at shutdown failed");
        }
        if let Some(control) = self.control {
            control.stop();
        }
        self.state.webhooks.stop();
        if let Err(e) = self.state.registry.leave(LEAVE_WITHIN).await {
            tracing::warn!(error = %e, "releasing this broker's tenants at shutdown failed; other brokers acquire them once its lease lapses");
        }
        self.state.registry.shutdown();
        self.store.shutdown().context("final storage flush")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// How long the shutdown waits for the tenants' last writes before releasing them.
const LEAVE_WITHIN: Duration = Duration::from_secs(10);

/// Persists API-key usage and purges expired sessions, each on its own interval.
fn spawn_security_upkeep(state: web::Data<AppState>) {
    let usage = state.clone();
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(key_usage::PERSIST_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = usage.security.key_usage.flush(&usage.platform).await {
                tracing::warn!(error = %e, "writing API key usage failed; retrying next interval");
            }
        }
    });
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(session::PURGE_EVERY);
        loop {
            tick.tick().await;
            match session::purge_expired(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "purged expired portal sessions"),
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
        }
    });
}

/// Fan-out reads idle tenants from memory: load every live tenant in the background now
/// rather than in the first vendor or operator query.
fn warm_fanout_cache(state: &AppState) {
    match state.platform.tenants() {
        Ok(records) => state.registry.warm_idle(
            records
                .into_iter()
                .filter(|t| t.lifecycle == Lifecycle::Active)
                .filter_map(|t| TenantId::parse(&t.tenant_id).ok())
                .collect(),
        ),
        Err(e) => tracing::warn!(error = %e, "cannot list tenants to warm the fan-out cache"),
    }
}
