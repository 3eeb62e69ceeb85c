//! The integration tests' proxy that honours `fly-replay` as Fly's does
//! (`tests/api/helpers/fly_proxy.rs`), as a program, for `benches/cluster.sh`:
//!
//! ```sh
//! cargo run --release --example fly_proxy -- 127.0.0.1:18300 m1=127.0.0.1:18301 m2=127.0.0.1:18302
//! ```
//!
//! It listens on the first address and sends each request to the machines (id=address,
//! the brokers' `FLY_MACHINE_ID`s) in turn, replaying once where `fly-replay` says.
//! It runs until interrupted.
#[path = "../tests/api/helpers/fly_proxy.rs"]
mod fly_proxy;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: fly_proxy LISTEN_ADDR ID=ADDR [ID=ADDR …]";
    let listen: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let machines = args
        .map(|arg| {
            let (id, addr) = arg.split_once('=').context(usage)?;
            Ok((id.to_owned(), addr.parse::<SocketAddr>().context(usage)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if machines.is_empty() {
        bail!(usage);
    }
    actix_rt::System::new().block_on(async {
        let proxy = fly_proxy::FlyProxy::start(listen, &[], Duration::from_secs(30))?;
        for (id, addr) in &machines {
            proxy.set(id, *addr);
        }
        eprintln!("fly_proxy listening on {}", proxy.addr);
        tokio::signal::ctrl_c().await?;
        let c = proxy.counts();
        eprintln!(
            "fly_proxy: {} requests, {} replayed ({} asked for a second replay), {} refused connections, {} timeouts",
            c.requests, c.replays, c.second_replays, c.refused, c.timeouts
        );
        Ok(())
    })
}
