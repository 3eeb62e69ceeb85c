//! A real PostgreSQL server for tests: `initdb` and `pg_ctl` in a temporary directory,
//! on a free loopback port, one database per test.
//!
//! The binaries are PostgreSQL 15's from Debian (`/usr/lib/postgresql/15/bin`), or any
//! other version found under `/usr/lib/postgresql`, or `PERMETRIX_POSTGRES_BIN`. As root
//! (CI, these machines) the server runs as the `postgres` user, since PostgreSQL refuses
//! to run as root. Where the binaries are missing, [`PgCluster::shared_or_skip`] prints
//! that the test was skipped and why, unless `PERMETRIX_REQUIRE_POSTGRES=1`, which makes
//! that a failure (CI sets it).
//!
//! The server runs without fsync (`fsync=off`): tests prove the store's logic, not the
//! disk. Clean-up does not depend on the test process ending well: a watchdog process
//! holds a pipe from this one, and when the pipe closes (a drop, or the process
//! exiting in any way) it stops the server and removes the directory.
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Makes a missing PostgreSQL a failure instead of a skip.
pub const REQUIRE_ENV: &str = "PERMETRIX_REQUIRE_POSTGRES";
/// Where the PostgreSQL binaries are, if not in the default places.
pub const BIN_ENV: &str = "PERMETRIX_POSTGRES_BIN";

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server, stopped and removed on drop.
pub struct PgCluster {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// Run the server's tools as this user (when running as root).
    run_as: Option<String>,
    /// The watchdog's end of the pipe: closing it stops the server.
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
    databases: AtomicU64,
}

impl PgCluster {
    /// Starts a server of its own. Fails (with the reason) if PostgreSQL is missing or
    /// does not start.
    pub fn start() -> Result<PgCluster, String> {
        let bin = find_bin()?;
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "permetrix-pg-{}-{n}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let run_as = rustix::process::geteuid()
            .is_root()
            .then(|| "postgres".to_owned());
        let mut cluster = PgCluster {
            port: 0,
            dir,
            bin,
            run_as,
            watchdog: Mutex::new(None),
            databases: AtomicU64::new(0),
        };
        cluster.start_watchdog()?;
        if cluster.run_as.is_some() {
            cluster.give_to_postgres()?;
        }
        cluster.init()?;
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One server for the whole test process, started by the first caller; `None`
    /// (after printing why `test` is skipped) if PostgreSQL is not available. Panics
    /// instead when `PERMETRIX_REQUIRE_POSTGRES=1`.
    pub fn shared_or_skip(test: &str) -> Option<&'static PgCluster> {
        static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
        match SHARED.get_or_init(PgCluster::start) {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                    panic!("{test}: PostgreSQL is required ({REQUIRE_ENV}=1) but {why}");
                }
                eprintln!("skipped {test}: {why}");
                None
            }
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Creates a new, empty database named after `name` (made unique) and returns its
    /// URL.
    pub fn database(&self, name: &str) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let db = format!("{clean}_{n}");
        let port = self.port.to_string();
        let status = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &db])
            .status();
        match status {
            Ok(s) if s.success() => self.url_of(&db),
            other => panic!("createdb {db} failed: {other:?}"),
        }
    }

    fn url_of(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `tool` of the server's binaries, as the server's user.
    fn tool(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn start_watchdog(&mut self) -> Result<(), String> {
        let stop = format!(
            "{} {} -D {} -m immediate stop",
            self.run_as
                .as_ref()
                .map(|u| format!("runuser -u {u} --"))
                .unwrap_or_default(),
            self.bin.join("pg_ctl").display(),
            self.data().display(),
        );
        let script = format!(
            "cat >/dev/null; if [ -f {data}/postmaster.pid ]; then {stop}; fi; rm -rf {dir}",
            data = self.data().display(),
            dir = self.dir.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the clean-up watchdog: {e}"))?;
        let stdin = child.stdin.take().ok_or("the watchdog has no stdin")?;
        *self.watchdog.get_mut().unwrap_or_else(|p| p.into_inner()) = Some((child, stdin));
        Ok(())
    }

    fn give_to_postgres(&self) -> Result<(), String> {
        let id = |flag: &str| -> Result<u32, String> {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .map_err(|e| format!("id {flag} postgres: {e}"))?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| {
                    "there is no postgres user (install the postgresql package)".to_owned()
                })
        };
        std::os::unix::fs::chown(&self.dir, Some(id("-u")?), Some(id("-g")?))
            .map_err(|e| format!("handing {} to postgres: {e}", self.dir.display()))
    }

    fn init(&self) -> Result<(), String> {
        let out = self
            .tool("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C", "-D"])
            .arg(self.data())
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=300 -c shared_buffers=32MB",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("running pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ))
    }
}

static CLUSTERS: AtomicU64 = AtomicU64::new(0);

fn find_bin() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var(BIN_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").exists() {
            Ok(dir)
        } else {
            Err(format!("{BIN_ENV}={} holds no initdb", dir.display()))
        };
    }
    if Path::new(DEFAULT_BIN).join("initdb").exists() {
        return Ok(PathBuf::from(DEFAULT_BIN));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "PostgreSQL's initdb was not found in {DEFAULT_BIN} (install the postgresql \
             package, or set {BIN_ENV})"
        )
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((mut child, mut stdin)) = watchdog {
            let _ = stdin.flush();
            drop(stdin);
            let _ = child.wait();
        }
    }
}
