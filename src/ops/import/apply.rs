//! The writes, through the `Store` trait and `Platform` verbs only, so that any backend
//! takes them. Per tenant, two writes: its state (pools, settings, held seats, ledger,
//! spend) in one atomic append, then its platform records (the tenant itself, its keys,
//! users, package index entries, and any vendor it is the first to need) in one atomic
//! batch. The tenant exists only once the second has landed; a run that stops between
//! the two leaves state nobody can see, which the next run finds and finishes.
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use permetrix_storage::records::{
    ApiKeyRecord, Lifecycle, PackageIndexRecord, Scope, VendorRecord,
};
use permetrix_storage::{
    Acquisition, Durability, Epoch, ImportedTenant, Ownership, PgConfig, Platform, SledConfig,
    SledStore, SoleOwner, StorageError, Store, TenantId, TenantMutation, Timestamp, VendorId,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::compare::{Existing, VendorVerdict, Verdict};
use super::plan::{Draft, VendorDraft};
use crate::auth::api_key;
use crate::auth::secrets::{KEY_FILE, ServerSecrets, random_hex};
use crate::ops::backup::CONTROL_SOCKET;
use crate::ops::startup_checks::require_key_for_existing_data;
use crate::store_choice::StoreKind;
use crate::store_choice::connect_postgres;

/// How the import names itself among the brokers of a shared store (it serves nothing,
/// and no broker forwards to it: it owns only tenants that are not live yet).
const IMPORT_ADVERTISE: &str = "permetrix-import:0";

/// The store written to, and the server's keys (which seal secrets and pepper digests).
pub struct Target {
    /// The store; `None` in a dry run against a data directory that does not exist
    /// yet (nothing to compare with, and nothing may be created).
    pub store: Option<Arc<dyn Store>>,
    /// Who owns the tenants: each is acquired before its state is written, under its
    /// epoch, as a broker would (`docs/decisions.md`, "Importing into PostgreSQL").
    ownership: Option<Arc<dyn Ownership>>,
    /// The server's keys: those of the data directory, or throwaway ones in a dry run
    /// that finds none.
    pub secrets: ServerSecrets,
}

fn in_use(data_dir: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "the data directory {} is in use by a running server; stop it (the import needs the \
         store to itself), import, and start it again — or import into another data \
         directory and start the server there",
        data_dir.display()
    )
}

/// Opens the store the server uses: the embedded store in the data directory (refused
/// while a running server holds it), or the shared PostgreSQL store (brokers may run).
pub fn open(
    data_dir: &Path,
    store: &StoreKind,
    server_key: Option<&SecretString>,
    dry_run: bool,
) -> anyhow::Result<Target> {
    match store {
        StoreKind::Sled => open_sled(data_dir, server_key, dry_run),
        StoreKind::Postgres(url) => {
            // Before connecting: a missing key is refused without touching the database.
            let secrets = ServerSecrets::load(data_dir, server_key, true)?;
            let store = connect_postgres(url.expose_secret(), PgConfig::new(IMPORT_ADVERTISE))?;
            Ok(Target {
                store: Some(Arc::clone(&store) as Arc<dyn Store>),
                ownership: Some(store),
                secrets,
            })
        }
    }
}

fn open_sled(
    data_dir: &Path,
    server_key: Option<&SecretString>,
    dry_run: bool,
) -> anyhow::Result<Target> {
    // A running server answers on its control socket; sled's lock below is the guarantee.
    if UnixStream::connect(data_dir.join(CONTROL_SOCKET)).is_ok() {
        return Err(in_use(data_dir));
    }
    let empty = match std::fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_dir.display())),
    };
    if dry_run && empty {
        return Ok(Target {
            store: None,
            ownership: None,
            secrets: ServerSecrets::ephemeral(),
        });
    }
    let store: Arc<dyn Store> = match SledStore::open(SledConfig {
        durability: Durability::Strict,
        ..SledConfig::new(data_dir)
    }) {
        Ok(s) => Arc::new(s),
        Err(StorageError::InUse(_)) => return Err(in_use(data_dir)),
        Err(e) => {
            return Err(e).with_context(|| format!("opening the store in {}", data_dir.display()));
        }
    };
    let platform = Platform::new(Arc::clone(&store));
    if server_key.is_none() {
        require_key_for_existing_data(data_dir, &platform)?;
    }
    let secrets = if dry_run && server_key.is_none() && !data_dir.join(KEY_FILE).exists() {
        ServerSecrets::ephemeral()
    } else {
        ServerSecrets::load(data_dir, server_key, false)?
    };
    Ok(Target {
        ownership: Some(Arc::new(SoleOwner::new(Arc::clone(&store)))),
        store: Some(store),
        secrets,
    })
}

