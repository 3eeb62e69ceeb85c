//! `spawn_app()` and typed helpers shared by the tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use awc::ClientRequest;
use awc::http::StatusCode;
use permetrix::server::{Application, ServeConfig};
use serde_json::{Value, json};

/// A server running in this process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub client: awc::Client,
    /// The data directory (None for a server in another process).
    pub dir: Option<tempfile::TempDir>,
    handle: Option<actix_web::dev::ServerHandle>,
}

/// A server in another process, spoken to with the same helpers.
pub type RemoteApp = TestApp;

/// A reply: status and JSON body (Null if the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: awc::http::header::HeaderMap,
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

/// Test configuration: port 0, a fresh directory, few threads, no signal handlers.
pub fn test_config(dir: &std::path::Path) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.bind = "127.0.0.1:0".parse().unwrap();
    c.workers = 1;
    c.arbiters = 2;
    c.handle_signals = false;
    c.admin_token = Some(format!("test-operator-{}", std::process::id()));
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// A server built from the test configuration and running on this runtime, in parts.
pub struct Started {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub handle: actix_web::dev::ServerHandle,
    pub state: actix_web::web::Data<permetrix::server::state::AppState>,
    pub dir: tempfile::TempDir,
}

/// Builds the app in a fresh directory with a `tweak`ed configuration and runs it.
pub async fn start(tweak: impl FnOnce(&mut ServeConfig)) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let admin_token = config.admin_token.clone().unwrap();
    let app = Application::build(config).await.expect("server builds");
    let (addr, handle, state) = (app.addr(), app.handle(), app.state());
    actix_rt::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    Started {
        addr,
        admin_token,
        handle,
        state,
        dir,
    }
}

/// Spawns the app with a tweaked configuration.
pub async fn spawn_with(tweak: impl FnOnce(&mut ServeConfig)) -> TestApp {
    spawn_with_state(tweak).await.0
}

