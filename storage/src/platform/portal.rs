//! Tenant portal users and portal sessions.
use super::{Keyed, Platform, Stored, Written, delete, insert, insert_at};
use crate::backend::{PlatformKey, Table};
use crate::records::{SessionRecord, UserRecord};
use crate::{Durable, StorageError, TenantId, Timestamp};

impl Stored for UserRecord {
    const TABLE: Table = Table::Users;
}

impl Keyed for UserRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::scoped(&self.tenant_id, &self.username)
    }
}

impl Stored for SessionRecord {
    const TABLE: Table = Table::Sessions;
}

impl Platform {
    /// One tenant portal user.
    pub fn user(
        &self,
        tenant: &TenantId,
        username: &str,
    ) -> Result<Option<UserRecord>, StorageError> {
        self.get(PlatformKey::scoped(tenant.as_str(), username))
    }

    /// A tenant's portal users, in name order.
    pub fn tenant_users(&self, tenant: &TenantId) -> Result<Vec<UserRecord>, StorageError> {
        self.records(Some(tenant.as_str()))
    }

    /// Adds a tenant portal user; [`StorageError::AlreadyExists`] if the tenant has a
    /// user of that name.
    pub fn add_user(&self, user: &UserRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(user)])
    }

    /// Sets a tenant portal user's password hash (an admin setting a password). The
    /// user becomes a new incarnation, `new_user_id`, so that every session of theirs
    /// ends. `None` if the tenant has no such user.
    pub fn set_user_password(
        &self,
        tenant: &TenantId,
        username: &str,
        password_hash: String,
        new_user_id: String,
    ) -> Result<Option<Durable>, StorageError> {
        self.replace(self.user(tenant, username)?, |user| {
            user.password_hash = Some(password_hash);
            user.user_id = new_user_id;
        })
    }

    /// Replaces a user's password hash `from` by `to` (an imported hash upgraded after
    /// a login that verified it); sessions stay. `None` (and nothing written) if the
    /// user is gone or their hash is no longer `from`: created again or given another
    /// password meanwhile, they keep what they have now.
    pub fn upgrade_user_password(
        &self,
        tenant: &TenantId,
        username: &str,
        from: &str,
        to: String,
    ) -> Result<Option<Durable>, StorageError> {
        let found = self
            .user(tenant, username)?
            .filter(|u| u.password_hash.as_deref() == Some(from));
        self.replace(found, |user| user.password_hash = Some(to))
    }

    /// Removes a tenant portal user. Their sessions name the user's
    /// [`UserRecord::user_id`], so they die with it even if the name is reused. `None`
    /// if the tenant has no such user.
    pub fn remove_user(
        &self,
        tenant: &TenantId,
        username: &str,
    ) -> Result<Option<Durable>, StorageError> {
        if self.user(tenant, username)?.is_none() {
            return Ok(None);
        }
        let key = PlatformKey::scoped(tenant.as_str(), username);
        self.apply(&[delete::<UserRecord>(key)]).map(Some)
    }

    /// A portal session by the hex digest of its token.
    pub fn session(&self, digest_hex: &str) -> Result<Option<SessionRecord>, StorageError> {
        self.get(PlatformKey::new(digest_hex))
    }

    /// Every portal session, with the hex digest of its token.
    pub fn sessions(&self) -> Result<Vec<(String, SessionRecord)>, StorageError> {
        self.scan(None)
    }

    /// Stores a new session under the hex digest of its token;
    /// [`StorageError::AlreadyExists`] if that digest is taken.
    pub fn put_session(
        &self,
        digest_hex: &str,
        session: &SessionRecord,
    ) -> Result<Durable, StorageError> {
        self.apply(&[insert_at(PlatformKey::new(digest_hex), session)])
    }

    /// Deletes a session (nothing happens if there is none).
    pub fn delete_session(&self, digest_hex: &str) -> Result<Durable, StorageError> {
        self.apply(&[delete::<SessionRecord>(PlatformKey::new(digest_hex))])
    }

    /// Deletes every session expired at `now`, in one atomic write.
    pub fn purge_expired_sessions(&self, now: Timestamp) -> Result<Written, StorageError> {
        let expired: Vec<String> = self
            .sessions()?
            .into_iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(digest, _)| digest)
            .collect();
        let writes: Vec<_> = expired
            .iter()
            .map(|digest| delete::<SessionRecord>(PlatformKey::new(digest)))
            .collect();
        self.apply_all(&writes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::{SessionSubject, UserRole};

    fn user(tenant: &str, name: &str, user_id: &str) -> UserRecord {
        UserRecord {
            user_id: user_id.into(),
            tenant_id: tenant.into(),
            username: name.into(),
            password_hash: Some("phc".into()),
            role: UserRole::Viewer,
            created_at: Timestamp::from_secs(1),
        }
    }

    fn session(expires_secs: i64) -> SessionRecord {
        SessionRecord {
            subject: SessionSubject::Vendor {
                vendor_id: "vector".into(),
            },
            host: "vendor.localhost".into(),
            created_at: Timestamp::from_secs(1),
            expires_at: Timestamp::from_secs(expires_secs),
        }
    }

    #[tokio::test]
    async fn a_user_name_is_unique_per_tenant_until_removed() {
        let (_dir, platform) = platform();
        let acme = TenantId::parse("acme").unwrap();
        platform
            .add_user(&user("acme", "ann", "u1"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        let taken = platform.add_user(&user("acme", "ann", "u2"));
        assert!(matches!(taken, Err(StorageError::AlreadyExists { .. })));
        platform.add_user(&user("acme-2", "ann", "u3")).unwrap();
        platform.add_user(&user("acme", "al", "u4")).unwrap();
        let names: Vec<_> = platform.tenant_users(&acme).unwrap();
        let names: Vec<_> = names.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["al", "ann"]);

        platform.remove_user(&acme, "ann").unwrap().unwrap();
        assert!(platform.user(&acme, "ann").unwrap().is_none());
        assert!(platform.remove_user(&acme, "ann").unwrap().is_none());
        platform.add_user(&user("acme", "ann", "u5")).unwrap();
        let again = platform.user(&acme, "ann").unwrap().unwrap();
        assert_eq!(again.user_id, "u5");

        // An upgrade keeps the incarnation, and only replaces the hash it verified.
        let upgraded = platform.upgrade_user_password(&acme, "ann", "phc", "phc2".into());
        upgraded.unwrap().unwrap();
        let kept = platform.user(&acme, "ann").unwrap().unwrap();
        assert_eq!(
            (kept.password_hash.as_deref(), kept.user_id.as_str()),
            (Some("phc2"), "u5")
        );
        let stale = platform.upgrade_user_password(&acme, "ann", "phc", "phc3".into());
        assert!(stale.unwrap().is_none());
        // An admin's new password makes a new incarnation.
        platform
            .set_user_password(&acme, "ann", "phc3".into(), "u6".into())
            .unwrap()
            .unwrap();
        let renewed = platform.user(&acme, "ann").unwrap().unwrap();
        assert_eq!(
            (renewed.password_hash.as_deref(), renewed.user_id.as_str()),
            (Some("phc3"), "u6")
        );
        let nobody = platform.set_user_password(&acme, "bob", "x".into(), "u7".into());
        assert!(nobody.unwrap().is_none());
    }

    #[tokio::test]
    async fn sessions_are_stored_deleted_and_purged_when_expired() {
        let (_dir, platform) = platform();
        platform
            .put_session("aa", &session(10))
            .unwrap()
            .wait()
            .await
            .unwrap();
        let taken = platform.put_session("aa", &session(20));
        assert!(matches!(taken, Err(StorageError::AlreadyExists { .. })));
        platform.put_session("bb", &session(20)).unwrap();
        platform.put_session("cc", &session(30)).unwrap();
        assert_eq!(platform.session("aa").unwrap(), Some(session(10)));

        platform.delete_session("cc").unwrap();
        assert_eq!(platform.session("cc").unwrap(), None);
        let purged = platform
            .purge_expired_sessions(Timestamp::from_secs(20))
            .unwrap();
        assert_eq!(purged.records, 2);
        purged.durable.wait().await.unwrap();
        assert!(platform.sessions().unwrap().is_empty());
        let none = platform
            .purge_expired_sessions(Timestamp::from_secs(99))
            .unwrap();
        assert_eq!(none.records, 0);
    }
}
