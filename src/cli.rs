//! The command line: one clap-derive struct per command; doc comments are the help.
//! The client programs' arguments (`run`, `load`) are the client crate's.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header::HeaderName;
use clap::{Args, Parser, Subcommand, ValueEnum};
use permetrix_storage::{Durability, TenantId, VendorId};

use permetrix_client::load::LoadArgs;
use permetrix_client::run::RunArgs;
use permetrix_client::token::TokenArgs;

use secrecy::SecretString;

use crate::auth::client::CookieSecurity;
use crate::auth::streams::StreamLimits;
use crate::http::limits::Limits;
use crate::server::telemetry::LogFormat;
use crate::server::{ServeConfig, StoreKind};
use crate::webhooks::WebhookSettings;

/// permetrix — a multi-tenant floating-license broker.
#[derive(Debug, Parser)]
#[command(name = "permetrix", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(Box<ServeArgs>),
    /// Hold a seat while a command runs: borrow (queueing), heartbeat, run, return.
    /// Exits with the command's code, or 75 if no seat was granted.
    Run(RunArgs),
    /// Write a consistent snapshot of a store (of a running server, or a stopped one) to
    /// a file; it includes server.key, so keep it as safe as the data directory.
    Backup(BackupArgs),
    /// Restore a snapshot into a new, empty data directory or PostgreSQL database.
    Restore(RestoreArgs),
    /// Drive borrow/return load (or a `/health` baseline) against a running server.
    Load(LoadArgs),
    /// Offline tokens: `permetrix token verify TOKEN --jwks URL|FILE` checks one without
    /// the broker.
    Token(TokenArgs),
    /// Move in from another license server's data, with its keys, passwords, held
    /// seats and charges (the server must be stopped).
    Import(ImportArgs),
}

/// `permetrix import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where the data comes from.
    #[command(subcommand)]
    pub source: ImportSource,
}

/// What `permetrix import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// The old license server's SQLite file (`licenses.db`), single-tenant,
    /// multi-tenant, or both.
    Sqlite(SqliteImportArgs),
}

/// `permetrix import sqlite`.
#[derive(Debug, Args)]
pub struct SqliteImportArgs {
    /// The SQLite file; opened read-only, so a server may still be using it.
    pub path: PathBuf,
    /// Data directory of the store to import into (as for `serve`).
    #[arg(long, env = "PERMETRIX_DATA_DIR", default_value = "./permetrix-data")]
    pub data_dir: PathBuf,
    /// The store to import into (as for `serve`).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The deployment's server key (environment only): required with a shared store.
    #[arg(
        long,
        env = "PERMETRIX_SERVER_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub server_key: Option<String>,
    /// The tenant the file's single-tenant rows (those without a tenant_id) move into.
    #[arg(long, env = "PERMETRIX_TENANT", requires = "vendor", value_parser = TenantId::parse)]
    pub tenant: Option<TenantId>,
    /// The single tenant's vendor; in a multi-tenant file, the vendor of tenants whose
    /// packages name none.
    #[arg(long, env = "PERMETRIX_VENDOR", value_parser = VendorId::parse)]
    pub vendor: Option<VendorId>,
    /// The old server's request-signing secret, sealed onto the vendors, so that signed
    /// clients keep working (prefer the environment variable: other users can see a
    /// command line).
    #[arg(long, env = "PERMETRIX_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,
    /// Print what would be imported and every anomaly; write nothing.
    #[arg(long, env = "PERMETRIX_DRY_RUN")]
    pub dry_run: bool,
}

impl SqliteImportArgs {
    /// The import these arguments describe.
    pub fn options(&self) -> crate::ops::import::Options {
        crate::ops::import::Options {
            path: self.path.clone(),
            data_dir: self.data_dir.clone(),
            store: self.store.kind(),
            server_key: secret(&self.server_key),
            tenant: self.tenant.clone(),
            vendor: self.vendor.clone(),
            signing_secret: secret(&self.signing_secret),
            dry_run: self.dry_run,
        }
    }
}

