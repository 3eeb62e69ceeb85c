//! Live event streams by the credential that opened them.
//!
//! A stream is authenticated once, when it opens, and may then stay open for days. So
//! every stream registers here with its tenant, its holder (the API key, or the portal
//! user) and its session, and whatever ends a credential — revoking a key, deleting a
//! user, logging out, deleting the tenant — ends that credential's streams at once
//! through [`StreamRegistry`]. The same table caps how many streams one credential and
//! one tenant hold open ([`StreamLimits`]).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use permetrix_storage::TenantId;
use tokio::sync::oneshot;

/// Who holds a stream: the unit the per-credential cap counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A tenant API key, by key id.
    Key(String),
    /// A portal user, by name (all of the user's sessions together).
    User(String),
}

/// How many streams may be open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Per API key, or per portal user.
    pub per_credential: usize,
    /// Per tenant, all credentials together.
    pub per_tenant: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            per_credential: 16,
            per_tenant: 256,
        }
    }
}

/// Which cap refused a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The credential holds [`StreamLimits::per_credential`] streams.
    Credential(usize),
    /// The tenant holds [`StreamLimits::per_tenant`] streams.
    Tenant(usize),
}

struct Open {
    tenant: TenantId,
    holder: Holder,
    /// Storage key of the portal session, for a stream opened with one.
    session: Option<String>,
    end: oneshot::Sender<()>,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Open>,
    per_tenant: HashMap<TenantId, usize>,
    per_holder: HashMap<(TenantId, Holder), usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Open> {
        let open = self.open.remove(&id)?;
        decrement(&mut self.per_tenant, open.tenant.clone());
        decrement(
            &mut self.per_holder,
            (open.tenant.clone(), open.holder.clone()),
        );
        Some(open)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut e) = counts.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// The open streams. Opening and ending streams is rare next to events, so one mutex
/// over a table is enough; nothing on the borrow path touches it.
pub struct StreamRegistry {
    limits: StreamLimits,
    table: Arc<Mutex<Table>>,
}

/// An open stream's place in the registry: dropping it (the stream ended) frees the
/// place; [`StreamTicket::ended`] resolves when the credential was ended.
pub struct StreamTicket {
    table: Arc<Mutex<Table>>,
    id: u64,
    ended: oneshot::Receiver<()>,
}

impl StreamTicket {
    /// Resolves once the stream's credential was revoked, deleted or logged out.
    pub fn ended(&mut self) -> &mut oneshot::Receiver<()> {
        &mut self.ended
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        lock(&self.table).remove(self.id);
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // The table stays consistent whatever a panicking holder was doing: every change
    // is one insert or one removal.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamRegistry {
    /// A registry enforcing `limits`.
    pub fn new(limits: StreamLimits) -> Self {
        StreamRegistry {
            limits,
            table: Arc::default(),
        }
    }

    /// Registers a stream of `tenant` held by `holder` (through `session`, if a portal
    /// session opened it), or says which cap is reached.
    pub fn open(
        &self,
        tenant: &TenantId,
        holder: Holder,
        session: Option<String>,
    ) -> Result<StreamTicket, StreamRefusal> {
        let mut table = lock(&self.table);
        let key = (tenant.clone(), holder);
        if table.per_holder.get(&key).copied().unwrap_or(0) >= self.limits.per_credential {
            return Err(StreamRefusal::Credential(self.limits.per_credential));
        }
        if table.per_tenant.get(tenant).copied().unwrap_or(0) >= self.limits.per_tenant {
            return Err(StreamRefusal::Tenant(self.limits.per_tenant));
        }
        let (end, ended) = oneshot::channel();
        table.next += 1;
        let id = table.next;
        *table.per_tenant.entry(tenant.clone()).or_default() += 1;
        *table.per_holder.entry(key.clone()).or_default() += 1;
        table.open.insert(
            id,
            Open {
                tenant: key.0,
                holder: key.1,
                session,
                end,
            },
        );
        Ok(StreamTicket {
            table: Arc::clone(&self.table),
            id,
            ended,
        })
    }

    /// Ends the streams of an API key (revoked).
    pub fn end_key(&self, tenant: &TenantId, key_id: &str) -> usize {
        self.end_where(|o| o.tenant == *tenant && o.holder == Holder::Key(key_id.to_owned()))
    }

    /// Ends the streams of a portal user (deleted).
    pub fn end_user(&self, tenant: &TenantId, username: &str) -> usize {
        self.end_where(|o| o.tenant == *tenant && o.holder == Holder::User(username.to_owned()))
    }

    /// Ends the streams opened with one portal session (logged out).
    pub fn end_session(&self, session: &str) -> usize {
        self.end_where(|o| o.session.as_deref() == Some(session))
    }

    /// Ends every stream of a tenant (deleted).
    pub fn end_tenant(&self, tenant: &TenantId) -> usize {
        self.end_where(|o| o.tenant == *tenant)
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        lock(&self.table).open.len()
    }

    fn end_where(&self, ends: impl Fn(&Open) -> bool) -> usize {
        let mut table = lock(&self.table);
        let ids: Vec<u64> = table
            .open
            .iter()
            .filter(|(_, o)| ends(o))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(open) = table.remove(*id) {
                // The stream may be gone already; nothing to tell then.
                let _ = open.end.send(());
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn key(id: &str) -> Holder {
        Holder::Key(id.into())
    }

    #[test]
    fn ending_a_credential_ends_its_streams_only() {
        let r = StreamRegistry::new(StreamLimits::default());
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        let mut k1 = r.open(&acme, key("k1"), None).unwrap();
        let mut k2 = r.open(&acme, key("k2"), None).unwrap();
        let mut same_id_elsewhere = r.open(&globex, key("k1"), None).unwrap();
        let mut alice = r
            .open(&acme, Holder::User("alice".into()), Some("s1".into()))
            .unwrap();
        let mut alice2 = r
            .open(&acme, Holder::User("alice".into()), Some("s2".into()))
            .unwrap();
        assert_eq!(r.end_key(&acme, "k1"), 1);
        assert!(k1.ended().try_recv().is_ok());
        assert!(k2.ended().try_recv().is_err());
        assert!(same_id_elsewhere.ended().try_recv().is_err());
        assert_eq!(r.end_session("s1"), 1);
        assert!(alice.ended().try_recv().is_ok());
        assert!(alice2.ended().try_recv().is_err());
        assert_eq!(r.end_user(&acme, "alice"), 1);
        assert!(alice2.ended().try_recv().is_ok());
        assert_eq!(r.end_tenant(&acme), 1);
        assert!(k2.ended().try_recv().is_ok());
        assert_eq!(r.open_streams(), 1);
    }

    #[test]
    fn caps_count_open_streams_and_free_their_place_when_dropped() {
        let r = StreamRegistry::new(StreamLimits {
            per_credential: 2,
            per_tenant: 3,
        });
        let acme = tenant("acme");
        let a = r.open(&acme, key("k1"), None).unwrap();
        let _b = r.open(&acme, key("k1"), None).unwrap();
        assert_eq!(
            r.open(&acme, key("k1"), None).err(),
            Some(StreamRefusal::Credential(2))
        );
        let _c = r.open(&acme, key("k2"), None).unwrap();
        assert_eq!(
            r.open(&acme, key("k3"), None).err(),
            Some(StreamRefusal::Tenant(3))
        );
        assert!(r.open(&tenant("globex"), key("k3"), None).is_ok());
        drop(a);
        assert!(r.open(&acme, key("k1"), None).is_ok());
        // An ended stream's place is free even before the stream notices.
        r.end_key(&acme, "k2");
        assert!(r.open(&acme, key("k3"), None).is_ok());
    }
}
