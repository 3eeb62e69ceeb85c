//! [`TestApp`], a server spoken to over HTTP, and [`TestAppBuilder`], the one way to start
//! one: in this process ([`TestAppBuilder::spawn`]) or as the real binary
//! ([`TestAppBuilder::process`]).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use awc::ClientRequest;
use awc::http::StatusCode;
use awc::http::header::HeaderMap;
use permetrix_actors::ManualClock;
use permetrix_storage::Timestamp;
use serde_json::Value;

use super::inside::{InProcess, ServeConfig};
use super::process::{ServerProcess, StartFailure};
use super::stores::TestStore;

/// A running server and a client for it. Built by [`TestApp::builder`] (a server in this
/// process, which it owns), [`ServerProcess::app`] or [`TestApp::detached`] (a client
/// only).
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub client: awc::Client,
    /// What a server in this process owns; `None` for a client of a server elsewhere.
    pub(super) server: Option<InProcess>,
}

/// A configuration change applied before an in-process server is built.
type Tweak = Box<dyn FnOnce(&mut ServeConfig)>;

/// How to start a server for a test: its operator token, clock and configuration (in
/// this process), or its data directory, arguments, environment and log (the binary).
pub struct TestAppBuilder {
    pub(super) token: String,
    pub(super) clock: Option<ManualClock>,
    pub(super) tweaks: Vec<Tweak>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) log_file: Option<PathBuf>,
    pub(super) store: TestStore,
}

impl TestApp {
    /// A server on a free port with a fresh temporary directory, an operator token of
    /// its own, and the system clock; see the builder's methods for the rest.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            token: format!("test-operator-{}", std::process::id()),
            clock: None,
            tweaks: Vec::new(),
            data_dir: None,
            args: Vec::new(),
            env: Vec::new(),
            log_file: None,
            store: TestStore::Sled,
        }
    }

    /// A client of the server at `addr`, owning nothing.
    pub fn remote(addr: SocketAddr, admin_token: &str) -> Self {
        TestApp {
            addr,
            admin_token: admin_token.to_owned(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            server: None,
        }
    }

    /// A client of whatever serves HTTP at `addr` (a second listener, say).
    pub fn at(addr: SocketAddr) -> Self {
        Self::remote(addr, "")
    }

    /// Another client of the same server, with a connection pool of its own and no
    /// borrow of this one, so that it can move into a spawned task.
    pub fn detached(&self) -> Self {
        Self::remote(self.addr, &self.admin_token)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request with the given Host and optional bearer token, not yet sent.
    pub fn request(
        &self,
        method: &str,
        host: &str,
        path: &str,
        token: Option<&str>,
    ) -> ClientRequest {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self
            .client
            .request(method, self.url(path))
            .insert_header(("Host", host));
        match token {
            Some(t) => req.insert_header(("Authorization", format!("Bearer {t}"))),
            None => req,
        }
    }

    /// Sends a request with the given Host, optional bearer token and optional JSON.
    pub async fn call(
        &self,
        method: &str,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send_request(self.request(method, host, path, token), body).await
    }

    /// Sends raw bytes as the body.
    pub async fn call_raw(
        &self,
        method: &str,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let req = self.request(method, host, path, token);
        read(req.send_body(body).await.expect("request sent")).await
    }

    /// Stops a server in this process (nothing for a client only).
    pub async fn stop(self) {
        if let Some(server) = &self.server {
            server.stop().await;
        }
    }

    /// The data directory of a server in this process.
    pub fn data_dir(&self) -> &Path {
        self.in_process().dir.path()
    }

    /// Whether any file of the data directory contains `needle`.
    pub fn data_contains(&self, needle: &[u8]) -> bool {
        fn walk(dir: &Path, needle: &[u8]) -> bool {
            std::fs::read_dir(dir).unwrap().flatten().any(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, needle)
                } else {
                    std::fs::read(&p)
                        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                        .unwrap_or(false)
                }
            })
        }
        walk(self.data_dir(), needle)
    }

    /// The manual clock of a server built with [`TestAppBuilder::manual_clock`].
    pub fn clock(&self) -> &ManualClock {
        self.in_process()
            .clock
            .as_ref()
            .expect("the app was built without `manual_clock`")
    }

    /// What the server in this process owns (tests that reach inside need one).
    pub(super) fn in_process(&self) -> &InProcess {
        self.server
            .as_ref()
            .expect("only a server started with `spawn()` can be reached inside")
    }
}

impl TestAppBuilder {
    /// The operator token (default: one of this test binary's own).
    pub fn token(mut self, token: &str) -> Self {
        token.clone_into(&mut self.token);
        self
    }

    /// In process: every clock reading of the server comes from a manual clock starting
    /// at `start`, which only the test moves ([`TestApp::clock`], [`TestApp::advance`]).
    pub fn manual_clock(mut self, start: Timestamp) -> Self {
        self.clock = Some(ManualClock::new(start));
        self
    }

    /// In process: changes the server's configuration before it is built.
    pub fn config(mut self, tweak: impl FnOnce(&mut ServeConfig) + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// The store, in process or the binary (default: sled in the data directory). With
    /// PostgreSQL, the data directory holds nothing of the store's, and a second server
    /// on the same database is a second broker.
    pub fn store(mut self, store: &TestStore) -> Self {
        self.store = store.clone();
        self
    }

    /// The binary: serves the data in `dir` (default: a temporary directory of its own),
    /// so that a second `process()` restarts on the same data.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// The binary: more arguments for `permetrix serve`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// The binary: an environment variable (`RUST_LOG` is `info` unless set here).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The binary: its log goes to the regular file `log` instead of a pipe (as a
    /// service logging to a file on its data volume would), and is read from there.
    pub fn log_file(mut self, log: &Path) -> Self {
        self.log_file = Some(log.to_owned());
        self
    }

    /// Starts the server in this process, on this runtime.
    pub async fn spawn(self) -> TestApp {
        assert!(
            self.data_dir.is_none()
                && self.args.is_empty()
                && self.env.is_empty()
                && self.log_file.is_none(),
            "data_dir, args, env and log_file are for `process()`; in process, use `config`"
        );
        let token = self.token.clone();
        let (addr, server) = InProcess::start(self).await;
        TestApp {
            server: Some(server),
            ..TestApp::remote(addr, &token)
        }
    }

    /// Starts `permetrix serve` and waits for its ready line; panics with its output if
    /// it exits instead. Call again (after stopping the first) to restart on the same
    /// data directory.
    pub fn process(&self) -> ServerProcess {
        self.try_process()
            .unwrap_or_else(|f| panic!("the server did not start ({}):\n{}", f.status, f.stderr))
    }

    /// Like [`TestAppBuilder::process`], for a start that may fail.
    pub fn try_process(&self) -> Result<ServerProcess, StartFailure> {
        assert!(
            self.clock.is_none() && self.tweaks.is_empty(),
            "manual_clock and config are for `spawn()`; the binary takes `args` and `env`"
        );
        ServerProcess::start(self)
    }
}

/// A reply: status and JSON body (Null if the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// The `error` code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// Reads a response into a [`Reply`].
/// Sends a built request with an optional JSON body; the answer read whole.
pub async fn send_request(req: ClientRequest, body: Option<Value>) -> Reply {
    let res = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    };
    read(res.expect("request sent")).await
}

pub async fn read<S>(mut res: awc::ClientResponse<S>) -> Reply
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.body().limit(16 * 1024 * 1024).await.expect("body read");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        headers,
    }
}