/// `permetrix backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Data directory of the store to back up; a server running on it is asked for the
    /// snapshot through its control socket there.
    #[arg(long, env = "PERMETRIX_DATA_DIR", default_value = "./permetrix-data")]
    pub data_dir: PathBuf,
    /// The backup file to write (replaced atomically, mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// The store to back up (a PostgreSQL store is read from the database, consistently,
    /// while brokers run).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `permetrix restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file written by `permetrix backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to create (it must not exist, or be empty); required with
    /// `--store sled`, the default.
    #[arg(long, env = "PERMETRIX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store to restore into: a new data directory, or an empty PostgreSQL database
    /// (how a single-machine deployment moves to several brokers).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A secret given on the command line or in the environment; an empty value (an unset
/// variable exported as `VAR=`) is no secret.
fn secret(raw: &Option<String>) -> Option<SecretString> {
    raw.clone()
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
}

/// `--store`, for every command that opens a store.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store: `sled` (embedded, in --data-dir; the default) or
    /// `postgres://user@host:port/database`, a database shared by several brokers
    /// (`PERMETRIX_DATABASE_URL` is read too).
    #[arg(long, env = "PERMETRIX_STORE", value_parser = StoreKind::parse, hide_env_values = true)]
    pub store: Option<StoreKind>,
    /// The database URL, when `--store` is not given (environment only).
    #[arg(
        long,
        env = "PERMETRIX_DATABASE_URL",
        value_parser = StoreKind::parse,
        hide = true,
        hide_env_values = true
    )]
    pub database_url: Option<StoreKind>,
}

impl StoreArgs {
    /// `--store`, else `PERMETRIX_DATABASE_URL`, else sled.
    pub fn kind(&self) -> StoreKind {
        self.store
            .clone()
            .or_else(|| self.database_url.clone())
            .unwrap_or(StoreKind::Sled)
    }
}

/// When writes are acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// After flush + fsync (group commit). The default.
    Strict,
    /// At once, flushing on an interval; a crash loses up to one interval. Benchmarks only.
    Relaxed,
}

