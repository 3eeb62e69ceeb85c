//! `permetrix token verify`: checks an offline token without the broker, as the
//! machine that carries it would: against the vendor's public keys (a JWKS fetched
//! from a URL or read from a file), by this machine's clock.
use std::net::ToSocketAddrs;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::offline_token::{self, JwkSet};
use crate::run::EXIT_USAGE;
use crate::tls::{ExtraRoots, http_client};

/// `permetrix token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// What to do with a token.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `permetrix token` commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify an offline token against the vendor's public keys: the signature (by the
    /// token's kid), exp and nbf. Prints the claims as JSON and exits 0 if it is valid;
    /// exits 1 with the reason if not, 66 if the token or the JWKS cannot be read, 64
    /// for unusable arguments.
    Verify(VerifyArgs),
}

/// `permetrix token verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The token, or @PATH to read it from a file (as `permetrix run --offline`
    /// stores it).
    pub token: String,
    /// The vendor's JWKS: a URL (https://vendor.permetrix.fly.dev/.well-known/jwks.json?vendor=VENDOR)
    /// or a file holding it.
    #[arg(long)]
    pub jwks: String,
    /// Require the token to be this vendor's (its `vendor` claim).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Connect to HOST:PORT instead of the JWKS URL's host, keeping the URL's Host header.
    #[arg(long)]
    pub connect: Option<String>,
}

/// The token is not valid (expired, altered, another vendor's, malformed).
pub const EXIT_INVALID: u8 = 1;
/// The token or the JWKS could not be read (sysexits.h `EX_NOINPUT`).
pub const EXIT_NO_INPUT: u8 = 66;

fn say(line: impl std::fmt::Display) {
    eprintln!("permetrix: {line}");
}

/// Runs `permetrix token`; returns the process exit code.
pub async fn main(args: TokenArgs) -> u8 {
    match args.command {
        TokenCommand::Verify(v) => verify(v).await,
    }
}

async fn verify(args: VerifyArgs) -> u8 {
    let token = match args.token.strip_prefix('@') {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                say(format_args!("cannot read the token from {path}: {e}"));
                return EXIT_NO_INPUT;
            }
        },
        None => args.token.trim().to_owned(),
    };
    let keys = match jwks(&args.jwks, args.connect.as_deref()).await {
        Ok(keys) => keys,
        Err((code, why)) => {
            say(why);
            return code;
        }
    };
    match offline_token::verify(&token, &keys, args.vendor.as_deref()) {
        Ok(claims) => match serde_json::to_string_pretty(&claims) {
            Ok(json) => {
                println!("{json}");
                0
            }
            Err(e) => {
                say(format_args!("cannot print the claims: {e}"));
                EXIT_INVALID
            }
        },
        Err(e) => {
            say(format_args!("the token is not valid: {e}"));
            EXIT_INVALID
        }
    }
}

/// The key set at `source`: a URL to fetch, else a file.
async fn jwks(source: &str, connect: Option<&str>) -> Result<JwkSet, (u8, String)> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        fetch(source, connect).await?
    } else {
        std::fs::read(source).map_err(|e| {
            (
                EXIT_NO_INPUT,
                format!("cannot read the JWKS file {source}: {e}"),
            )
        })?
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        (
            EXIT_NO_INPUT,
            format!("{source} is not a JWKS ({{\"keys\": [...]}}): {e}"),
        )
    })
}

async fn fetch(url: &str, connect: Option<&str>) -> Result<Vec<u8>, (u8, String)> {
    let usage = |e: String| (EXIT_USAGE, e);
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        return Err(usage(format!(
            "{url} uses https, but this permetrix was built without TLS; fetch the JWKS \
             another way and pass the file"
        )));
    }
    let mut req = http_client(Duration::from_secs(30), &ExtraRoots::default()).get(url);
    if let Some(c) = connect {
        let addr = c
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| usage(format!("--connect '{c}' does not resolve; use HOST:PORT")))?;
        req = req.address(addr);
    }
    let unreadable = |e: String| {
        (
            EXIT_NO_INPUT,
            format!("cannot fetch the JWKS from {url}: {e}"),
        )
    };
    let mut res = req.send().await.map_err(|e| unreadable(e.to_string()))?;
    if !res.status().is_success() {
        return Err(unreadable(format!("the server answered {}", res.status())));
    }
    let body = res
        .body()
        .limit(1024 * 1024)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(body.to_vec())
}