impl Target {
    /// Makes every write durable and, in a shared store, ends the import's lease.
    pub fn close(&self) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            store.shutdown().context("flushing the store")?;
        }
        if let Some(ownership) = &self.ownership {
            ownership
                .leave()
                .context("releasing the imported tenants")?;
        }
        Ok(())
    }

    /// Takes `tenant` for the import: the epoch its writes carry. A tenant another broker
    /// owns is refused (brokers only ever activate live tenants, and the import writes
    /// only tenants that are not live yet, so this means the store changed under it).
    fn acquire(&self, tenant: &TenantId) -> anyhow::Result<Epoch> {
        let Some(ownership) = &self.ownership else {
            bail!("no store to write to");
        };
        match ownership.acquire(tenant)? {
            Acquisition::Acquired { epoch, .. } => Ok(epoch),
            Acquisition::OwnedBy(broker) => bail!(
                "tenant {tenant} is owned by the broker {} ({}), so something else created it \
                 while the import ran; run the import again to compare with what is stored now",
                broker.node,
                broker.address
            ),
        }
    }

    /// Hands `tenant` back once its records are written, so that brokers acquire it.
    fn release(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError> {
        match &self.ownership {
            Some(ownership) => ownership.release(tenant, epoch),
            None => Ok(()),
        }
    }

    fn platform(&self) -> Option<Platform> {
        self.store.as_ref().map(|s| Platform::new(Arc::clone(s)))
    }

    /// What the store holds that `d` touches.
    pub fn existing(&self, d: &Draft) -> anyhow::Result<Existing> {
        let (Some(store), Some(platform)) = (&self.store, self.platform()) else {
            return Ok(Existing {
                key_lookups: vec![None; d.keys.len()],
                package_index: vec![None; d.packages.len()],
                ..Existing::default()
            });
        };
        let read = || -> Result<Existing, StorageError> {
            Ok(Existing {
                tenant: platform.tenant(&d.id)?,
                state: store.load_tenant(&d.id)?,
                charges: store.charges(&d.id, 0, usize::MAX)?,
                keys: platform.tenant_api_keys(&d.id)?,
                key_lookups: d
                    .keys
                    .iter()
                    .map(|k| platform.legacy_key(&k.key.digest))
                    .collect::<Result<_, _>>()?,
                users: platform.tenant_users(&d.id)?,
                package_index: d
                    .packages
                    .iter()
                    .map(|p| platform.package(&p.package_id))
                    .collect::<Result<_, _>>()?,
            })
        };
        read().with_context(|| format!("reading what the store holds of tenant {}", d.id))
    }

    /// The stored vendor `id`, and whether its signing secret is `secret` (if given).
    pub fn vendor(
        &self,
        id: &VendorId,
        secret: Option<&SecretString>,
    ) -> anyhow::Result<(Option<VendorRecord>, Option<bool>)> {
        let Some(platform) = self.platform() else {
            return Ok((None, None));
        };
        let stored = platform.vendor(id)?;
        let matches = match (&stored, secret) {
            (Some(v), Some(given)) => {
                let current = self.secrets.unseal(&v.signing_secret)?;
                Some(bool::from(
                    current
                        .expose_secret()
                        .ct_eq(given.expose_secret().as_bytes()),
                ))
            }
            _ => None,
        };
        Ok((stored, matches))
    }
}

/// Secrets the import made, each shown once in the report.
#[derive(Default)]
pub struct Issued {
    /// Each new tenant's admin key.
    pub admin_keys: Vec<(TenantId, String)>,
    /// Each new vendor's API key, and its signing secret if one was generated.
    pub vendors: Vec<(VendorId, String, Option<String>)>,
    /// Tenants fully written.
    pub tenants_written: Vec<TenantId>,
}

/// A vendor record for `d`, with a new API key and the given (or a new) signing secret.
fn new_vendor(
    d: &VendorDraft,
    secrets: &ServerSecrets,
    signing_secret: Option<&SecretString>,
    now: Timestamp,
    issued: &mut Issued,
) -> VendorRecord {
    let key_secret = api_key::new_secret();
    let (signing, generated) = match signing_secret {
        Some(s) => (s.expose_secret().to_owned(), None),
        None => {
            let s = random_hex::<32>();
            (s.clone(), Some(s))
        }
    };
    issued.vendors.push((
        d.id.clone(),
        api_key::vendor_key(d.id.as_str(), &key_secret),
        generated,
    ));
    VendorRecord {
        vendor_id: d.id.to_string(),
        vendor_name: d.name.clone(),
        contact_email: d.contact_email.clone(),
        api_key_digest: secrets.key_digest(&key_secret),
        signing_secret: secrets.seal(signing.as_bytes()),
        previous_signing_secret: None,
        password_hash: None,
        created_at: d.created_at.unwrap_or(now),
        lifecycle: Lifecycle::Active,
    }
}