/// `permetrix serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "PERMETRIX_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Directory of the store (created if missing).
    #[arg(long, env = "PERMETRIX_DATA_DIR", default_value = "./permetrix-data")]
    pub data_dir: PathBuf,
    /// Base domain under which tenants are subdomains (repeatable).
    #[arg(
        long = "base-domain",
        env = "PERMETRIX_BASE_DOMAINS",
        value_delimiter = ',',
        default_values_t = ["localhost".to_string(), "permetrix.fly.dev".to_string()]
    )]
    pub base_domains: Vec<String>,
    /// Custom hosts (a tenant's own domain names) one tenant may have; 0 allows none.
    #[arg(long, env = "PERMETRIX_MAX_CUSTOM_HOSTS", default_value_t = crate::http::custom_hosts::DEFAULT_MAX_PER_TENANT)]
    pub max_custom_hosts: usize,
    /// When writes are acknowledged.
    #[arg(
        long,
        env = "PERMETRIX_DURABILITY",
        value_enum,
        default_value = "strict"
    )]
    pub durability: DurabilityArg,
    /// Flush period in relaxed mode, in milliseconds.
    #[arg(long, env = "PERMETRIX_FLUSH_INTERVAL_MS", default_value_t = 100)]
    pub flush_interval_ms: u64,
    /// Seed demo data if the store is empty and print its credentials.
    #[arg(long, env = "PERMETRIX_DEMO")]
    pub demo: bool,
    /// Operator token (environment only; if unset, one is generated on first start).
    #[arg(
        long,
        env = "PERMETRIX_ADMIN_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PERMETRIX_WORKERS")]
    pub workers: Option<usize>,
    /// Arbiter threads hosting tenant actors (default: one per core).
    #[arg(long, env = "PERMETRIX_ARBITERS")]
    pub arbiters: Option<usize>,
    /// Messages one tenant may have queued before further requests get 503.
    #[arg(long, env = "PERMETRIX_MAILBOX_CAPACITY", default_value_t = 1024)]
    pub mailbox_capacity: usize,
    /// Requests of one tenant processed at once (through the flush) while other tenants
    /// are active; the rest wait in its mailbox. Lower keeps a flooded tenant's
    /// neighbours faster, higher lets one busy tenant use more of a shared server.
    #[arg(long, env = "PERMETRIX_TENANT_CONCURRENCY", default_value_t = permetrix_actors::DEFAULT_TENANT_CONCURRENCY)]
    pub tenant_concurrency: usize,
    /// Seconds a client refused for a full mailbox is told to wait (`Retry-After`); a
    /// retry on the same connection before then is held until then.
    #[arg(long, env = "PERMETRIX_OVERLOAD_RETRY_AFTER", default_value_t = 1)]
    pub overload_retry_after: u64,
    /// Open connections per HTTP worker beyond which new ones wait to be accepted (an
    /// idle keep-alive connection costs about 12 KiB).
    #[arg(long, env = "PERMETRIX_MAX_CONNECTIONS", default_value_t = 25_000)]
    pub max_connections: usize,
    /// Seconds an idle keep-alive connection stays open (at least 75: existing clients
    /// never retry a POST on a connection the server closed).
    #[arg(long, env = "PERMETRIX_KEEP_ALIVE", default_value_t = crate::server::DEFAULT_KEEP_ALIVE.as_secs(), value_parser = clap::value_parser!(u64).range(75..))]
    pub keep_alive: u64,
    /// Storage page cache in MiB.
    #[arg(long, env = "PERMETRIX_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,
    /// Log format.
    #[arg(long, env = "PERMETRIX_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// When portal session cookies are marked `Secure`: `auto` when the request came
    /// over HTTPS (`X-Forwarded-Proto: https`), `always` behind a TLS proxy (fly.io).
    #[arg(
        long,
        env = "PERMETRIX_SECURE_COOKIES",
        value_enum,
        default_value = "auto"
    )]
    pub secure_cookies: CookieSecurity,
    /// Header set by the reverse proxy to the client's address (`Fly-Client-IP` on
    /// fly.io), used to throttle failed logins per address; unset: the TCP peer.
    #[arg(long, env = "PERMETRIX_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<HeaderName>,
    /// Tenants that keep their own `tenant` label in /metrics; beyond that, the least
    /// recently active tenants are summed into `tenant="_other"`.
    #[arg(long, env = "PERMETRIX_METRICS_MAX_TENANTS", default_value_t = crate::metrics::DEFAULT_MAX_TENANTS)]
    pub metrics_max_tenants: usize,
    /// How long vendor and operator fan-out queries wait for each tenant, in milliseconds.
    #[arg(long, env = "PERMETRIX_FANOUT_DEADLINE_MS", default_value_t = 2000)]
    pub fanout_deadline_ms: u64,
    /// Allow webhook endpoints at private, loopback and link-local addresses (refused
    /// by default, at registration and at every delivery).
    #[arg(long, env = "PERMETRIX_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// Webhook deliveries in flight at once.
    #[arg(long, env = "PERMETRIX_WEBHOOKS_CONCURRENCY", default_value_t = 16)]
    pub webhooks_concurrency: usize,
    /// Seconds one webhook delivery may take, connecting included.
    #[arg(long, env = "PERMETRIX_WEBHOOKS_TIMEOUT_SECONDS", default_value_t = 10)]
    pub webhooks_timeout_seconds: u64,
    /// Events one tenant's webhook outbox keeps; beyond, the oldest are dropped.
    #[arg(
        long,
        env = "PERMETRIX_WEBHOOKS_OUTBOX_CAPACITY",
        default_value_t = 10_000
    )]
    pub webhooks_outbox_capacity: u64,
    /// Delay before the first retry of a failed delivery, in milliseconds (doubled per
    /// failure up to an hour); for tests.
    #[arg(
        long,
        env = "PERMETRIX_WEBHOOKS_RETRY_BASE_MS",
        default_value_t = 10_000,
        hide = true
    )]
    pub webhooks_retry_base_ms: u64,
    /// Which store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Seconds a broker's lease lasts without renewal (shared store): a broker that
    /// cannot renew it stops serving, and its tenants are taken over this long after it
    /// died.
    #[arg(long, env = "PERMETRIX_LEASE_TTL", default_value_t = 10)]
    pub lease_ttl: u64,
    /// Where other brokers reach this one (ADDR:PORT, a host name allowed); default: the
    /// bind address.
    #[arg(long, env = "PERMETRIX_ADVERTISE", value_parser = parse_address)]
    pub advertise: Option<String>,
    /// Off Fly: forward a request for a tenant owned by another broker to it, and relay
    /// its answer (without it, such a request is answered 503 with Retry-After).
    #[arg(long, env = "PERMETRIX_PEER_FORWARDING")]
    pub peer_forwarding: bool,
    /// Seconds a tenant actor stays idle (no request, no lease held, no waiter, no live
    /// event stream) before it stops and frees its memory; 0: never.
    #[arg(long, env = "PERMETRIX_IDLE_PASSIVATE", default_value_t = 300)]
    pub idle_passivate: u64,
    /// The deployment's server key, 64 hex characters (environment only): required with
    /// a shared store; with sled it must agree with server.key if that exists.
    #[arg(
        long,
        env = "PERMETRIX_SERVER_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub server_key: Option<String>,
    /// The Fly machine this broker runs on (set by Fly): requests for tenants owned by
    /// another broker are answered with `fly-replay`.
    #[arg(long, env = "FLY_MACHINE_ID", hide = true)]
    pub fly_machine_id: Option<String>,
    /// Also serve GET /metrics without credentials on this address (a private network:
    /// Fly's `[metrics]` scrape); on the public port /metrics needs a bearer token.
    #[arg(long, env = "PERMETRIX_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// A bearer token that reads /metrics on the public port (and nothing else), so
    /// that a scraper need not hold the operator token (environment only).
    #[arg(
        long,
        env = "PERMETRIX_METRICS_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Live event streams (/events) one API key or portal user may hold open; beyond,
    /// 429.
    #[arg(long, env = "PERMETRIX_MAX_STREAMS_PER_CREDENTIAL", default_value_t = StreamLimits::default().per_credential)]
    pub max_streams_per_credential: usize,
    /// Live event streams one tenant may hold open, all credentials together; beyond,
    /// 429.
    #[arg(long, env = "PERMETRIX_MAX_STREAMS_PER_TENANT", default_value_t = StreamLimits::default().per_tenant)]
    pub max_streams_per_tenant: usize,
    /// API keys one tenant may hold (revoked ones do not count); beyond, 409.
    #[arg(long, env = "PERMETRIX_MAX_KEYS_PER_TENANT", default_value_t = Limits::default().max_keys_per_tenant)]
    pub max_keys_per_tenant: usize,
    /// Portal users one tenant may have; beyond, 409.
    #[arg(long, env = "PERMETRIX_MAX_USERS_PER_TENANT", default_value_t = Limits::default().max_users_per_tenant)]
    pub max_users_per_tenant: usize,
    /// Crash-loop quarantine: restarts of one tenant's actor tolerated within
    /// --quarantine-period; one more quarantines the tenant (503 tenant_unavailable until
    /// POST /api/admin/tenants/{id}/resume).
    #[arg(long, env = "PERMETRIX_QUARANTINE_RESTARTS", default_value_t = permetrix_actors::RestartIntensity::DEFAULT.max_restarts, value_parser = clap::value_parser!(u32).range(1..))]
    pub quarantine_restarts: u32,
    /// Crash-loop quarantine: the window, in seconds, in which restarts are counted.
    #[arg(long, env = "PERMETRIX_QUARANTINE_PERIOD", default_value_t = permetrix_actors::RestartIntensity::DEFAULT.period.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub quarantine_period: u64,
}