/// Spawns the app with a tweaked configuration and also returns its shared state, for
/// tests that reach the actors directly (e.g. to send `ExpireDue` after moving a
/// manual clock).
pub async fn spawn_with_state(
    tweak: impl FnOnce(&mut ServeConfig),
) -> (
    TestApp,
    actix_web::web::Data<permetrix::server::state::AppState>,
) {
    let s = start(tweak).await;
    let test_app = TestApp {
        addr: s.addr,
        admin_token: s.admin_token,
        client: client(),
        dir: Some(s.dir),
        handle: Some(s.handle),
    };
    (test_app, s.state)
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

impl TestApp {
    /// Helpers for a server running elsewhere.
    pub fn new(addr: SocketAddr, admin_token: &str) -> Self {
        TestApp {
            addr,
            admin_token: admin_token.to_owned(),
            client: client(),
            dir: None,
            handle: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request with the given Host and optional bearer token, not yet sent.
    fn request(&self, method: &str, host: &str, path: &str, token: Option<&str>) -> ClientRequest {
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
        let req = self.request(method, host, path, token);
        let res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        read(res.expect("request sent")).await
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

    pub async fn stop(self) {
        if let Some(h) = &self.handle {
            // Not graceful: the test client keeps idle keep-alive connections open.
            h.stop(false).await;
        }
    }
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

/// A tool provisioned by [`bootstrap`].
pub struct Tool {
    pub name: &'static str,
    pub id: &'static str,
    pub commit: u32,
    pub overage: u32,
    pub price: f64,
}

pub const ECU: Tool = Tool {
    name: "ECU Development Suite",
    id: "ecu-dev-suite",
    commit: 5,
    overage: 15,
    price: 500.0,
};

/// Credentials of a bootstrapped vendor and tenant.
pub struct Tenant {
    pub id: String,
    pub host: String,
    pub admin_key: String,
    pub vendor_key: String,
    pub signing_secret: String,
}

/// Creates a vendor (if needed), a tenant of it with one tool, and turns signatures off.
pub async fn bootstrap(app: &TestApp, vendor: &str, tenant: &str, tool: &Tool) -> Tenant {
    let v = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": vendor, "vendor_name": format!("{vendor} GmbH")})),
        )
        .await;
    let (vendor_key, signing_secret) = match v.status.as_u16() {
        201 => (
            v.body["api_key"].as_str().unwrap().to_owned(),
            v.body["signing_secret"].as_str().unwrap().to_owned(),
        ),
        other => panic!("creating vendor {vendor}: {other} {}", v.body),
    };
    add_tenant(app, &vendor_key, &signing_secret, tenant, tool).await
}

/// Adds a tenant with one tool to an existing vendor.
pub async fn add_tenant(
    app: &TestApp,
    vendor_key: &str,
    signing_secret: &str,
    tenant: &str,
    tool: &Tool,
) -> Tenant {
    let created = app
        .call(
            "POST",
            "vendor.localhost",
            "/api/vendor/customers",
            Some(vendor_key),
            Some(json!({"tenant_id": tenant, "company_name": format!("{tenant} Inc")})),
        )
        .await
        .expect(201);
    let admin_key = created["admin_api_key"].as_str().unwrap().to_owned();
    provision(app, vendor_key, tenant, tool).await;
    let host = format!("{tenant}.localhost");
    app.call(
        "PUT",
        &host,
        "/config/security",
        Some(&admin_key),
        Some(json!({"signature_policy": "off"})),
    )
    .await
    .expect(200);
    Tenant {
        id: tenant.to_owned(),
        host,
        admin_key,
        vendor_key: vendor_key.to_owned(),
        signing_secret: signing_secret.to_owned(),
    }
}

pub async fn provision(app: &TestApp, vendor_key: &str, tenant: &str, tool: &Tool) -> Value {
    app.call(
        "POST",
        "vendor.localhost",
        "/api/vendor/provision",
        Some(vendor_key),
        Some(json!({
            "tenant_id": tenant,
            "product_id": tool.id,
            "product_name": tool.name,
            "total": tool.commit + tool.overage,
            "commit_qty": tool.commit,
            "max_overage": tool.overage,
            "overage_price_per_license": tool.price,
        })),
    )
    .await
    .expect(201)
}

pub fn borrow_body(tool: &str, user: &str) -> Value {
    json!({"tool": tool, "user": user})
}

/// `permetrix serve` on a free port with `workers` workers, the data in `dir` and the
/// operator token `token`, its stdout discarded; the caller adds arguments and stderr.
pub fn serve_command(dir: &std::path::Path, token: &str, workers: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_permetrix"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", workers])
        .args(["--arbiters", "2", "--data-dir"])
        .arg(dir)
        .env("PERMETRIX_ADMIN_TOKEN", token)
        .stdout(Stdio::null());
    command
}

/// Spawns `permetrix serve` with one worker and `extra` arguments, info logs on a pipe.
pub fn spawn_serve(dir: &std::path::Path, token: &str, extra: &[&str]) -> Child {
    serve_command(dir, token, "1")
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// The real binary as a child process.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `permetrix serve` on a free port and waits for its ready line.
    pub fn start(dir: &std::path::Path, admin_token: &str, extra: &[&str]) -> ServerProcess {
        let mut child = spawn_serve(dir, admin_token, extra);
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before it was ready")
                .expect("stderr readable");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.parse().unwrap();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, addr }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A server in this process together with its shared state, for tests that need to
/// reach inside (hold an actor, seed many tenants quickly).
pub struct StatefulApp {
    pub app: TestApp,
    pub state: actix_web::web::Data<permetrix::server::state::AppState>,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

impl StatefulApp {
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Like [`spawn_with`], keeping a handle on the server's state.
pub async fn spawn_stateful(tweak: impl FnOnce(&mut ServeConfig)) -> StatefulApp {
    let s = start(tweak).await;
    StatefulApp {
        app: TestApp::new(s.addr, &s.admin_token),
        state: s.state,
        handle: s.handle,
        _dir: s.dir,
    }
}

/// Polls `done` until it holds, for at most 10 s (a bound, not a synchronisation).
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}

/// One keep-alive connection spoken by hand, so that several requests provably share it.
pub struct RawConn(BufReader<std::net::TcpStream>);

impl RawConn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        // A safety net so a broken server fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        RawConn(BufReader::new(stream))
    }

    /// Sends a JSON POST with a bearer token; the answer is read by [`RawConn::answer`].
    pub fn post_json(&mut self, path: &str, host: &str, token: &str, body: &Value) {
        use std::io::Write;
        let body = body.to_string();
        write!(
            self.0.get_mut(),
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
        )
        .unwrap();
        self.0.get_mut().flush().unwrap();
    }

    /// Reads one answer: status, `Retry-After` and the JSON body.
    pub fn answer(&mut self) -> (u16, Option<String>, Value) {
        use std::io::Read;
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (mut length, mut retry_after) = (0, None);
        loop {
            line.clear();
            self.0.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(": ") else {
                break;
            };
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap(),
                "retry-after" => retry_after = Some(value.to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }
}