/// A tenant's state writes; a resumed run skips the charges written already and drops
/// leases the file no longer holds.
pub fn mutations(d: &Draft, verdict: &Verdict) -> Vec<TenantMutation> {
    let (stale, done) = match verdict {
        Verdict::Resume {
            stale_leases,
            charges_done,
        } => (stale_leases.as_slice(), *charges_done),
        _ => (&[][..], 0),
    };
    let mut m = Vec::new();
    m.extend(d.packages.iter().cloned().map(TenantMutation::PutPackage));
    m.extend(
        d.restrictions
            .iter()
            .cloned()
            .map(TenantMutation::PutRestriction),
    );
    m.push(TenantMutation::PutSettings(d.settings.clone()));
    m.extend(stale.iter().copied().map(TenantMutation::DeleteLease));
    m.extend(d.leases.iter().cloned().map(TenantMutation::PutLease));
    m.extend(
        d.charges
            .iter()
            .filter(|c| c.seq > done)
            .cloned()
            .map(TenantMutation::AppendCharge),
    );
    m.extend(d.spend.iter().cloned().map(TenantMutation::PutSpend));
    m
}

/// Writes every tenant that is new or half imported, and the new vendors; stops at the
/// first failure (tenants written before it are whole; the next run finishes the rest).
pub async fn write(
    t: &Target,
    tenants: &[(Draft, Verdict)],
    vendors: &[(VendorDraft, VendorVerdict)],
    signing_secret: Option<&SecretString>,
    now: Timestamp,
    progress: &ProgressBar,
) -> anyhow::Result<Issued> {
    let (Some(store), Some(platform)) = (&t.store, t.platform()) else {
        bail!("no store to write to");
    };
    let mut issued = Issued::default();
    let mut created: BTreeSet<VendorId> = BTreeSet::new();
    let new_vendor_draft = |id: &VendorId| {
        vendors
            .iter()
            .find(|(v, verdict)| &v.id == id && *verdict == VendorVerdict::New)
            .map(|(v, _)| v)
    };
    for (d, verdict) in tenants {
        progress.inc(1);
        if !matches!(verdict, Verdict::New | Verdict::Resume { .. }) {
            continue;
        }
        let epoch = t.acquire(&d.id)?;
        let written = async {
            store
                .append(&d.id, epoch, &mutations(d, verdict))?
                .wait()
                .await?;
            let mut new_vendors = Vec::new();
            for v in &d.vendors {
                if let Some(draft) = new_vendor_draft(v).filter(|_| !created.contains(v)) {
                    new_vendors.push(new_vendor(
                        draft,
                        &t.secrets,
                        signing_secret,
                        now,
                        &mut issued,
                    ));
                }
            }
            let (admin_key, key) = admin_key(d, &t.secrets, now);
            let records = ImportedTenant {
                new_vendors,
                tenant: d.tenant.clone(),
                admin_key,
                keys: d.keys.clone(),
                users: d.users.clone(),
                packages: d
                    .packages
                    .iter()
                    .map(|p| PackageIndexRecord {
                        package_id: p.package_id.clone(),
                        tenant_id: d.id.to_string(),
                        vendor_id: p.vendor_id.clone(),
                    })
                    .collect(),
            };
            platform.import_tenant(&records)?.wait().await?;
            created.extend(
                records
                    .new_vendors
                    .iter()
                    .filter_map(|v| VendorId::parse(&v.vendor_id).ok()),
            );
            issued.admin_keys.push((d.id.clone(), key));
            t.release(&d.id, epoch)
        }
        .await;
        written.with_context(|| {
            format!(
                "writing tenant {} (tenants written before it are complete: {}); run the same \
                 import again to finish",
                d.id,
                names(&issued.tenants_written)
            )
        })?;
        issued.tenants_written.push(d.id.clone());
    }
    for (v, verdict) in vendors {
        if *verdict == VendorVerdict::New && !created.contains(&v.id) {
            let record = new_vendor(v, &t.secrets, signing_secret, now, &mut issued);
            platform
                .create_vendor(&record)?
                .wait()
                .await
                .with_context(|| format!("writing vendor {}", v.id))?;
        }
    }
    Ok(issued)
}

fn names(ids: &[TenantId]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(TenantId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh admin key for an imported tenant (the old file holds none), with an id none
/// of its imported keys has.
fn admin_key(d: &Draft, secrets: &ServerSecrets, now: Timestamp) -> (ApiKeyRecord, String) {
    let mut key_id = api_key::new_key_id();
    while d.keys.iter().any(|k| k.key.key_id == key_id) {
        key_id = api_key::new_key_id();
    }
    let secret = api_key::new_secret();
    let record = ApiKeyRecord {
        key_id: key_id.clone(),
        tenant_id: d.id.to_string(),
        name: "admin (import)".into(),
        scope: Scope::Admin,
        digest: secrets.key_digest(&secret),
        created_at: now,
        revoked_at: None,
        expires_at: None,
    };
    (record, api_key::tenant_key(d.id.as_str(), &key_id, &secret))
}

#[cfg(test)]
mod tests;
