//! `permetrix run`: hold a seat only while a command runs.
//!
//! Borrow (queueing up to `--wait`, with progress on stderr), run the command with a
//! heartbeat every third of the lease, return the seat when the command exits or the
//! wrapper is interrupted (SIGINT/SIGTERM are forwarded to the command), and exit with
//! the command's code. No seat: exit 75 (EX_TEMPFAIL) with the reason on stderr.
//!
//! With `--offline HOURS` the seat is an offline checkout: its token is stored
//! (`offline`), the command runs without heartbeats (the broker may be out of reach
//! meanwhile), and the seat is returned early at the end if the broker answers.
mod api;
mod offline;

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

pub use api::key_reference;
use api::{Api, CallError, Endpoint};

use crate::tls::{ExtraRoots, http_client};
pub use offline::default_token_path;

/// `permetrix run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tenant's URL (https://acme.permetrix.fly.dev).
    #[arg(long, env = "PERMETRIX_SERVER")]
    pub server: String,
    /// Tool to borrow (product name or id).
    #[arg(long, env = "PERMETRIX_TOOL")]
    pub tool: String,
    /// Who borrows (default: $USER).
    #[arg(long, env = "PERMETRIX_USER", default_value_t = default_user())]
    pub user: String,
    /// Seconds to wait in the queue for a seat (0-300; 0: fail at once).
    #[arg(long, env = "PERMETRIX_WAIT", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=300))]
    pub wait: u32,
    /// Lease length in seconds (30-86400; default: the tenant's setting).
    #[arg(long, env = "PERMETRIX_LEASE", value_parser = clap::value_parser!(u32).range(30..=86_400))]
    pub lease: Option<u32>,
    /// Check the seat out for HOURS (1-8760) and run without heartbeats: the broker
    /// may be unreachable while the command runs. The seat is returned at the end if
    /// the broker answers, else it frees itself when the checkout ends.
    #[arg(long, env = "PERMETRIX_OFFLINE", value_name = "HOURS", conflicts_with = "lease",
          value_parser = clap::value_parser!(u32).range(1..=8_760))]
    pub offline: Option<u32>,
    /// Where to store the offline token (mode 0600; default
    /// $XDG_STATE_HOME/permetrix/offline/<borrow id>.jwt, with XDG_STATE_HOME defaulting
    /// to ~/.local/state). The command finds it in $PERMETRIX_OFFLINE_TOKEN_FILE.
    #[arg(
        long,
        env = "PERMETRIX_TOKEN_FILE",
        value_name = "PATH",
        requires = "offline"
    )]
    pub token_file: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file for https:// (a broker behind a
    /// private CA); the public roots stay trusted.
    #[arg(long, env = "PERMETRIX_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Connect to HOST:PORT instead of the URL's host, keeping the URL's Host header.
    #[arg(long, env = "PERMETRIX_CONNECT")]
    pub connect: Option<String>,
    /// Seconds between progress lines while queued.
    #[arg(
        long,
        env = "PERMETRIX_PROGRESS_SECONDS",
        default_value_t = 5,
        hide = true
    )]
    pub progress_seconds: u64,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true, num_args = 1..)]
    pub command: Vec<String>,
}

fn default_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "permetrix-run".into())
}

/// Exit code when no seat was granted (sysexits.h `EX_TEMPFAIL`).
pub const EXIT_NO_SEAT: u8 = 75;
/// Exit code for unusable arguments or environment (sysexits.h `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit code when the offline token cannot be stored (sysexits.h `EX_CANTCREAT`).
pub const EXIT_CANT_CREATE: u8 = 73;

fn say(line: impl std::fmt::Display) {
    eprintln!("permetrix: {line}");
}

