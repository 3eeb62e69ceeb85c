//! Which store a command runs on (`--store`) and connecting to the shared one: what the
//! server and the operator tools (backup, restore, import) have in common.
use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use permetrix_storage::{PgConfig, PgStore};
use secrecy::{ExposeSecret, SecretString};

/// Which store the server runs on (`--store`).
#[derive(Clone)]
pub enum StoreKind {
    /// The embedded store in the data directory: one broker owns every tenant.
    Sled,
    /// A PostgreSQL-wire database shared by several brokers (`postgres://…`).
    Postgres(SecretString),
}

impl StoreKind {
    /// Parses `--store`: `sled`, or a `postgres://` / `postgresql://` URL.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("sled") {
            return Ok(StoreKind::Sled);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(StoreKind::Postgres(SecretString::from(value.to_owned())));
        }
        Err("expected `sled` or a URL postgres://user@host:port/database".into())
    }

    /// Whether other brokers share the store.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreKind::Postgres(_))
    }

    /// The database URL of a shared store.
    pub fn database_url(&self) -> Option<&str> {
        match self {
            StoreKind::Sled => None,
            StoreKind::Postgres(url) => Some(url.expose_secret()),
        }
    }
}

/// Connects to the PostgreSQL store at `url` and registers this broker (or tool) there
/// with a lease, advertised as `config.advertise`.
pub fn connect_postgres(url: &str, config: PgConfig) -> anyhow::Result<Arc<PgStore>> {
    // The URL may carry a password: the error names the database, never the URL.
    let store = PgStore::connect(url, config).context("connecting to the PostgreSQL store")?;
    Ok(Arc::new(store))
}

impl fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKind::Sled => f.write_str("sled"),
            // The URL may carry a password.
            StoreKind::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}
