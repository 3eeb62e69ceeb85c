//! The command line: one clap-derive struct per command; doc comments are the help.
//! The client programs' arguments (`run`, `load`) are the client crate's.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header::HeaderName;
use clap::{Args, Parser, Subcommand, ValueEnum};
use permetrix_storage::Durability;

use permetrix_client::load::LoadArgs;
use permetrix_client::run::RunArgs;

use crate::auth::client::CookieSecurity;
use crate::auth::streams::StreamLimits;
use crate::http::limits::Limits;
use crate::server::ServeConfig;
use crate::server::telemetry::LogFormat;

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
    Serve(ServeArgs),
    /// Hold a seat while a command runs: borrow (queueing), heartbeat, run, return.
    /// Exits with the command's code, or 75 if no seat was granted.
    Run(RunArgs),
    /// Write a consistent snapshot of a store (of a running server, or a stopped one) to
    /// a file; it includes server.key, so keep it as safe as the data directory.
    Backup(BackupArgs),
    /// Restore a snapshot into a new, empty data directory.
    Restore(RestoreArgs),
    /// Drive borrow/return load (or a `/health` baseline) against a running server.
    Load(LoadArgs),
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
}

/// `permetrix restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file written by `permetrix backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to create (it must not exist, or be empty).
    #[arg(long, env = "PERMETRIX_DATA_DIR")]
    pub data_dir: PathBuf,
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
        c.metrics_max_tenants = self.metrics_max_tenants.max(1);
        c.fanout_deadline = Duration::from_millis(self.fanout_deadline_ms.max(1));
        c.metrics_bind = self.metrics_bind;
        c.metrics_token = self.metrics_token.clone().filter(|t| !t.is_empty());
        c.streams = StreamLimits {
            per_credential: self.max_streams_per_credential.max(1),
            per_tenant: self.max_streams_per_tenant.max(1),
        };
        c.limits.max_keys_per_tenant = self.max_keys_per_tenant.max(1);
        c.limits.max_users_per_tenant = self.max_users_per_tenant.max(1);
        c
    }
}