fn endpoint(args: &RunArgs) -> Result<Endpoint, String> {
    let (scheme, host, port) = Endpoint::parse_url(&args.server)?;
    let connect = match &args.connect {
        None => None,
        Some(c) => Some(
            c.to_socket_addrs()
                .map_err(|e| format!("--connect '{c}' does not resolve: {e}; use HOST:PORT"))?
                .next()
                .ok_or_else(|| format!("--connect '{c}' resolves to no address"))?,
        ),
    };
    let api_key = std::env::var("PERMETRIX_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or("set PERMETRIX_API_KEY to a tenant API key (borrow scope) of the tenant")?;
    let signing = match (
        std::env::var("PERMETRIX_VENDOR_ID")
            .ok()
            .filter(|v| !v.is_empty()),
        std::env::var("PERMETRIX_SIGNING_SECRET")
            .ok()
            .filter(|v| !v.is_empty()),
    ) {
        (Some(v), Some(s)) => Some((v, s)),
        (None, None) => None,
        _ => {
            return Err(
                "set both PERMETRIX_SIGNING_SECRET and PERMETRIX_VENDOR_ID to sign borrows, or neither"
                    .into(),
            );
        }
    };
    if scheme == "https" && !cfg!(feature = "tls") {
        return Err(format!(
            "--server '{}' uses https, but this permetrix was built without TLS; rebuild with \
             the default 'tls' feature, or reach the broker over http (e.g. through a local \
             TLS-terminating proxy with --connect)",
            args.server
        ));
    }
    Ok(Endpoint {
        scheme,
        host,
        port,
        connect,
        api_key,
        signing,
    })
}

/// Runs `permetrix run`; returns the process exit code.
pub async fn run(args: RunArgs) -> u8 {
    let endpoint = match endpoint(&args) {
        Ok(e) => e,
        Err(e) => {
            say(e);
            return EXIT_USAGE;
        }
    };
    let roots = match args.ca_cert.as_deref().map(ExtraRoots::load).transpose() {
        Ok(roots) => roots.unwrap_or_default(),
        Err(e) => {
            say(e);
            return EXIT_USAGE;
        }
    };
    let api = Api::new(endpoint, http_client(Duration::from_secs(30), &roots));
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say("cannot install signal handlers");
        return EXIT_NO_SEAT;
    };

    // 1. A seat (queueing), interruptible.
    let key = Api::new_key();
    let started = Instant::now();
    let length = match args.offline {
        Some(hours) => api::Length::Offline(hours),
        None => api::Length::Lease(args.lease),
    };
    let borrow = api.borrow(&args.tool, &args.user, args.wait, length, &key);
    let progress = async {
        if args.wait == 0 {
            return std::future::pending().await;
        }
        let mut every = actix_rt::time::interval(Duration::from_secs(args.progress_seconds.max(1)));
        every.tick().await;
        loop {
            every.tick().await;
            if let Some((position, waiting)) = api.position(&args.tool, &key).await {
                say(format_args!(
                    "waiting for a seat of '{}': position {position} of {waiting}, {} s elapsed",
                    args.tool,
                    started.elapsed().as_secs()
                ));
            }
        }
    };
    let seat = tokio::select! {
        r = borrow => r,
        () = progress => unreachable_progress(),
        _ = sigint.recv() => return interrupted_while_waiting(Signal::SIGINT),
        _ = sigterm.recv() => return interrupted_while_waiting(Signal::SIGTERM),
    };
    let seat = match seat {
        Ok(s) => s,
        Err(e) => {
            say(format_args!("no seat of '{}' was granted: {e}", args.tool));
            return EXIT_NO_SEAT;
        }
    };
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let token_file = match &seat.offline {
        None => {
            say(format_args!(
                "holding a seat of '{}' (borrow {}, lease {} s)",
                seat.tool, seat.id, seat.lease_seconds
            ));
            None
        }
        Some(checkout) => {
            let Some(path) = args
                .token_file
                .clone()
                .or_else(|| default_token_path(&seat.id))
            else {
                say("cannot tell where to store the offline token: set HOME or pass --token-file");
                give_back(&api, &seat.id).await;
                return EXIT_CANT_CREATE;
            };
            if let Err(e) = offline::store_token(&path, &checkout.token) {
                say(format_args!(
                    "cannot store the offline token in {}: {e}",
                    path.display()
                ));
                give_back(&api, &seat.id).await;
                return EXIT_CANT_CREATE;
            }
            say(format_args!(
                "checked out a seat of '{}' until {} (borrow {}); offline token in {}; \
                 running without heartbeats",
                seat.tool,
                checkout.expires_at,
                seat.id,
                path.display()
            ));
            command.env(offline::TOKEN_FILE_ENV, &path);
            Some(path)
        }
    };

    // 2. The command, with heartbeats (none for an offline checkout); signals are
    //    forwarded to it.
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            say(format_args!("cannot start '{}': {e}", args.command[0]));
            match &token_file {
                Some(path) => offline::finish(&api, &seat, path).await,
                None => give_back(&api, &seat.id).await,
            }
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (done_tx, mut done) = oneshot::channel::<std::io::Result<ExitStatus>>();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let beat = Duration::from_secs((seat.lease_seconds / 3).max(1));
    let mut heartbeat = actix_rt::time::interval_at(actix_rt::time::Instant::now() + beat, beat);
    // An offline checkout is never heartbeated: it lasts until its end.
    let mut lease_lost = seat.offline.is_some();
    let status = loop {
        tokio::select! {
            s = &mut done => break s,
            _ = heartbeat.tick(), if !lease_lost => match api.heartbeat(&seat.id).await {
                Ok(()) => {}
                Err(e @ CallError::Refused { status: 404, .. }) => {
                    say(format_args!("the seat was lost, the command keeps running without it: {e}"));
                    lease_lost = true;
                }
                Err(e) => say(format_args!("heartbeat failed, will retry: {e}")),
            },
            _ = sigint.recv() => forward(pid, Signal::SIGINT),
            _ = sigterm.recv() => forward(pid, Signal::SIGTERM),
        }
    };

    // 3. Give the seat back, then exit like the command.
    match &token_file {
        Some(path) => offline::finish(&api, &seat, path).await,
        None if !lease_lost => give_back(&api, &seat.id).await,
        None => {}
    }
    exit_code(status)
}

fn unreachable_progress<T>() -> T {
    // `progress` loops forever; select! needs a value of the branch type.
    unreachable!("the progress loop never ends")
}

fn interrupted_while_waiting(sig: Signal) -> u8 {
    // Dropping the borrow closes its connection: the broker removes the waiter, and
    // gives back a seat granted in that very moment.
    say(format_args!(
        "interrupted ({sig}) while waiting; no seat is held"
    ));
    128u8.saturating_add(sig as u8)
}

fn forward(pid: Pid, sig: Signal) {
    say(format_args!("forwarding {sig} to the command"));
    if let Err(e) = kill(pid, sig) {
        say(format_args!("could not forward {sig}: {e}"));
    }
}

async fn give_back(api: &Api, id: &str) {
    match api.give_back(id).await {
        Ok(()) => say("seat returned"),
        Err(e) => say(format_args!(
            "could not return the seat (it frees itself when its lease expires): {e}"
        )),
    }
}

fn exit_code(status: Result<std::io::Result<ExitStatus>, oneshot::error::RecvError>) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(Ok(s)) => match (s.code(), s.signal()) {
            (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
            (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(1),
            (None, None) => 1,
        },
        _ => {
            say("lost track of the command");
            1
        }
    }
}
