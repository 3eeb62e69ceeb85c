//! With a shared store, other brokers change platform records too: this broker's read
//! copies (the vendors' unsealed signing secrets, the custom-host map) follow the
//! database's platform version, polled well under a second apart (`SCALE-OUT.md`,
//! "Global records"). Tenant-host requests reach the tenant's owner, which reads keys
//! and users from the store itself, so a revocation there needs no refresh.
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use permetrix_storage::PgStore;

use super::state::AppState;

/// How often the platform version is read.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Polls `store`'s platform version and drops the read copies when it moves.
pub fn spawn(state: web::Data<AppState>, store: Arc<PgStore>) {
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = None;
        loop {
            tick.tick().await;
            let read = Arc::clone(&store);
            let version = match web::block(move || read.platform_version()).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the platform version failed; retrying");
                    continue;
                }
                Err(_) => continue,
            };
            if seen.is_some_and(|s| s != version) {
                state.signing_keys.forget_all();
                let reload = state.clone();
                match web::block(move || reload.custom_hosts.reload(&reload.platform)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "reloading the custom hosts failed; retrying");
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            seen = Some(version);
        }
    });
}