/// `HOST:PORT` (a name or an address, and a port number).
fn parse_address(value: &str) -> Result<String, String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_owned())
        }
        _ => Err("expected HOST:PORT, such as 10.0.0.2:8000 or broker-2.internal:8000".into()),
    }
}

impl ServeArgs {
    /// The server configuration these arguments describe.
    pub fn config(&self) -> ServeConfig {
        let mut c = ServeConfig::new(&self.data_dir);
        c.bind = self.bind;
        c.base_domains = self.base_domains.clone();
        c.max_custom_hosts = self.max_custom_hosts;
        c.durability = match self.durability {
            DurabilityArg::Strict => Durability::Strict,
            DurabilityArg::Relaxed => Durability::Relaxed {
                interval: Duration::from_millis(self.flush_interval_ms.max(1)),
            },
        };
        c.admin_token = self.admin_token.clone().filter(|t| !t.is_empty());
        c.demo = self.demo;
        if let Some(w) = self.workers {
            c.workers = w;
        }
        if let Some(a) = self.arbiters {
            c.arbiters = a;
        }
        c.mailbox_capacity = self.mailbox_capacity.max(1);
        c.tenant_concurrency = self.tenant_concurrency.max(1);
        c.overload_retry_after = Duration::from_secs(self.overload_retry_after.clamp(1, 3600));
        c.cache_bytes = self.cache_mb.max(8) * 1024 * 1024;
        c.sessions.secure = self.secure_cookies;
        c.sessions.client_ip_header = self.client_ip_header.clone();
        c.max_connections = self.max_connections.max(1);
        c.keep_alive = Duration::from_secs(self.keep_alive);
        c.metrics_max_tenants = self.metrics_max_tenants.max(1);
        c.fanout_deadline = Duration::from_millis(self.fanout_deadline_ms.max(1));
        c.webhooks = WebhookSettings {
            allow_private: self.webhooks_allow_private,
            concurrency: self.webhooks_concurrency.max(1),
            timeout: Duration::from_secs(self.webhooks_timeout_seconds.clamp(1, 300)),
            outbox_capacity: self.webhooks_outbox_capacity.max(1),
            retry_base: Duration::from_millis(self.webhooks_retry_base_ms.max(1)),
        };
        c.store = self.store.kind();
        c.lease_ttl = Duration::from_secs(self.lease_ttl.max(1));
        c.advertise = self.advertise.clone();
        c.peer_forwarding = self.peer_forwarding;
        c.idle_passivate =
            (self.idle_passivate > 0).then(|| Duration::from_secs(self.idle_passivate));
        c.server_key = secret(&self.server_key);
        c.fly_machine_id = self.fly_machine_id.clone().filter(|m| !m.is_empty());
        c.metrics_bind = self.metrics_bind;
        c.metrics_token = self.metrics_token.clone().filter(|t| !t.is_empty());
        c.streams = StreamLimits {
            per_credential: self.max_streams_per_credential.max(1),
            per_tenant: self.max_streams_per_tenant.max(1),
        };
        c.limits.max_keys_per_tenant = self.max_keys_per_tenant.max(1);
        c.limits.max_users_per_tenant = self.max_users_per_tenant.max(1);
        c.restart_intensity = permetrix_actors::RestartIntensity {
            max_restarts: self.quarantine_restarts,
            period: Duration::from_secs(self.quarantine_period),
        };
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeConfig, clap::Error> {
        let argv = ["permetrix", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(args) => Ok(args.config()),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn cluster_flags_default_to_one_machine_and_parse_into_the_configuration() {
        let c = serve(&[]).unwrap();
        assert!(matches!(c.store, StoreKind::Sled));
        assert_eq!(c.lease_ttl, Duration::from_secs(10));
        assert_eq!(c.idle_passivate, Some(Duration::from_secs(300)));
        assert_eq!((c.advertise, c.peer_forwarding), (None, false));

        let c = serve(&[
            "--store",
            "postgres://permetrix@db.internal:5432/permetrix",
            "--lease-ttl",
            "4",
            "--advertise",
            "broker-2.internal:8000",
            "--peer-forwarding",
            "--idle-passivate",
            "0",
        ])
        .unwrap();
        assert!(c.store.is_shared());
        assert_eq!(c.lease_ttl, Duration::from_secs(4));
        assert_eq!(c.advertise.as_deref(), Some("broker-2.internal:8000"));
        assert!(c.peer_forwarding);
        assert_eq!(c.idle_passivate, None, "0 is never");

        assert!(serve(&["--store", "mysql://db/x"]).is_err());
        assert!(serve(&["--advertise", "no-port"]).is_err());
    }
}
