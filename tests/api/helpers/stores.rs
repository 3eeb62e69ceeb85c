//! Which store a test server runs on: the embedded sled store (the default) or a fresh
//! database of the test process's one PostgreSQL server
//! ([`permetrix_storage::test_support::postgres::PgCluster`]). The core scenarios run
//! on both through [`on_both_stores!`](crate::on_both_stores).
use permetrix_storage::test_support::postgres::PgCluster;

/// The deployment key every broker of a test's PostgreSQL store shares
/// (`PERMETRIX_SERVER_KEY`).
pub const TEST_SERVER_KEY: &str =
    "5e7fe57a5e7fe57a5e7fe57a5e7fe57a5e7fe57a5e7fe57a5e7fe57a5e7fe57a";

/// The store of a test server.
#[derive(Clone, Debug)]
pub enum TestStore {
    /// The embedded store in the server's data directory.
    Sled,
    /// A PostgreSQL database of its own (`postgres://…`), with [`TEST_SERVER_KEY`].
    Postgres { url: String },
}

impl TestStore {
    /// A new, empty database for `test`; `None` (after printing why `test` is skipped)
    /// where PostgreSQL is not available, a panic instead under
    /// `PERMETRIX_REQUIRE_POSTGRES=1`.
    pub fn postgres(test: &str) -> Option<TestStore> {
        let cluster = PgCluster::shared_or_skip(test)?;
        Some(TestStore::Postgres {
            url: cluster.database(test),
        })
    }

    /// The database URL of a PostgreSQL store.
    pub fn url(&self) -> Option<&str> {
        match self {
            TestStore::Sled => None,
            TestStore::Postgres { url } => Some(url),
        }
    }

    /// `permetrix serve` arguments and environment for this store.
    pub(super) fn process_args(&self) -> (Vec<String>, Vec<(String, String)>) {
        match self {
            TestStore::Sled => (Vec::new(), Vec::new()),
            TestStore::Postgres { url } => (
                vec!["--store".into(), url.clone()],
                vec![("PERMETRIX_SERVER_KEY".into(), TEST_SERVER_KEY.into())],
            ),
        }
    }
}

/// Runs each scenario `async fn name(store: TestStore)` as two tests, `name::sled` and
/// `name::postgres` (skipped, saying why, where PostgreSQL is not available).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sled() {
                super::$name($crate::helpers::TestStore::Sled).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let test = concat!(module_path!(), "::postgres");
                if let Some(store) = $crate::helpers::TestStore::postgres(test) {
                    super::$name(store).await;
                }
            }
        }
    )+};
}
