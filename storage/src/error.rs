use thiserror::Error;

/// Everything that can go wrong below the [`crate::Store`] trait.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The backend failed to read or write; the string says what was being done.
    #[error("storage I/O failed while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The backend error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value could not be decoded.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// An insert found the key already present.
    #[error("{table} '{key}' already exists")]
    AlreadyExists {
        /// Table name.
        table: &'static str,
        /// The conflicting key.
        key: String,
    },
    /// The flush that should have made a write durable failed; the write is not
    /// acknowledged.
    #[error("durable flush failed: {0}")]
    FlushFailed(String),
    /// The store is shutting down and accepts no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// The data directory is not a permetrix store (or of a newer format).
    #[error("{0}")]
    Foreign(String),
    /// The batch was not written: the tenant's ownership moved on (another broker
    /// acquired it under a newer epoch). The writer must stop its tenant's actor and
    /// drop its state; nothing it holds in memory may be answered from any more.
    #[error("tenant '{tenant}' is owned by another broker now; its write was fenced")]
    Fenced {
        /// The tenant whose write was refused.
        tenant: String,
    },
    /// Another process (a running server) holds the store open; the string names the
    /// data directory and says what to do.
    #[error("{0}")]
    InUse(String),
    /// The store is out of service for now (it hit an I/O error and is being reopened
    /// from disk, or the backend cannot do what was asked); nothing was read or written.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// Whether a write failed because a custom host it claims belongs to another tenant
    /// ([`crate::Platform::set_custom_hosts`], [`crate::Platform::create_tenant`]).
    pub fn is_host_taken(&self) -> bool {
        matches!(
            self,
            StorageError::AlreadyExists { table, .. }
                if *table == crate::backend::Table::CustomHosts.name()
        )
    }

    pub(crate) fn io(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StorageError::Io {
            context: context.into(),
            source: Box::new(source),
        }
    }
}
