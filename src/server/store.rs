//! Opening the store: the one place where `--store` becomes a backend, the ownership of
//! its tenants and the server's secrets.
use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use permetrix_storage::{
    FlushObserver, Ownership, PgConfig, PgStore, ResilientStore, SledConfig, SoleOwner, Store,
};
use secrecy::ExposeSecret;

use super::ServeConfig;
use crate::auth::secrets::ServerSecrets;
use crate::store_choice::{StoreKind, connect_postgres};

/// Wraps the ownership a store comes with, before the registry uses it: embedders may
/// observe or place tenants with it (the in-process tests place tenants on other
/// brokers). Applied by [`open`].
#[derive(Clone)]
pub struct OwnershipLayer(pub Arc<LayerFn>);

/// What an [`OwnershipLayer`] does: the store's ownership in, the one to use out.
pub type LayerFn = dyn Fn(Arc<dyn Ownership>) -> Arc<dyn Ownership> + Send + Sync;

impl fmt::Debug for OwnershipLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnershipLayer")
    }
}

/// An opened store and what comes with it.
pub struct Opened {
    /// The tenants' and the platform's records.
    pub store: Arc<dyn Store>,
    /// Which broker owns each tenant.
    pub ownership: Arc<dyn Ownership>,
    /// Whether other brokers write the same store (see `RegistryConfig::shared_store`).
    pub shared: bool,
    /// The sealing key and pepper (the key file, or `PERMETRIX_SERVER_KEY`).
    pub secrets: Arc<ServerSecrets>,
    /// The PostgreSQL store, whose platform version the read copies follow.
    pub postgres: Option<Arc<PgStore>>,
}

/// Opens the configured store (crash recovery completes here, before anything is
/// served), its ownership and the server's secrets. `advertised` is where other brokers
/// reach this one.
pub fn open(
    config: &ServeConfig,
    advertised: &str,
    observer: Arc<dyn FlushObserver>,
) -> anyhow::Result<Opened> {
    let mut postgres = None;
    let (store, ownership): (Arc<dyn Store>, Arc<dyn Ownership>) = match &config.store {
        StoreKind::Sled => {
            let store: Arc<dyn Store> = Arc::new(
                ResilientStore::open(SledConfig {
                    path: config.data_dir.clone(),
                    durability: config.durability,
                    cache_capacity: config.cache_bytes,
                    observer: Some(observer),
                })
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
            );
            let owner = Arc::new(SoleOwner::new(Arc::clone(&store)));
            (store, owner)
        }
        StoreKind::Postgres(url) => {
            let store = connect_postgres(
                url.expose_secret(),
                PgConfig {
                    lease_ttl: config.lease_ttl,
                    machine_id: config.fly_machine_id.clone(),
                    durability: config.durability,
                    observer: Some(observer),
                    ..PgConfig::new(advertised)
                },
            )?;
            postgres = Some(Arc::clone(&store));
            (
                Arc::clone(&store) as Arc<dyn Store>,
                store as Arc<dyn Ownership>,
            )
        }
    };
    let shared = config.store.is_shared();
    if !shared && config.server_key.is_none() {
        // Before the key file is created by the load below.
        crate::ops::startup_checks::require_key_for_existing_data(
            &config.data_dir,
            &permetrix_storage::Platform::new(Arc::clone(&store)),
        )?;
    }
    let secrets = ServerSecrets::load(&config.data_dir, config.server_key.as_ref(), shared)?;
    let ownership = match &config.ownership {
        Some(OwnershipLayer(layer)) => layer(ownership),
        None => ownership,
    };
    Ok(Opened {
        store,
        ownership,
        shared,
        secrets: Arc::new(secrets),
        postgres,
    })
}
