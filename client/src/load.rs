//! `permetrix load`: a load generator for a running server.
//!
//! It drives borrow/return cycles (or, with `--baseline`, `GET /health`) over a fixed
//! number of keep-alive connections, either
//! - **open loop** (`--rate R`): request slots are released at `R` per second by a
//!   ticker thread, independent of how fast the server answers; a slot waits for a
//!   free connection if all are busy, and its latency is measured from the slot's
//!   *intended* send time, so a stalled server shows up as latency instead of silently
//!   lowering the offered rate (no coordinated omission), or
//! - **closed loop** (no `--rate`): every connection sends its next request as soon as
//!   the previous one is answered, which finds the maximum throughput.
//!
//! `--setup` bootstraps a vendor, tenants and tools through the operator and vendor APIs
//! and stores their credentials in a file, so that one command benchmarks a fresh server
//! and later runs reuse them.
//!
//! Layout: [`setup`] (bootstrap and credentials file), `driver` (connections, slots,
//! requests), `report` (histograms, the printed report and the JSON summary).
mod driver;
mod pace;
mod report;
pub mod setup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

pub use report::Summary;

/// `permetrix load`.
#[derive(Clone, Debug, Args)]
pub struct LoadArgs {
    /// Address of the server.
    #[arg(long, env = "PERMETRIX_LOAD_SERVER", default_value = "127.0.0.1:8000")]
    pub server: SocketAddr,
    /// Base domain of the server's hosts (tenants are `<tenant>.<base>`).
    #[arg(long, env = "PERMETRIX_LOAD_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,
    /// Offered requests per second (open loop). Without it, the run is closed loop:
    /// each connection sends as fast as it is answered.
    #[arg(long, env = "PERMETRIX_LOAD_RATE")]
    pub rate: Option<f64>,
    /// Keep-alive connections (the most requests in flight).
    #[arg(long, env = "PERMETRIX_LOAD_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,
    /// Tenants to spread the cycles over (round robin).
    #[arg(long, env = "PERMETRIX_LOAD_TENANTS", default_value_t = 100)]
    pub tenants: usize,
    /// Index of the first tenant of the credentials file to use (runs side by side on
    /// disjoint tenants, e.g. a flood of one tenant next to a measured run of others).
    #[arg(long, env = "PERMETRIX_LOAD_FIRST_TENANT", default_value_t = 0)]
    pub first_tenant: usize,
    /// Tools per tenant (cycles go round robin over them).
    #[arg(long, env = "PERMETRIX_LOAD_TOOLS", default_value_t = 1)]
    pub tools: usize,
    /// Measured time in seconds.
    #[arg(long, env = "PERMETRIX_LOAD_DURATION", default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many requests even if `--duration` has not passed (a run of a
    /// known size: reproducible counts, e.g. in tests).
    #[arg(long, env = "PERMETRIX_LOAD_REQUESTS")]
    pub requests: Option<u64>,
    /// Unmeasured time before the measurement, in seconds.
    #[arg(long, env = "PERMETRIX_LOAD_WARMUP", default_value_t = 2.0)]
    pub warmup: f64,
    /// Sign borrows (v1 signatures with the vendor's signing secret); the tenants'
    /// signature policy is set to match.
    #[arg(long, env = "PERMETRIX_LOAD_SIGNED")]
    pub signed: bool,
    /// Drive `GET /health` instead of borrow/return, with the same connections and
    /// schedule: the baseline the borrow figures are compared against.
    #[arg(long, env = "PERMETRIX_LOAD_BASELINE")]
    pub baseline: bool,
    /// Activate every tenant once (`GET /licenses/status`) and exit.
    #[arg(long, conflicts_with = "baseline")]
    pub touch: bool,
    /// Create the vendor, tenants and tools that the credentials file lacks (needs the
    /// operator token in `PERMETRIX_ADMIN_TOKEN` when the vendor is new).
    #[arg(long)]
    pub setup: bool,
    /// Where the credentials of the load vendor and tenants are kept.
    #[arg(
        long,
        env = "PERMETRIX_LOAD_CREDENTIALS",
        default_value = "permetrix-load.json"
    )]
    pub credentials: PathBuf,
    /// Vendor id used by `--setup`.
    #[arg(long, default_value = "loadvendor")]
    pub vendor: String,
    /// Tenant ids are `<prefix>-<n>`.
    #[arg(long, default_value = "load")]
    pub tenant_prefix: String,
    /// Seats per tool created by `--setup` (all commit: cycles book no overage).
    #[arg(long, default_value_t = 100_000)]
    pub seats: u32,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Operator token (environment only), for `--setup`.
    #[arg(
        long,
        env = "PERMETRIX_ADMIN_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

impl LoadArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.connections == 0 || self.tenants == 0 || self.tools == 0 {
            bail!("--connections, --tenants and --tools must be at least 1");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of requests per second");
        }
        let duration_ok = self.duration.is_finite() && self.duration > 0.0;
        let warmup_ok = self.warmup.is_finite() && self.warmup >= 0.0;
        if !(duration_ok && warmup_ok) {
            bail!("--duration must be positive and --warmup not negative (seconds)");
        }
        Ok(())
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }
}

/// Runs `permetrix load` to completion on the current thread.
pub fn main(args: LoadArgs) -> anyhow::Result<()> {
    args.check()?;
    actix_rt::System::new().block_on(run(args))
}

async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let client = driver::client(args.connections);
    let needs_tenants = !args.baseline || args.touch;
    let creds = if needs_tenants {
        let creds = if args.setup {
            setup::ensure(&client, &args).await?
        } else {
            setup::Credentials::read(&args.credentials)?
        };
        creds.check_covers(&args)?;
        if !args.touch {
            setup::ensure_policy(&client, &args, &creds).await?;
        }
        Some(creds)
    } else {
        None
    };
    if args.touch {
        let creds = creds.context("touch needs tenants")?;
        let touched = setup::touch(&client, &args, &creds).await?;
        eprintln!("touched {touched} tenants");
        return Ok(());
    }
    let summary = driver::drive(&client, &args, creds.as_ref()).await?;
    println!("{}", summary.text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
